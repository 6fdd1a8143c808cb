import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { channelFor, parseTableName } from '../../dist/config/identifiers.js';
import { claimStatement, claimValues } from '../../dist/store/launch-statement.js';
import { createTestDatabase, getRow, waitFor, type TestDatabase } from '../helpers/db.js';
import { historyOf, insertRunning, outcomeOf, storeOn, testLauncher, type TestStore } from '../helpers/store.js';

/**
 * The store's side of a reschedule by hand (pid cleared under a live lease): the claim leaves the
 * row alone while the lease holds, the owner's renewal finds it, its outcome is still written, and
 * the trigger names the owner. Rows are written directly, as each state would leave them.
 */
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
  await t.pool.query('TRUNCATE task_runner_requests, task_runner_requests_attempts');
});

const claimOrder = {
  host: 'other-host',
  launcherPid: process.pid,
  processIdentity: 'boot:2',
  queues: null,
  leaseMs: 60_000,
};
const claim = (limit = 10) => store.requestsClaim({ limit, launcherId: 'launcher-b', ...claimOrder });
const wipe = (id: string) => t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [id]);

describe('a row whose pid was cleared under a live lease', () => {
  it('is not claimed while the lease holds, and is once it has run out or been released', async () => {
    const id = await insertRunning(t.pool);
    await wipe(id);
    expect(await claim()).toEqual([]);
    await t.pool.query("UPDATE task_runner_requests SET lease_expires_at = now() - interval '1 second' WHERE id = $1", [
      id,
    ]);
    expect((await claim()).map((row) => row.id)).toEqual([id]);

    const other = await insertRunning(t.pool);
    await wipe(other);
    expect(await claim()).toEqual([]);
    expect(await store.requestsReleaseWiped({ launcherId: 'someone-else', ids: [other] })).toEqual([]);
    expect(await store.requestsReleaseWiped({ launcherId: testLauncher, ids: [other] })).toEqual([other]);
    expect((await claim()).map((row) => row.id)).toEqual([other]);
    // Released without a history row: no try of the first launcher's ran for it.
    expect(await historyOf(t.pool, other)).toEqual([]);
  });

  it('keeps the outcome its launcher writes: RESCHEDULED gives the try back, a try that finished first stays FINISHED', async () => {
    const stopped = await insertRunning(t.pool, { tries: 5, try_limit: 5 });
    const finished = await insertRunning(t.pool);
    await wipe(stopped);
    await wipe(finished);
    const written = await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(stopped, 5, { result: 'RESCHEDULED', resultText: 'rescheduled', refund: true }),
        outcomeOf(finished, 1, { result: 'FINISHED', resultText: 'done', endNow: true }),
      ],
    });
    expect([...written].sort()).toEqual([stopped, finished].sort());
    // The last try of five, rescheduled: given back, runnable at once, by anyone.
    expect(await getRow(t.pool, stopped)).toMatchObject({
      result: 'RESCHEDULED',
      tries: 4,
      completed_at: null,
      delay_until: null,
      pid: null,
      lease_expires_at: null,
    });
    expect(await getRow(t.pool, finished)).toMatchObject({ result: 'FINISHED', result_text: 'done', pid: null });
    expect((await historyOf(t.pool, stopped)).map((h) => [h.try, h.result])).toEqual([[5, 'RESCHEDULED']]);
    expect((await claim()).map((row) => row.id)).toEqual([stopped]);
    // Written once: the same outcome again finds the row no longer leased.
    expect(
      await store.requestsComplete({
        launcherId: testLauncher,
        outcomes: [outcomeOf(finished, 1, { result: 'FINISHED', endNow: true })],
      }),
    ).toEqual(new Set());
  });

  it("is found by its launcher's lease renewal, whose lease is extended only once a quarter of it has gone", async () => {
    const running = await insertRunning(t.pool);
    const wiped = await insertRunning(t.pool);
    await wipe(wiped);
    const before = (await getRow(t.pool, wiped)).lease_expires_at as Date;
    const first = await store.requestsRenewLeases({ launcherId: testLauncher, leaseMs: 60_000 });
    expect(first).toEqual({ renewed: [running, wiped].sort(), cancelled: [], wiped: [wiped] });
    expect((await getRow(t.pool, wiped)).lease_expires_at).toEqual(before);

    await t.pool.query(
      "UPDATE task_runner_requests SET lease_expires_at = now() + interval '10 seconds' WHERE id = $1",
      [wiped],
    );
    expect((await store.requestsRenewLeases({ launcherId: testLauncher, leaseMs: 60_000 })).wiped).toEqual([wiped]);
    const renewed = (await getRow(t.pool, wiped)).lease_expires_at as Date;
    expect(renewed.getTime() - Date.now()).toBeGreaterThan(50_000);
    expect(await store.requestsRenewLeases({ launcherId: 'launcher-b', leaseMs: 60_000 })).toEqual({
      renewed: [],
      cancelled: [],
      wiped: [],
    });
  });

  it('the notify trigger names the launcher whose lease holds the row', async () => {
    const listener = new pg.Client({ connectionString: t.url });
    await listener.connect();
    try {
      const payloads: string[] = [];
      listener.on('notification', (message) => payloads.push(message.payload ?? ''));
      await listener.query(`LISTEN "${channelFor(parseTableName('task_runner_requests'))}"`);
      const id = await insertRunning(t.pool);
      await wipe(id);
      await waitFor(() => payloads.includes(`rescheduled:${testLauncher}`), { what: 'the notice naming the launcher' });
      expect(payloads).toContain('');
      // The runner's own release clears the lease with the pid: a plain wake-up, no notice.
      payloads.length = 0;
      const released = await insertRunning(t.pool);
      await store.requestsReleaseByLauncher({ launcherId: testLauncher, text: 'shutdown', ids: [released] });
      await waitFor(() => payloads.includes(''), { what: 'the wake-up of the release' });
      expect(payloads.filter((p) => p !== '')).toEqual([]);
    } finally {
      await listener.end();
    }
  });

  it('costs the claim nothing: on thousands of waiting rows its pick still reads runnable_idx and a few pages', async () => {
    await t.pool.query(`INSERT INTO task_runner_requests (task_class_name, completed_at, result, tries)
      SELECT 'Echo', now(), 'FINISHED', 1 FROM generate_series(1, 3000)`);
    await t.pool.query(
      `INSERT INTO task_runner_requests (task_class_name) SELECT 'Echo' FROM generate_series(1, 3000)`,
    );
    for (let i = 0; i < 5; i += 1) await wipe(await insertRunning(t.pool, { priority: 10 }));
    await t.pool.query('ANALYZE task_runner_requests');
    const table = parseTableName('task_runner_requests');
    const values = claimValues('launcher-b', {
      limit: 10,
      startNow: 10,
      host: 'other-host',
      launcherPid: process.pid,
      launcherIdentity: null,
      queues: null,
      leaseMs: 60_000,
      maxOptionsBytes: 1_000_000,
    });
    const client = await t.pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query(
        `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${claimStatement(table).text}`,
        values,
      );
      await client.query('ROLLBACK');
      const plan = JSON.stringify(rows[0]['QUERY PLAN']);
      expect(plan).toContain('"Index Name":"task_runner_requests_runnable_idx"');
      expect(plan).not.toContain('Seq Scan');
      // The five wiped rows come first (priority 10) and are passed over.
      expect(plan).toMatch(/"Rows Removed by Filter":5\b/);
    } finally {
      client.release();
    }
  });
});
