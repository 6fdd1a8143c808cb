import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseTableName } from '../../dist/config/identifiers.js';
import { requestsRetryMatching } from '../../dist/store/request-actions.js';
import type { AttemptOutcome } from '../../dist/store/request-store.js';
import { createTestDatabase, getRow, insertRequest, type TestDatabase } from '../helpers/db.js';
import { storeOn, type TestStore } from '../helpers/store.js';

/** How try outcomes, crash marks, lease recovery and manual retries change a row. */
let t: TestDatabase;
let store: TestStore;
const host = 'test-host';
const launcherId = 'launcher-a';

beforeAll(async () => {
  t = await createTestDatabase();
  store = storeOn(t.db, { backoff: { baseMs: 10_000, maxMs: 25_000 }, crashLimit: 3 });
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests');
});

/** A row running try `tries` under this launcher. */
function running(fields: Record<string, unknown> = {}): Promise<string> {
  return insertRequest(t.pool, {
    pid: 999_999,
    host,
    launcher_id: launcherId,
    process_identity: 'boot:1',
    tries: 1,
    try_limit: 3,
    started_at: new Date(),
    lease_expires_at: new Date(Date.now() + 60_000),
    ...fields,
  });
}

async function delaySeconds(id: string): Promise<number> {
  const { rows } = await t.pool.query(
    'SELECT extract(epoch FROM delay_until - now())::float8 AS s FROM task_runner_requests WHERE id = $1',
    [id],
  );
  return rows[0].s;
}

function outcome(
  id: string,
  tries: number,
  extra: Partial<Pick<AttemptOutcome, 'result' | 'endNow' | 'refund'>> = {},
): AttemptOutcome {
  return {
    id,
    tries,
    result: 'FAILED',
    resultText: 'Error: boom\n    at run',
    endNow: false,
    refund: false,
    crash: false,
    attempt: {
      pid: 999_999,
      threadId: null,
      mode: 'fresh',
      startedAtMs: null,
      exitCode: null,
      signal: null,
      peakMemoryBytes: null,
    },
    ...extra,
  };
}

describe('requestsComplete', () => {
  it('finishes a row', async () => {
    const id = await running();
    const written = await store.requestsComplete({
      launcherId,
      outcomes: [outcome(id, 1, { result: 'FINISHED', endNow: true })],
    });
    expect([...written]).toEqual([id]);
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({
      result: 'FINISHED',
      pid: null,
      process_identity: null,
      lease_expires_at: null,
      tries: 1,
    });
    expect(row.completed_at).toBeInstanceOf(Date);
  });

  it('makes a failed row runnable again after an exponential, capped backoff', async () => {
    const first = await running({ tries: 1 });
    const second = await running({ tries: 2 });
    const third = await running({ tries: 3, try_limit: 10 });
    await store.requestsComplete({ launcherId, outcomes: [outcome(first, 1), outcome(second, 2), outcome(third, 3)] });
    expect(await getRow(t.pool, first)).toMatchObject({
      result: 'FAILED',
      completed_at: null,
      pid: null,
      result_text: 'Error: boom\n    at run',
    });
    expect(await delaySeconds(first)).toBeCloseTo(10, 0); // base
    expect(await delaySeconds(second)).toBeCloseTo(20, 0); // base * 2
    expect(await delaySeconds(third)).toBeCloseTo(25, 0); // base * 4, capped at max
  });

  it('ends the request when its tries are used up or the outcome says to end it now', async () => {
    const usedUp = await running({ tries: 3, try_limit: 3 });
    const permanent = await running({ tries: 1, try_limit: 3 });
    await store.requestsComplete({
      launcherId,
      outcomes: [outcome(usedUp, 3), outcome(permanent, 1, { endNow: true })],
    });
    for (const id of [usedUp, permanent]) {
      const row = await getRow(t.pool, id);
      expect(row.completed_at).toBeInstanceOf(Date);
      expect(row).toMatchObject({ result: 'FAILED', delay_until: null, pid: null });
    }
  });

  it('gives an interrupted try back and makes the row runnable at once', async () => {
    const id = await running({ tries: 2 });
    await store.requestsComplete({ launcherId, outcomes: [outcome(id, 2, { result: 'INTERRUPTED', refund: true })] });
    expect(await getRow(t.pool, id)).toMatchObject({
      result: 'INTERRUPTED',
      tries: 1,
      pid: null,
      delay_until: null,
      completed_at: null,
    });
  });

  it('does not overwrite a row that another launcher or a later try owns', async () => {
    const otherLauncher = await running({ launcher_id: 'launcher-b' });
    const laterTry = await running({ tries: 2 });
    const written = await store.requestsComplete({
      launcherId,
      outcomes: [outcome(otherLauncher, 1), outcome(laterTry, 1)],
    });
    expect(written.size).toBe(0);
    expect(await getRow(t.pool, otherLauncher)).toMatchObject({ result: null, pid: 999_999 });
    expect(await getRow(t.pool, laterTry)).toMatchObject({ result: null, pid: 999_999 });
  });
});

