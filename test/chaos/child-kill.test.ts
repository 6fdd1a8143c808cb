import { describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/db.js';
import { useChaosCluster } from './helpers/cluster.js';
import { insertWork, ledgerFigures, recordKill, waitAllEnded } from './helpers/ledger.js';
import { spread } from './helpers/stats.js';
import { report, scale } from './helpers/summary.js';

/**
 * SIGKILL random task processes of two working launchers, one after another. Each killed try's
 * row must leave "running" (its outcome written: CRASHED, then retried) within a second of the
 * kill, measured on the database's clock from the kill to the statement that wrote the outcome,
 * and the launchers must fill the freed slots again.
 */
const cluster = useChaosCluster();
const kills = scale(100, 30);
const tasks = scale(1_500, 250);
const concurrency = 8;

describe('SIGKILL of task processes', () => {
  it(`${kills} killed children: each row leaves running within 1 s, the pools refill`, async () => {
    const { pool } = cluster.server;
    await cluster.reset();
    await insertWork(pool, tasks, { ms: 1_000, tryLimit: 60 });
    const launchers = [1, 2].map((n) => cluster.launcher(`child-${n}`, { concurrency, crashLimit: 50 }));
    await Promise.all(launchers.map((l) => l.start()));

    const victims: { id: string; try: number; pid: number }[] = [];
    while (victims.length < kills) {
      // A try that runs now: its row holds the pid its own ledger entry names (the child's).
      const { rows } = await pool.query(`
        SELECT r.id::text AS id, r.tries AS try, r.pid FROM task_runner_requests r
        JOIN chaos_ledger l ON l.request_id = r.id AND l.try = r.tries AND l.pid = r.pid AND l.event = 'start'
        WHERE r.pid IS NOT NULL AND r.completed_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM chaos_ledger f WHERE f.request_id = r.id AND f.try = r.tries AND f.event = 'finish')
        ORDER BY random() LIMIT 1`);
      if (rows.length === 0) {
        await waitFor(
          async () =>
            (await pool.query(`SELECT 1 FROM chaos_ledger WHERE event = 'start' AND at > now() - interval '1 second'`))
              .rows.length > 0,
          { timeoutMs: 60_000, what: 'a try to start' },
        );
        continue;
      }
      const victim = rows[0] as { id: string; try: number; pid: number };
      await recordKill(pool, 'child', victim.pid, 'child');
      try {
        process.kill(victim.pid, 'SIGKILL');
      } catch {
        continue; // it ended meanwhile
      }
      victims.push(victim);
      // The row leaves running: its outcome is written (or the task finished just before).
      await waitFor(
        async () =>
          (
            await pool.query(
              'SELECT 1 FROM task_runner_requests WHERE id = $1 AND (tries <> $2 OR pid IS DISTINCT FROM $3)',
              [victim.id, victim.try, victim.pid],
            )
          ).rows.length > 0,
        { timeoutMs: 30_000, intervalMs: 10, what: `request ${victim.id} to leave running` },
      );
    }

    // The pools refill: both launchers run `concurrency` tries again.
    const refilled = await waitFor(
      async () => {
        const { rows } = await pool.query(`SELECT host, count(*)::int AS n FROM task_runner_requests
        WHERE pid IS NOT NULL AND started_at IS NOT NULL GROUP BY host`);
        return rows.length === 2 && rows.every((r) => r.n === concurrency) ? rows : null;
      },
      { timeoutMs: 60_000, what: 'both launchers to run a full pool again' },
    );
    await waitAllEnded(pool);
    expect(await Promise.all(launchers.map((l) => l.stop()))).toEqual([0, 0]);

    const { rows: timing } = await pool.query(
      `
      SELECT a.result, extract(epoch FROM a.ended_at - k.at) * 1000 AS ms
      FROM unnest($1::bigint[], $2::int[], $3::int[]) AS v(id, try, pid)
      JOIN chaos_kills k ON k.pid = v.pid AND k.what = 'child'
      JOIN task_runner_requests_attempts a ON a.request_id = v.id AND a.try = v.try`,
      [victims.map((v) => v.id), victims.map((v) => v.try), victims.map((v) => v.pid)],
    );
    const crashed = timing.filter((r) => r.result === 'CRASHED').map((r) => Number(r.ms));
    const figures = await ledgerFigures(pool);
    report('childKill', {
      launchers: 2,
      concurrency,
      tasks,
      kills: victims.length,
      crashedOutcomes: crashed.length,
      finishedBeforeKill: timing.length - crashed.length,
      leaveRunning: spread(crashed),
      refilled: refilled.length === 2,
      ...figures,
    });

    expect(timing).toHaveLength(victims.length);
    // A task may finish in the instant before its kill; every other kill is a crash.
    expect(crashed.length).toBeGreaterThanOrEqual(victims.length - 2);
    expect(Math.max(...crashed)).toBeLessThanOrEqual(1_000);
    expect(figures).toMatchObject({ lost: 0, duplicates: 0, leftRunning: 0 });
  });
});
