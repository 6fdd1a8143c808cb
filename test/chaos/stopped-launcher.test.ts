import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/db.js';
import { isAlive } from '../helpers/processes.js';
import { baseOptions, useChaosCluster } from './helpers/cluster.js';
import { insertWork, ledgerFigures, recordKill, waitAllEnded } from './helpers/ledger.js';
import { overlapFigures, TryWatcher } from './helpers/overlaps.js';
import { report } from './helpers/summary.js';

/**
 * SIGSTOP a launcher for longer than its lease, let another host recover and rerun its rows, then
 * SIGCONT it. The frozen launcher's late outcomes must change nothing (the statement's guard on
 * launcher, try and pid fences them out), it must notice that the rows are no longer its own, stop
 * the children still running them and never start the rows it held: the work must not run twice
 * under two launchers once the first one is awake again.
 */
const cluster = useChaosCluster();
const taskMs = 12_000;
/** The frozen launcher of the second test: ten leases, frozen while another host works beside it. */
const frozenMs = 30_000;

describe('SIGSTOP past the lease, then SIGCONT', () => {
  it('late writes are fenced, lost rows are noticed, their children stopped, held rows never started', async () => {
    const { pool } = cluster.server;
    await cluster.reset();
    // Short tasks first (ids 1-8): once A has seen tries end it holds rows ahead (a long horizon),
    // so it has both running and held long rows when it freezes.
    await insertWork(pool, 8, { ms: 0 });
    await insertWork(pool, 24, { ms: taskMs, tryLimit: 10 });
    const a = cluster.launcher('stop-a', { concurrency: 4, prefetch: 8, prefetchHorizonMs: 600_000, crashLimit: 10 });
    await a.start();
    const running = await waitFor(
      async () => {
        const { rows } = await pool.query(`SELECT request_id::text AS id, try, pid FROM chaos_ledger
        WHERE host = 'stop-a' AND event = 'start' AND request_id > 8`);
        return rows.length === 4 ? (rows as { id: string; try: number; pid: number }[]) : null;
      },
      { timeoutMs: 60_000, what: 'stop-a to start 4 long tries' },
    );
    const { rows: heldRows } = await pool.query(
      `SELECT id::text AS id, tries FROM task_runner_requests WHERE launcher_id = $1 AND pid IS NOT NULL AND started_at IS NULL`,
      [a.launcherId],
    );
    await recordKill(pool, 'stop-a', a.pid, 'stop');
    a.signal('SIGSTOP');
    const stoppedAt = Date.now();

    const b = cluster.launcher('stop-b', { concurrency: 32, prefetch: 0, crashLimit: 10 });
    await b.start();
    // B recovers A's rows once the lease ran out, and starts A's running ones again.
    await waitFor(
      async () => {
        const { rows } = await pool.query(
          `SELECT count(DISTINCT request_id)::int AS n FROM chaos_ledger
        WHERE host = 'stop-b' AND event = 'start' AND request_id = ANY($1::bigint[])`,
          [running.map((r) => r.id)],
        );
        return rows[0].n === running.length;
      },
      { timeoutMs: 60_000, what: 'stop-b to rerun the rows stop-a was running' },
    );
    // And its held rows recovered too: one claimed after A's last renewal has a later lease, which
    // may not have run out yet (then it is still A's, and A rightly starts it once awake).
    await waitFor(
      async () => {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM task_runner_requests_attempts a
        JOIN unnest($1::bigint[], $2::int[]) AS h(id, try) ON h.id = a.request_id AND h.try = a.try
        WHERE a.result_text LIKE '%lease expired%'`,
          [heldRows.map((r) => r.id), heldRows.map((r) => r.tries)],
        );
        return rows[0].n === heldRows.length;
      },
      { timeoutMs: 60_000, what: 'stop-b to recover the rows stop-a held' },
    );
    const { rows: contRows } = await pool.query('SELECT clock_timestamp() AS at');
    a.signal('SIGCONT');
    const stoppedMs = Date.now() - stoppedAt;

    // A's children of the lost tries end soon after it wakes (not when their 12 s of work is done).
    const childPids = running.map((r) => Number(r.pid));
    const childrenGoneMs = await waitFor(() => childPids.every((pid) => !isAlive(pid)), {
      timeoutMs: 10_000,
      intervalMs: 20,
    }).then(
      () => Date.now() - stoppedAt - stoppedMs,
      () => null,
    );

    await waitAllEnded(pool);
    expect(await b.stop()).toBe(0);
    expect(await a.stop()).toBe(0);

    // Fencing: each of A's frozen tries has exactly one history row, the lease recovery's.
    const { rows: history } = await pool.query(
      `
      SELECT a.request_id::text AS id, a.try, a.result, a.result_text
      FROM task_runner_requests_attempts a JOIN unnest($1::bigint[], $2::int[]) AS r(id, try) ON r.id = a.request_id AND r.try = a.try
      ORDER BY 1`,
      [running.map((r) => r.id), running.map((r) => r.try)],
    );
    // The children of the lost tries never finished their work.
    const { rows: lateFinishes } = await pool.query(
      `
      SELECT count(*)::int AS n FROM chaos_ledger l JOIN unnest($1::bigint[], $2::int[]) AS r(id, try) ON r.id = l.request_id AND r.try = l.try
      WHERE l.event = 'finish' AND l.host = 'stop-a'`,
      [running.map((r) => r.id), running.map((r) => r.try)],
    );
    // Nothing A held when it froze was started by it after it woke up (the same try: A, awake with
    // its slots free, may claim such a row again once another host gave it back, as a new try).
    const { rows: heldStarted } = await pool.query(
      `
      SELECT count(*)::int AS n FROM chaos_ledger l JOIN unnest($2::bigint[], $3::int[]) AS h(id, try) ON h.id = l.request_id AND h.try = l.try
      WHERE l.host = 'stop-a' AND l.event = 'start' AND l.at > $1`,
      [contRows[0].at, heldRows.map((r) => r.id), heldRows.map((r) => r.tries)],
    );
    const figures = await ledgerFigures(pool);
    // A said so (its log, once the lease renewal showed the rows gone).
    const noticed = a.logs.find(
      (line) => /no longer this launcher's/.test(String(line.msg)) && /lease/.test(String(line.msg)),
    );
    report('stoppedLauncher', {
      leaseMs: baseOptions.leaseMs,
      taskMs,
      stoppedMs,
      runningAtStop: running.length,
      heldAtStop: heldRows.length,
      childrenGoneAfterContMs: childrenGoneMs,
      noticed: noticed?.msg ?? null,
      lateFinishes: lateFinishes[0].n,
      heldRowsStartedAfterCont: heldStarted[0].n,
      frozenTryHistory: history.map((h) => h.result),
      ...figures,
    });

    expect(noticed, 'stop-a logs that it lost its rows').toBeDefined();
    expect(childrenGoneMs, 'stop-a stops the children of its lost tries').not.toBeNull();
    expect(history.map((h) => h.result)).toEqual(running.map(() => 'CRASHED'));
    for (const h of history) expect(h.result_text).toMatch(/lease expired/);
    expect(lateFinishes[0].n).toBe(0);
    expect(heldStarted[0].n).toBe(0);
    expect(figures).toMatchObject({ lost: 0, duplicates: 0, leftRunning: 0 });
  });

  it(`SIGSTOP for ${frozenMs / 1000} s beside another host: its tries are fenced by its lease, none overlaps, the history says so`, async () => {
    const { pool } = cluster.server;
    await cluster.reset();
    const watcher = new TryWatcher(pool);
    watcher.start();
    try {
      await insertWork(pool, 8, { ms: 0 });
      await insertWork(pool, 24, { ms: taskMs, tryLimit: 10 });
      const a = cluster.launcher('freeze-a', {
        concurrency: 4,
        prefetch: 8,
        prefetchHorizonMs: 600_000,
        crashLimit: 10,
      });
      await a.start();
      const running = await waitFor(
        async () => {
          const { rows } = await pool.query(`SELECT request_id::text AS id, try, pid FROM chaos_ledger
          WHERE host = 'freeze-a' AND event = 'start' AND request_id > 8`);
          return rows.length === 4 ? (rows as { id: string; try: number; pid: number }[]) : null;
        },
        { timeoutMs: 60_000, what: 'freeze-a to start 4 long tries' },
      );
      const b = cluster.launcher('freeze-b', { concurrency: 32, prefetch: 0, crashLimit: 10 });
      await b.start();
      await recordKill(pool, 'freeze-a', a.pid, 'stop');
      a.signal('SIGSTOP');
      const stoppedAt = Date.now();
      // The fault lasts frozenMs: a fixed span, not a wait for something to happen.
      await new Promise((resolve) => setTimeout(resolve, frozenMs));
      a.signal('SIGCONT');
      await waitAllEnded(pool);
      expect(await b.stop()).toBe(0);
      expect(await a.stop()).toBe(0);

      const overlaps = overlapFigures(await watcher.stop());
      const fencedAfterMs = running.map((r) => Math.round((watcher.deathOf(Number(r.pid)) ?? Number.NaN) - stoppedAt));
      const { rows: history } = await pool.query(
        `
        SELECT a.request_id::text AS id, a.try, a.result, a.result_text
        FROM task_runner_requests_attempts a JOIN unnest($1::bigint[], $2::int[]) AS r(id, try) ON r.id = a.request_id AND r.try = a.try
        ORDER BY 1`,
        [running.map((r) => r.id), running.map((r) => r.try)],
      );
      const { rows: finishes } = await pool.query(
        `
        SELECT count(*)::int AS n FROM chaos_ledger l JOIN unnest($1::bigint[], $2::int[]) AS r(id, try) ON r.id = l.request_id AND r.try = l.try
        WHERE l.event = 'finish' AND l.host = 'freeze-a'`,
        [running.map((r) => r.id), running.map((r) => r.try)],
      );
      const figures = await ledgerFigures(pool);
      report('frozenLauncher', {
        leaseMs: baseOptions.leaseMs,
        taskMs,
        frozenMs,
        runningAtStop: running.length,
        overlaps: overlaps.overlaps,
        maxOverlapMs: overlaps.maxOverlapMs,
        fenceToRerunMinMs: overlaps.minGapMs,
        overlapPairs: overlaps.pairs,
        stopToFenceMs: fencedAfterMs,
        otherLauncherFences: b.logs.filter((line) => /tries fenced/.test(String(line.msg))).length,
        frozenLauncherSaid: [
          ...new Set(
            a.logs.map(
              (line) => `${line.level} ${String(line.msg)}${line.error === undefined ? '' : `: ${String(line.error)}`}`,
            ),
          ),
        ],
        frozenTriesFinished: finishes[0].n,
        frozenTryHistory: history.map((h) => `${h.result}: ${String(h.result_text).slice(0, 120)}`),
        ...figures,
      });

      expect(overlaps.pairs).toEqual([]);
      for (const ms of fencedAfterMs) expect(ms).toBeLessThan(baseOptions.leaseMs);
      // Each frozen try has one history row, and it says the try was fenced, not that it ran on.
      expect(history.map((h) => h.id)).toEqual(running.map((r) => r.id).sort());
      for (const h of history) expect(h.result_text).toMatch(/fenced by its launcher/);
      expect(finishes[0].n).toBe(0);
      expect(figures).toMatchObject({ lost: 0, leftRunning: 0 });
    } finally {
      await watcher.stop().catch(() => undefined);
    }
  });
});