describe('requestsMarkCrashed', () => {
  it('marks only rows whose pid, identity and host still match', async () => {
    const gone = await running({ tries: 1 });
    const moved = await running({ pid: 1234 });
    const otherHost = await running({ host: 'other-host' });
    const crashed = await store.requestsMarkCrashed({
      host,
      rows: [gone, moved, otherHost].map((id) => ({
        id,
        pid: 999_999,
        processIdentity: 'boot:1',
        text: 'process is gone',
      })),
    });
    expect(crashed).toEqual([gone]);
    expect(await getRow(t.pool, gone)).toMatchObject({
      result: 'CRASHED',
      result_text: 'process is gone',
      pid: null,
      completed_at: null,
    });
    expect(await getRow(t.pool, moved)).toMatchObject({ pid: 1234, result: null });
    expect(await getRow(t.pool, otherHost)).toMatchObject({ pid: 999_999, result: null });
  });
});

describe('requestsRecoverExpired', () => {
  it('recovers expired rows of other hosts only', async () => {
    const past = new Date(Date.now() - 1_000);
    const expiredElsewhere = await running({ host: 'dead-host', launcher_id: 'launcher-z', lease_expires_at: past });
    const expiredHere = await running({ lease_expires_at: past });
    const liveElsewhere = await running({ host: 'live-host', launcher_id: 'launcher-y' });
    expect(await store.requestsRecoverExpired({ host })).toEqual([expiredElsewhere]);
    const row = await getRow(t.pool, expiredElsewhere);
    expect(row).toMatchObject({ result: 'CRASHED', pid: null, completed_at: null });
    expect(row.result_text).toMatch(/lease expired: launcher launcher-z on host dead-host/);
    expect(await getRow(t.pool, expiredHere)).toMatchObject({ pid: 999_999 });
    expect(await getRow(t.pool, liveElsewhere)).toMatchObject({ pid: 999_999 });
  });
});

describe('requestsRetry, requestsNextDelayMs and requestsCountByState', () => {
  it('makes an ended request runnable with one more try', async () => {
    const id = await insertRequest(t.pool, { tries: 3, try_limit: 3, completed_at: new Date(), result: 'FAILED' });
    await store.requestsRetry({ id });
    expect(await getRow(t.pool, id)).toMatchObject({ completed_at: null, delay_until: null, try_limit: 4, tries: 3 });
  });

  it('retries in bulk every request the failed state holds, one that never ended with no try left too', async () => {
    const ended = await insertRequest(t.pool, { tries: 3, try_limit: 3, completed_at: new Date(), result: 'FAILED' });
    const spent = await insertRequest(t.pool, { tries: 3, try_limit: 3 });
    const waiting = await insertRequest(t.pool, { tries: 1, try_limit: 3 });
    const table = parseTableName('task_runner_requests');
    expect(await requestsRetryMatching(t.db, table, { state: 'failed' })).toEqual([ended, spent]);
    expect(await getRow(t.pool, spent)).toMatchObject({ completed_at: null, try_limit: 4, tries: 3 });
    expect(await getRow(t.pool, waiting)).toMatchObject({ try_limit: 3 });
  });

  it('refuses a running or missing request with a code', async () => {
    const id = await running();
    await expect(store.requestsRetry({ id })).rejects.toMatchObject({ code: 'ALREADY_RUNNING' });
    await expect(store.requestsRetry({ id: '987654321' })).rejects.toMatchObject({ code: 'REQUEST_NOT_FOUND' });
  });

  it('reports the nearest delay and counts rows by state', async () => {
    expect(await store.requestsNextDelayMs({ queues: null })).toBeNull();
    await insertRequest(t.pool, { delay_until: new Date(Date.now() + 30_000) });
    await insertRequest(t.pool, { delay_until: new Date(Date.now() + 90_000), queue: 'mail' });
    const next = await store.requestsNextDelayMs({ queues: null });
    expect(next).toBeGreaterThan(25_000);
    expect(next).toBeLessThanOrEqual(30_000);
    expect(await store.requestsNextDelayMs({ queues: ['mail'] })).toBeGreaterThan(85_000);

    await insertRequest(t.pool, {});
    await running();
    await insertRequest(t.pool, { completed_at: new Date(), result: 'FINISHED', tries: 1 });
    await insertRequest(t.pool, { completed_at: new Date(), result: 'FAILED', tries: 5 });
    expect(await store.requestsCountByState()).toEqual({
      waiting: 1,
      delayed: 2,
      running: 1,
      held: 0,
      finished: 1,
      givenUp: 1,
      cancelled: 0,
      parked: 0,
    });
  });
});
