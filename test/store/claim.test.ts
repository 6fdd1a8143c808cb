import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseTableName } from '../../dist/config/identifiers.js';
import { createTestDatabase, getRow, insertRequest, insertRequests, type TestDatabase } from '../helpers/db.js';
import { TestStore } from '../helpers/store.js';

let t: TestDatabase;
let store: TestStore;

beforeAll(async () => {
  t = await createTestDatabase({ poolMax: 10 });
  store = storeOn(t.db);
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests');
});

function storeOn(db: Kysely<any>): TestStore {
  return new TestStore({
    db,
    table: parseTableName('task_runner_requests'),
    backoff: { baseMs: 1_000, maxMs: 60_000 },
    crashLimit: 3,
  });
}

function claim(on: TestStore, limit: number, launcherId = 'launcher-a', queues: string[] | null = null) {
  return on.requestsClaim({
    limit,
    launcherId,
    host: 'test-host',
    launcherPid: process.pid,
    processIdentity: 'boot:1',
    queues,
    leaseMs: 60_000,
  });
}

describe('requestsClaim', () => {
  it('claims only runnable rows', async () => {
    const past = new Date(Date.now() - 60_000);
    const future = new Date(Date.now() + 3_600_000);
    const runnable = [
      await insertRequest(t.pool, {}),
      await insertRequest(t.pool, { delay_until: past }),
      await insertRequest(t.pool, { tries: 4, try_limit: 5 }),
    ];
    await insertRequest(t.pool, { completed_at: new Date(), result: 'FINISHED' });
    await insertRequest(t.pool, { pid: 4242, host: 'other-host' });
    await insertRequest(t.pool, { tries: 5, try_limit: 5 });
    await insertRequest(t.pool, { delay_until: future });

    const claimed = await claim(store, 100);
    expect(claimed.map((c) => c.id).sort()).toEqual(runnable.sort());
    expect(await claim(store, 100)).toEqual([]);
  });

  it('marks claimed rows running in the same statement', async () => {
    const [id] = await insertRequests(t.pool, 1, { options: '--- {text: hi}', try_limit: 3 });
    const [claimed] = await claim(store, 1, 'launcher-x');
    expect(claimed).toMatchObject({
      id,
      taskClassName: 'Echo',
      options: '--- {text: hi}',
      tries: 1,
      tryLimit: 3,
      queue: 'default',
    });
    const row = await getRow(t.pool, id!);
    expect(row).toMatchObject({
      pid: process.pid,
      host: 'test-host',
      launcher_id: 'launcher-x',
      tries: 1,
      process_identity: 'boot:1',
    });
    expect(row.started_at).toBeInstanceOf(Date);
    expect(row.lease_expires_at.getTime()).toBeGreaterThan(Date.now());
  });

  it('never returns more rows than the limit', async () => {
    await insertRequests(t.pool, 25);
    for (const limit of [1, 2, 7]) {
      expect(await claim(store, limit)).toHaveLength(limit);
    }
    expect(await claim(store, 0)).toEqual([]);
    expect(await claim(store, 100)).toHaveLength(25 - 10);
  });

  it('takes higher priority first, then oldest', async () => {
    const low = await insertRequest(t.pool, { priority: 0 });
    const high = await insertRequest(t.pool, { priority: 10 });
    const low2 = await insertRequest(t.pool, { priority: 0 });
    expect((await claim(store, 3)).map((c) => c.id)).toEqual([high, low, low2]);
  });

  it('claims only from the queues given', async () => {
    const mail = await insertRequest(t.pool, { queue: 'mail' });
    await insertRequest(t.pool, { queue: 'reports' });
    expect((await claim(store, 10, 'l', ['mail'])).map((c) => c.id)).toEqual([mail]);
  });

  it('never hands the same row to two concurrent claims', async () => {
    const total = 300;
    await insertRequests(t.pool, total);
    // Separate pools: each claimer has its own connections, as separate launchers would.
    const pools = [1, 2, 3, 4].map(() => new pg.Pool({ connectionString: t.url, max: 2 }));
    const dbs = pools.map((pool) => new Kysely<any>({ dialect: new PostgresDialect({ pool }) }));
    try {
      const stores = dbs.map(storeOn);
      const seen: string[] = [];
      for (let round = 0; round < 60 && seen.length < total; round += 1) {
        const batches = await Promise.all(stores.map((s, i) => claim(s, 3 + i, `launcher-${i}`)));
        batches.forEach((batch, i) => expect(batch.length).toBeLessThanOrEqual(3 + i));
        seen.push(...batches.flat().map((c) => c.id));
      }
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      const { rows } = await t.pool.query(
        'SELECT count(*)::int AS n FROM task_runner_requests WHERE pid IS NULL OR tries <> 1',
      );
      expect(rows[0].n).toBe(0);
    } finally {
      await Promise.all(dbs.map((db) => db.destroy()));
    }
  });

  it('skips rows another transaction has locked instead of waiting', async () => {
    const [locked, free] = await insertRequests(t.pool, 2);
    const holder = await t.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM task_runner_requests WHERE id = $1 FOR UPDATE', [locked]);
      expect((await claim(store, 10)).map((c) => c.id)).toEqual([free]);
      await holder.query('ROLLBACK');
      expect((await claim(store, 10)).map((c) => c.id)).toEqual([locked]);
    } finally {
      holder.release();
    }
  });
});
