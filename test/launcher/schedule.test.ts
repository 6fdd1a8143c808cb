import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createClient } from '../../dist/index.js';
import { useTestDatabase, getRow, waitForCompleted } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/** Scheduling: options as YAML, parameters, the caller's transaction, and every kind of `db`. */
const runners = useTestRunners();

const t = useTestDatabase();

describe('schedule', () => {
  it('stores options as YAML and the parameters in their columns', async () => {
    const runner = runners.create(t);
    const delayUntil = new Date(Date.now() + 3_600_000);
    const id = await runner.schedule(
      'Nested::Inner',
      { text: 'hi', list: [1, 2] },
      { tryLimit: 2, priority: 5, queue: 'mail', delayUntil },
    );
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({
      task_class_name: 'Nested::Inner',
      try_limit: 2,
      priority: 5,
      queue: 'mail',
      tries: 0,
      pid: null,
    });
    expect(row.delay_until.getTime()).toBe(delayUntil.getTime());
    expect(row.options).toBe('---\ntext: hi\nlist:\n  - 1\n  - 2\n');
    await runner.stop();
  });

  it('inserts many requests in one call, ids in order', async () => {
    const runner = runners.create(t);
    const ids = await runner.scheduleMany(
      [1, 2, 3].map((n) => ({ taskClassName: 'Echo', options: { text: `n${n}` } })),
    );
    expect(ids).toHaveLength(3);
    for (const [i, id] of ids.entries()) expect((await getRow(t.pool, id)).options).toContain(`text: n${i + 1}`);
    await runner.stop();
  });

  it("schedules inside the caller's Kysely transaction: rolled back, nothing; committed, it runs", async () => {
    const runner = await runners.start(t);
    await t.db
      .transaction()
      .execute(async (trx) => {
        await runner.schedule('Echo', { text: 'rolled back' }, { db: trx });
        throw new Error('rollback');
      })
      .catch(() => undefined);
    expect((await runner.status()).counts).toMatchObject({ waiting: 0, running: 0, finished: 0 });

    const id = await t.db.transaction().execute((trx) => runner.schedule('Echo', { text: 'committed' }, { db: trx }));
    expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'FINISHED', result_text: 'committed' });
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM task_runner_requests');
    expect(rows[0].n).toBe(1);
    await runner.stop();
  });

  it('refuses bad parameters with a code', async () => {
    const runner = runners.create(t);
    await expect(runner.schedule('Echo', {}, { tryLimit: 0 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(runner.schedule('Echo', {}, { delayMs: -5 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    await expect(runner.schedule('Echo', { big: 'x'.repeat(300) }, {})).resolves.toEqual(expect.any(String));
    await runner.stop();
  });
});

describe('the db option', () => {
  it('accepts a pg.Pool, which it leaves open', async () => {
    const pool = new pg.Pool({ connectionString: t.url, max: 4 });
    try {
      const runner = await runners.start({ url: t.url }, { db: pool });
      const id = await runner.schedule('Echo', { text: 'over a pool' });
      expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FINISHED', resultText: 'over a pool' });
      await runner.stop();
      await expect(pool.query('SELECT 1')).resolves.toBeDefined();
    } finally {
      await pool.end();
    }
  });

  it('accepts a Kysely instance, with listenDb for notifications', async () => {
    const pool = new pg.Pool({ connectionString: t.url, max: 4 });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    try {
      // Polling is off: only the listenDb connection's notifications can wake it.
      const runner = runners.create({ url: t.url }, { db, listenDb: t.url, pollIntervalMs: 60_000 });
      const idle = runner.events.waitFor('runner:idle', () => true, 10_000);
      await runner.start();
      await idle;
      const id = await runner.schedule('Echo', { text: 'over kysely' });
      expect(await finalCompletion(runner, id, 5_000)).toMatchObject({ result: 'FINISHED', resultText: 'over kysely' });
      await runner.stop();
    } finally {
      await db.destroy();
    }
  });

  it('createClient schedules without running anything', async () => {
    const scheduler = createClient({ db: t.url, tasksDir: new URL('../fixtures/tasks/', import.meta.url).pathname });
    try {
      const id = await scheduler.schedule('Echo', { text: 'queued' });
      await expect(scheduler.schedule('Nope')).rejects.toMatchObject({ code: 'TASK_UNKNOWN' });
      expect(await scheduler.find(id)).toMatchObject({ id, task_class_name: 'Echo', tries: 0 });
      expect(await scheduler.counts()).toMatchObject({ waiting: 1 });
      expect(await scheduler.cancel(id)).toMatchObject({ state: 'cancelled', result: 'CANCELLED' });
      expect(await scheduler.counts()).toMatchObject({ waiting: 0, cancelled: 1, givenUp: 1 });
      await scheduler.retry(id);
      expect(await scheduler.find(id)).toMatchObject({ completed_at: null, cancel_requested_at: null });
      expect(await scheduler.attempts(id)).toEqual([]);
    } finally {
      await scheduler.close();
    }
  });
});
