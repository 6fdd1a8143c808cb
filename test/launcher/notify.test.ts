import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * LISTEN/NOTIFY wakes an idle launcher: a row inserted by any client starts at once. Polling is
 * set to a minute, so only the notification can explain a start within seconds.
 */
const runners = useTestRunners();

const t = useTestDatabase();

describe('waking on NOTIFY', () => {
  it('starts a row inserted with plain SQL within seconds though polling is a minute', async () => {
    const runner = runners.create(t, { pollIntervalMs: 60_000 });
    const idle = runner.events.waitFor('runner:idle', () => true, 10_000);
    await runner.start();
    await idle;

    // Both awaited from before the insert: a try that ends before its start is written has both
    // written by one statement, and both events come in the same tick.
    const started = runner.events.waitFor('task:started', () => true, 5_000);
    const completed = runner.events.waitFor('task:completed', () => true, 5_000);
    const { rows } = await t.pool.query<{ id: string }>(
      `INSERT INTO task_runner_requests (task_class_name, options) VALUES ('Echo', '--- {text: woken}') RETURNING id`,
    );
    expect((await started).id).toBe(rows[0]!.id);
    expect(await completed).toMatchObject({ id: rows[0]!.id, result: 'FINISHED', resultText: 'woken' });
    await runner.stop();
  });

  it('starts a row scheduled inside a transaction once it commits', async () => {
    const runner = runners.create(t, { pollIntervalMs: 60_000 });
    const idle = runner.events.waitFor('runner:idle', () => true, 10_000);
    await runner.start();
    await idle;

    const client = await t.pool.connect();
    try {
      await client.query('BEGIN');
      const id = await runner.schedule('Echo', { text: 'committed' }, { db: client });
      const completed = runner.events.waitFor('task:completed', (e) => e.id === id, 5_000);
      // Invisible until commit: the runner stays idle.
      expect((await runner.status()).counts.waiting).toBe(0);
      await client.query('COMMIT');
      expect(await completed).toMatchObject({ result: 'FINISHED', resultText: 'committed' });
    } finally {
      client.release();
    }
    await runner.stop();
  });

  it('wakes every idle launcher sharing the table', async () => {
    const a = runners.create(t, { pollIntervalMs: 60_000, concurrency: 1 });
    const b = runners.create(t, { pollIntervalMs: 60_000, concurrency: 1 });
    await Promise.all(
      [a, b].map(async (runner) => {
        const idle = runner.events.waitFor('runner:idle', () => true, 10_000);
        await runner.start();
        await idle;
      }),
    );
    const startedA = a.events.waitFor('task:started', () => true, 5_000);
    const startedB = b.events.waitFor('task:started', () => true, 5_000);
    // Two slow tasks: with one slot each, both launchers must take one.
    await t.pool.query(`INSERT INTO task_runner_requests (task_class_name, options)
      SELECT 'Sleep', '--- {ms: 1000}' FROM generate_series(1, 2)`);
    const [ea, eb] = await Promise.all([startedA, startedB]);
    expect(ea.id).not.toBe(eb.id);
    await Promise.all([a.stop(), b.stop()]);
  });
});
