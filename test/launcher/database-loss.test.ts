import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TaskRunnerError } from '../../dist/index.js';
import { createTestDatabase, waitForCompleted, type TestDatabase } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * A dead database is a clear error at start, and losing every connection while running costs
 * nothing: the LISTEN connection comes back, a failed outcome write is retried, and the launcher
 * goes on. The runner's sessions are marked with an application_name so the test can end them
 * all with pg_terminate_backend, as a server restart would.
 */
const runners = useTestRunners();
const victim = 'cwtr-database-loss';

let t: TestDatabase;
let pool: pg.Pool;
beforeAll(async () => {
  t = await createTestDatabase();
  pool = new pg.Pool({ connectionString: t.url, application_name: victim });
  // Idle sessions ended by the server raise errors on the pool; the runner must not need them.
  pool.on('error', () => undefined);
});
afterAll(async () => {
  await pool?.end();
  await t?.drop();
});
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests');
});

async function killRunnerSessions(): Promise<number> {
  const { rows } = await t.pool.query(
    `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`,
    [victim],
  );
  return rows[0].n;
}

describe('database loss', () => {
  it('refuses to start on an unreachable database with DATABASE_UNAVAILABLE, and stops cleanly', async () => {
    const runner = runners.create({ url: 'postgres://root@127.0.0.1:1/nowhere' });
    const error = await runner.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskRunnerError);
    expect((error as TaskRunnerError).code).toBe('DATABASE_UNAVAILABLE');
    expect((error as Error).message).toMatch(/cannot use the database: .*ECONNREFUSED/);
    await runner.stop();
  });

  it('wakes on NOTIFY again after every session was killed', async () => {
    const runner = runners.create(t, { db: pool, pollIntervalMs: 60_000 });
    const idle = runner.events.waitFor('runner:idle', () => true, 10_000);
    await runner.start();
    await idle;
    expect(await killRunnerSessions()).toBeGreaterThan(0);
    // The listener reconnects and claims what arrived meanwhile; polling is a minute away.
    const { rows } = await t.pool.query<{ id: string }>(
      `INSERT INTO task_runner_requests (task_class_name, options) VALUES ('Echo', '--- {text: back}') RETURNING id`,
    );
    const row = await waitForCompleted(t.pool, rows[0]!.id, 15_000);
    expect(row).toMatchObject({ result: 'FINISHED', result_text: 'back', tries: 1, pid: null });
    await runner.stop();
  });

  it('records the outcome of a task that ran while its sessions were killed', async () => {
    const runner = runners.create(t, { db: pool });
    await runner.start();
    const id = await runner.schedule('Sleep', { ms: 400 });
    await runners.started(runner, id, 10_000);
    await killRunnerSessions();
    const row = await waitForCompleted(t.pool, id, 20_000);
    expect(row).toMatchObject({ result: 'FINISHED', result_text: 'slept 400 ms', tries: 1, pid: null });
    // Still healthy afterwards.
    const next = await runner.schedule('Echo', { text: 'after' });
    expect(await waitForCompleted(t.pool, next, 15_000)).toMatchObject({ result: 'FINISHED', result_text: 'after' });
    await runner.stop();
  });
});
