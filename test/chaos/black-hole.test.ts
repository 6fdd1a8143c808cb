import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/db.js';
import { BlackHoleProxy } from './helpers/black-hole-proxy.js';
import { baseOptions, useChaosCluster } from './helpers/cluster.js';
import { insertWork, ledgerFigures, recordKill, waitAllEnded } from './helpers/ledger.js';
import { overlapFigures, TryWatcher } from './helpers/overlaps.js';
import { report, scale } from './helpers/summary.js';

/**
 * A black-holed database connection: one launcher reaches its PostgreSQL through a proxy that
 * stops forwarding (sockets stay open, nothing errors), while a launcher on another host works
 * beside it, connected directly. Once the cut launcher's lease has lapsed the other one recovers
 * its rows and runs them again: the cut launcher's tries must have ended before that (fenced by
 * its lease), none of its held rows may start, it must say so, and once the path heals it must
 * reconnect and work again. Tasks reach the ledger directly: only the launcher is cut off.
 */
const cluster = useChaosCluster();
const taskMs = 24_000;
const cutMs = scale(60_000, 20_000);

describe('a black-holed database connection', () => {
  it(`cut for ${cutMs / 1000} s beside another host: no try overlaps, the cut launcher logs it and recovers`, async () => {
    const { pool } = cluster.server;
    await cluster.reset();
    const proxy = new BlackHoleProxy({ host: '127.0.0.1', port: Number(new URL(cluster.server.url()).port) });
    await proxy.start();
    const watcher = new TryWatcher(pool);
    watcher.start();
    try {
      // Short tasks first (ids 1-8): once A has seen tries end it holds rows ahead, so it has both
      // running and held long rows when it is cut off.
      await insertWork(pool, 8, { ms: 0 });
      await insertWork(pool, 24, { ms: taskMs, tryLimit: 10 });
      const a = cluster.launcher('hole-a', {
        db: proxy.urlThrough(cluster.server.url('chaos-launcher')),
        concurrency: 4,
        prefetch: 8,
        prefetchHorizonMs: 600_000,
        crashLimit: 10,
      });
      await a.start();
      const running = await waitFor(
        async () => {
          const { rows } = await pool.query(`SELECT request_id::text AS id, try, pid FROM chaos_ledger
          WHERE host = 'hole-a' AND event = 'start' AND request_id > 8`);
          return rows.length === 4 ? (rows as { id: string; try: number; pid: number }[]) : null;
        },
        { timeoutMs: 60_000, what: 'hole-a to start 4 long tries' },
      );
      const { rows: heldRows } = await pool.query(
        `SELECT id::text AS id FROM task_runner_requests WHERE launcher_id = $1 AND pid IS NOT NULL AND started_at IS NULL`,
        [a.launcherId],
      );
      const b = cluster.launcher('hole-b', { concurrency: 32, prefetch: 0, crashLimit: 10 });
      await b.start();

      await recordKill(pool, 'hole-a', a.pid, 'stop');
      const logsAtCut = a.logs.length;
      proxy.cut();
      const cutAt = Date.now();
      // The fault lasts cutMs: a fixed span, not a wait for something to happen.
      await new Promise((resolve) => setTimeout(resolve, cutMs));
      const { rows: healRows } = await pool.query('SELECT clock_timestamp() AS at');
      const logsAtHeal = a.logs.length;
      proxy.heal();
      const healedAt = Date.now();

      // Once the path heals A must say so and work again: after the rest has ended, rows only it can run.
      const recoveredMs = await waitFor(
        () =>
          a.logs.slice(logsAtHeal).some((line) => /lease confirmed again/.test(String(line.msg)))
            ? Date.now() - healedAt
            : null,
        { timeoutMs: 60_000, intervalMs: 20, what: 'hole-a to log its lease confirmed again' },
      ).catch(() => null);
      const allEnded = await waitAllEnded(pool).then(
        () => true,
        () => false,
      );
      expect(await b.stop()).toBe(0);
      await insertWork(pool, 4, { ms: 0 });
      const workedAgain = await waitFor(
        async () => {
          const { rows } = await pool.query(
            `SELECT count(*)::int AS n FROM chaos_ledger WHERE host = 'hole-a' AND event = 'finish' AND at > $1`,
            [healRows[0].at],
          );
          return rows[0].n >= 4;
        },
        { timeoutMs: 60_000, what: 'hole-a to run new rows after the heal' },
      ).then(
        () => true,
        () => false,
      );
      expect(await a.stop()).toBe(0);

      const spans = await watcher.stop();
      const overlaps = overlapFigures(spans);
      // A's tries running at the cut: when their processes went.
      const fencedAfterMs = running.map((r) => (watcher.deathOf(Number(r.pid)) ?? Number.NaN) - cutAt);
      // A started nothing after its lease could have lapsed until the heal.
      const { rows: lateStarts } = await pool.query(
        `SELECT count(*)::int AS n FROM chaos_ledger
        WHERE host = 'hole-a' AND event = 'start' AND at > to_timestamp($1 / 1000.0) AND at < $2`,
        [cutAt + baseOptions.leaseMs, healRows[0].at],
      );
      const { rows: history } = await pool.query(
        `
        SELECT a.request_id::text AS id, a.try, a.result, a.result_text
        FROM task_runner_requests_attempts a JOIN unnest($1::bigint[], $2::int[]) AS r(id, try) ON r.id = a.request_id AND r.try = a.try
        ORDER BY 1`,
        [running.map((r) => r.id), running.map((r) => r.try)],
      );
      const figures = await ledgerFigures(pool);
      const duringCut = a.logs.slice(logsAtCut, logsAtHeal);
      const afterHeal = a.logs.slice(logsAtHeal);
      const cutLogged = duringCut.find(
        (line) => /lease/.test(String(line.msg)) && (line.level === 'warn' || line.level === 'error'),
      );
      const fenceLogged = duringCut.find((line) => /fenced/.test(String(line.msg)) && line.level === 'error');
      const recoveryLogged = afterHeal.find((line) => /lease confirmed again/.test(String(line.msg)));
      report('blackHole', {
        leaseMs: baseOptions.leaseMs,
        taskMs,
        cutMs,
        runningAtCut: running.length,
        heldAtCut: heldRows.length,
        overlaps: overlaps.overlaps,
        maxOverlapMs: overlaps.maxOverlapMs,
        fenceToRerunMinMs: overlaps.minGapMs,
        overlapPairs: overlaps.pairs,
        cutToFenceMs: fencedAfterMs.map((ms) => Math.round(ms)),
        startsAfterLeaseLapsed: lateStarts[0].n,
        healToRenewalMs: recoveredMs,
        workedAgain,
        allEnded,
        // The launcher beside it, never cut off: a fence there would be a renewal late under load.
        otherLauncherFences: b.logs.filter((line) => /tries fenced/.test(String(line.msg))).length,
        cutLogged: cutLogged?.msg ?? null,
        fenceLogged: fenceLogged?.msg ?? null,
        recoveryLogged: recoveryLogged?.msg ?? null,
        cutTryHistory: history.map((h) => `${h.result}: ${String(h.result_text).slice(0, 120)}`),
        ...figures,
      });

      expect(overlaps.pairs).toEqual([]);
      expect(allEnded, 'every request ends').toBe(true);
      expect(lateStarts[0].n, 'hole-a starts nothing once its lease may have lapsed').toBe(0);
      expect(cutLogged, 'hole-a logs that its lease renewal is late or failing').toBeDefined();
      expect(fenceLogged, 'hole-a logs that it fenced its tries').toBeDefined();
      expect(recoveryLogged, 'hole-a logs that its lease is confirmed again').toBeDefined();
      for (const ms of fencedAfterMs) expect(ms).toBeLessThan(baseOptions.leaseMs);
      for (const h of history) expect(h.result_text).toMatch(/fenced by its launcher/);
      expect(figures).toMatchObject({ lost: 0, leftRunning: 0 });
      expect(workedAgain, 'hole-a runs new rows after the heal').toBe(true);
    } finally {
      await watcher.stop().catch(() => undefined);
      await proxy.stop();
    }
  });
});
