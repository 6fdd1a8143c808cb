import { beforeEach, describe, expect, it } from 'vitest';
import { getRow, insertRequest, useTestDatabase } from '../helpers/db.js';
import {
  crashOf,
  deadPid,
  historyOf,
  insertRunning,
  outcomeOf,
  storeOn,
  testHost,
  testLauncher,
} from '../helpers/store.js';

/**
 * Crashes (CRASHED, TIMED_OUT) are counted apart from exceptions; at `crashLimit` the request
 * is PARKED (ended) so that a task that kills its process every time stops being retried.
 */
const t = useTestDatabase();
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests_attempts');
});

async function complete(store: ReturnType<typeof storeOn>, ...outcomes: Parameters<typeof outcomeOf>[]): Promise<void> {
  await store.requestsComplete({ launcherId: testLauncher, outcomes: outcomes.map((args) => outcomeOf(...args)) });
}

describe('counting crashes', () => {
  it('counts CRASHED and TIMED_OUT tries and retries them after the backoff below the limit', async () => {
    const store = storeOn(t.db);
    const crashed = await insertRunning(t.pool);
    const timedOut = await insertRunning(t.pool, { crashes: 1 });
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [crashOf(crashed, 1), crashOf(timedOut, 1, 'TIMED_OUT')],
    });
    const first = await getRow(t.pool, crashed);
    expect(first).toMatchObject({ crashes: 1, result: 'CRASHED', completed_at: null, pid: null, tries: 1 });
    expect(first.delay_until.getTime()).toBeGreaterThan(Date.now());
    expect(await getRow(t.pool, timedOut)).toMatchObject({
      crashes: 2,
      result: 'TIMED_OUT',
      completed_at: null,
      result_text: 'timed out after 100 ms',
    });
  });

  it('does not count exceptions, permanent failures or interruptions', async () => {
    const store = storeOn(t.db);
    const failed = await insertRunning(t.pool, { crashes: 2 });
    const permanent = await insertRunning(t.pool, { crashes: 2 });
    const interrupted = await insertRunning(t.pool, { crashes: 2, tries: 2 });
    await complete(
      store,
      [failed, 1],
      [permanent, 1, { endNow: true }],
      [interrupted, 2, { result: 'INTERRUPTED', refund: true, resultText: 'shutdown' }],
    );
    expect(await getRow(t.pool, failed)).toMatchObject({ crashes: 2, result: 'FAILED', completed_at: null });
    const ended = await getRow(t.pool, permanent);
    expect(ended).toMatchObject({ crashes: 2, result: 'FAILED' });
    expect(ended.completed_at).toBeInstanceOf(Date);
    expect(await getRow(t.pool, interrupted)).toMatchObject({
      crashes: 2,
      result: 'INTERRUPTED',
      tries: 1,
      delay_until: null,
      completed_at: null,
    });
  });
});

