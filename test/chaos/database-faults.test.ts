import { describe, expect, it } from 'vitest';
import { useChaosCluster } from './helpers/cluster.js';
import { insertWork, ledgerFigures, waitAllEnded } from './helpers/ledger.js';
import { report, scale } from './helpers/summary.js';

/**
 * The database goes away under working launchers: every session of theirs is terminated every
 * few seconds (pg_terminate_backend), and separately the server restarts mid-run. Nothing may be
 * lost or stuck, and every try that ran (it wrote a ledger start) must have its outcome in the
 * attempt history, written by its own launcher: none recovered by a probe or a lease.
 */
const cluster = useChaosCluster();
const tasks = scale(2_000, 600);
const options = { maxTasksPerChild: 20 };

async function outcomeFigures(pool: import('pg').Pool) {
  const { rows } = await pool.query(`
    SELECT
      (SELECT count(*)::int FROM (SELECT DISTINCT request_id, try FROM chaos_ledger WHERE event = 'start') s
        WHERE NOT EXISTS (SELECT 1 FROM task_runner_requests_attempts a WHERE a.request_id = s.request_id AND a.try = s.try)) AS "triesWithoutOutcome",
      (SELECT count(*)::int FROM task_runner_requests_attempts WHERE result = 'CRASHED') AS "recoveredTries",
      (SELECT count(*)::int FROM task_runner_requests_attempts WHERE result <> 'FINISHED') AS "unfinishedTries",
      (SELECT count(*)::int FROM task_runner_requests WHERE completed_at IS NULL) AS stuck`);
  return rows[0] as { triesWithoutOutcome: number; recoveredTries: number; unfinishedTries: number; stuck: number };
}

describe('the database goes away', () => {
  it(`launcher sessions terminated every 2 s during ${tasks} tasks: nothing lost, stuck or unrecorded`, async () => {
    const { pool } = cluster.server;
    await cluster.reset();
    await insertWork(pool, tasks, { ms: 50 });
    const launchers = [1, 2].map((n) => cluster.launcher(`term-${n}`, options));
    await Promise.all(launchers.map((l) => l.start()));
    let last = Date.now();
    let rounds = 0;
    let sessions = 0;
    await waitAllEnded(pool, {
      during: async () => {
        if (Date.now() - last < 2_000) return;
        last = Date.now();
        rounds += 1;
        sessions += await cluster.server.terminate('chaos-launcher');
      },
    });
    expect(await Promise.all(launchers.map((l) => l.stop()))).toEqual([0, 0]);
    const figures = { ...(await ledgerFigures(pool)), ...(await outcomeFigures(pool)) };
    report('sessionsTerminated', {
      launchers: 2,
      concurrency: 8,
      tasks,
      rounds,
      sessionsTerminated: sessions,
      ...figures,
    });

    expect(rounds).toBeGreaterThanOrEqual(2);
    expect(figures).toMatchObject({ lost: 0, stuck: 0, leftRunning: 0, triesWithoutOutcome: 0, recoveredTries: 0 });
    for (const l of launchers) expect(l.running).toBe(false);
  });

  it(`PostgreSQL restarts mid-run during ${tasks} tasks: nothing lost, stuck or unrecorded`, async () => {
    const { pool } = cluster.server;
    await cluster.reset();
    await insertWork(pool, tasks, { ms: 50 });
    const launchers = [1, 2].map((n) => cluster.launcher(`restart-${n}`, options));
    await Promise.all(launchers.map((l) => l.start()));
    let restartedMs: number | null = null;
    await waitAllEnded(pool, {
      during: async () => {
        if (restartedMs !== null) return;
        const { rows } = await pool.query(
          'SELECT count(*)::int AS n FROM task_runner_requests WHERE completed_at IS NOT NULL',
        );
        if (rows[0].n < tasks / 3) return;
        const began = Date.now();
        await cluster.server.restart();
        restartedMs = Date.now() - began;
      },
    });
    expect(await Promise.all(launchers.map((l) => l.stop()))).toEqual([0, 0]);
    const figures = { ...(await ledgerFigures(pool)), ...(await outcomeFigures(pool)) };
    report('databaseRestart', { launchers: 2, concurrency: 8, tasks, restartMs: restartedMs, ...figures });

    expect(restartedMs).not.toBeNull();
    expect(figures).toMatchObject({ lost: 0, stuck: 0, leftRunning: 0, triesWithoutOutcome: 0, recoveredTries: 0 });
  });
});