describe('parking', () => {
  it('parks the request at the crashLimit-th crash, even with tries left, and says why', async () => {
    const store = storeOn(t.db, { crashLimit: 3 });
    const id = await insertRunning(t.pool, { crashes: 2, tries: 3, try_limit: 10 });
    const written = await store.requestsComplete({ launcherId: testLauncher, outcomes: [crashOf(id, 3)] });
    expect([...written]).toEqual([id]);
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'PARKED', crashes: 3, tries: 3, pid: null });
    expect(row.completed_at).toBeInstanceOf(Date);
    expect(row.result_text).toBe(
      'parked after 3 crashes (crashLimit 3); last: child process 4242 was killed by SIGKILL',
    );
    // The history keeps the try's own result.
    expect(await historyOf(t.pool, id)).toMatchObject([
      { result: 'CRASHED', signal: 'SIGKILL', result_text: 'child process 4242 was killed by SIGKILL' },
    ]);
  });

  it('parks on the first crash with crashLimit 1, and on a timeout as on a crash', async () => {
    const store = storeOn(t.db, { crashLimit: 1 });
    const id = await insertRunning(t.pool);
    await store.requestsComplete({ launcherId: testLauncher, outcomes: [crashOf(id, 1, 'TIMED_OUT')] });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'PARKED', crashes: 1 });
    expect(row.result_text).toBe('parked after 1 crashes (crashLimit 1); last: timed out after 100 ms');
  });

  it('ends a crash on the last try CRASHED when the limit is not reached', async () => {
    const store = storeOn(t.db, { crashLimit: 3 });
    const id = await insertRunning(t.pool, { tries: 5, try_limit: 5 });
    await store.requestsComplete({ launcherId: testLauncher, outcomes: [crashOf(id, 5)] });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'CRASHED', crashes: 1 });
    expect(row.completed_at).toBeInstanceOf(Date);
  });

  it('lets a try FINISH whatever the crash count', async () => {
    const store = storeOn(t.db, { crashLimit: 3 });
    const id = await insertRunning(t.pool, { crashes: 2 });
    await complete(store, [id, 1, { result: 'FINISHED', endNow: true, resultText: 'fine' }]);
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'FINISHED', crashes: 2, result_text: 'fine' });
  });

  it('applies the same rule to the pid probe and to lease recovery', async () => {
    const store = storeOn(t.db, { crashLimit: 2 });
    const probed = await insertRunning(t.pool, { crashes: 1 });
    const expired = await insertRunning(t.pool, {
      crashes: 1,
      host: 'dead-host',
      launcher_id: 'launcher-z',
      lease_expires_at: new Date(Date.now() - 1_000),
    });
    await store.requestsMarkCrashed({
      host: testHost,
      rows: [{ id: probed, pid: deadPid, processIdentity: 'boot:1', text: 'process gone' }],
    });
    await store.requestsRecoverExpired({ host: testHost });
    const parkedByProbe = await getRow(t.pool, probed);
    expect(parkedByProbe).toMatchObject({
      result: 'PARKED',
      crashes: 2,
      result_text: 'parked after 2 crashes (crashLimit 2); last: process gone',
    });
    expect(parkedByProbe.completed_at).toBeInstanceOf(Date);
    const parkedByLease = await getRow(t.pool, expired);
    expect(parkedByLease).toMatchObject({ result: 'PARKED', crashes: 2 });
    expect(parkedByLease.result_text).toMatch(
      /^parked after 2 crashes \(crashLimit 2\); last: lease expired: launcher launcher-z/,
    );
    expect(await historyOf(t.pool, probed)).toMatchObject([{ result: 'CRASHED', result_text: 'process gone' }]);
    expect(await historyOf(t.pool, expired)).toMatchObject([{ result: 'CRASHED' }]);
  });

  it('counts parked requests as given up, and apart', async () => {
    const store = storeOn(t.db, { crashLimit: 1 });
    await store.requestsComplete({ launcherId: testLauncher, outcomes: [crashOf(await insertRunning(t.pool), 1)] });
    await insertRequest(t.pool, { completed_at: new Date(), result: 'FAILED', tries: 5 });
    expect(await store.requestsCountByState()).toMatchObject({ givenUp: 2, parked: 1, cancelled: 0, running: 0 });
  });
});

describe('retrying a parked request', () => {
  it('clears the crash count, and the claim hands out crashes and timeout_ms', async () => {
    const store = storeOn(t.db, { crashLimit: 1 });
    const id = await insertRunning(t.pool, { tries: 1, try_limit: 5, timeout_ms: 1_500 });
    await store.requestsComplete({ launcherId: testLauncher, outcomes: [crashOf(id, 1)] });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'PARKED', crashes: 1 });

    await store.requestsRetry({ id });
    expect(await getRow(t.pool, id)).toMatchObject({ completed_at: null, crashes: 0, delay_until: null, pid: null });
    const [claimed] = await store.requestsClaim({
      limit: 1,
      launcherId: testLauncher,
      host: testHost,
      launcherPid: process.pid,
      processIdentity: null,
      queues: null,
      leaseMs: 60_000,
    });
    expect(claimed).toMatchObject({ id, tries: 2, crashes: 0, timeoutMs: 1_500 });
  });

  it('claims a row without a timeout with timeoutMs null', async () => {
    const store = storeOn(t.db);
    const id = await insertRequest(t.pool, { crashes: 2 });
    const [claimed] = await store.requestsClaim({
      limit: 1,
      launcherId: testLauncher,
      host: testHost,
      launcherPid: process.pid,
      processIdentity: null,
      queues: null,
      leaseMs: 60_000,
    });
    expect(claimed).toMatchObject({ id, crashes: 2, timeoutMs: null });
  });
});
