import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cancelChannelFor, parseTableName } from '../../dist/index.js';
import { channelFor } from '../../dist/config/identifiers.js';
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
 * `requestsCancel`: a waiting request ends at once and never runs; a running one is flagged and
 * its launcher told (NOTIFY now, lease renewal as the fallback), and the outcome written next
 * ends it CANCELLED; an ended one is left alone.
 */
const t = useTestDatabase();
const channel = cancelChannelFor(parseTableName('task_runner_requests'));
let listener: pg.Client;
let payloads: string[];

beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests_attempts');
  payloads = [];
  listener = new pg.Client({ connectionString: t.url });
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.channel === channel) payloads.push(n.payload ?? '');
  });
  await listener.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
});
afterEach(async () => {
  await listener.end();
});

/** Resolves with the payloads once one equals `id`; fails after `timeoutMs`. */
function cancelNotice(id: string, timeoutMs = 5_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no cancel notification for ${id} within ${timeoutMs} ms (got ${payloads.join(',')})`)),
      timeoutMs,
    );
    const check = (): void => {
      if (!payloads.includes(id)) return;
      clearTimeout(timer);
      listener.off('notification', check);
      resolve([...payloads]);
    };
    listener.on('notification', check);
    check();
  });
}

function claimAll(store: ReturnType<typeof storeOn>) {
  return store.requestsClaim({
    limit: 10,
    launcherId: testLauncher,
    host: testHost,
    launcherPid: process.pid,
    processIdentity: null,
    queues: null,
    leaseMs: 60_000,
  });
}

describe('cancelChannelFor', () => {
  it('is a valid identifier of its own, distinct from every wake-up channel, and stable', () => {
    const table = parseTableName('task_runner_requests');
    expect(channel).toBe(cancelChannelFor(table));
    expect(channel).not.toBe(channelFor(table));
    expect(channel).toMatch(/^[a-z_][a-z0-9_]*$/);
    // No table's wake-up channel can equal a cancel channel: the prefixes differ.
    expect(cancelChannelFor(table)).not.toBe(channelFor(parseTableName('cancel_task_runner_requests')));
    expect(cancelChannelFor(parseTableName('jobs.requests'))).toBe('cw_cancel_jobs__requests');
    const long = (end: string) => cancelChannelFor(parseTableName(`${'z'.repeat(60)}${end}`));
    expect(long('one').length).toBeLessThanOrEqual(63);
    expect(long('one')).not.toBe(long('two'));
  });
});

describe('a waiting request', () => {
  it('ends CANCELLED at once and is never claimed', async () => {
    const store = storeOn(t.db);
    const waiting = await insertRequest(t.pool, {});
    const delayed = await insertRequest(t.pool, {
      delay_until: new Date(Date.now() - 1_000),
      tries: 2,
      result: 'FAILED',
    });
    expect(await store.requestsCancel({ id: waiting })).toEqual({
      state: 'cancelled',
      result: 'CANCELLED',
      pid: null,
      host: null,
      launcherId: null,
    });
    expect((await store.requestsCancel({ id: delayed })).state).toBe('cancelled');
    for (const id of [waiting, delayed]) {
      const row = await getRow(t.pool, id);
      expect(row).toMatchObject({ result: 'CANCELLED', result_text: 'cancelled before it ran', pid: null });
      expect(row.completed_at).toBeInstanceOf(Date);
      expect(row.cancel_requested_at).toBeInstanceOf(Date);
    }
    expect(await claimAll(store)).toEqual([]);
    expect(payloads).toEqual([]);
    expect(await store.requestsCountByState()).toMatchObject({ cancelled: 2, givenUp: 2, waiting: 0 });
  });
});

describe('a running request', () => {
  it('is flagged, its launcher notified on the cancel channel, and its id returned by the lease renewal', async () => {
    const store = storeOn(t.db);
    const id = await insertRunning(t.pool, { pid: 5252, result: 'FAILED' });
    const other = await insertRunning(t.pool);
    const notice = cancelNotice(id);
    expect(await store.requestsCancel({ id })).toEqual({
      state: 'cancelling',
      result: null,
      pid: 5252,
      host: testHost,
      launcherId: testLauncher,
    });
    expect(await notice).toEqual([id]);
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ pid: 5252, completed_at: null, result: 'FAILED' });
    expect(row.cancel_requested_at).toBeInstanceOf(Date);

    expect((await store.requestsRenewLeases({ launcherId: testLauncher, leaseMs: 60_000 })).cancelled).toEqual([id]);
    expect((await store.requestsRenewLeases({ launcherId: 'launcher-b', leaseMs: 60_000 })).cancelled).toEqual([]);
    expect((await getRow(t.pool, other)).cancel_requested_at).toBeNull();
  });

  it('keeps the first request time when cancelled twice, and notifies again', async () => {
    const store = storeOn(t.db);
    const id = await insertRunning(t.pool);
    await store.requestsCancel({ id });
    const first = (await getRow(t.pool, id)).cancel_requested_at;
    const notice = cancelNotice(id);
    expect((await store.requestsCancel({ id })).state).toBe('cancelling');
    await notice;
    expect((await getRow(t.pool, id)).cancel_requested_at).toEqual(first);
  });

  it("ends CANCELLED with the next outcome, which ends it now; the history keeps the try's own result", async () => {
    const store = storeOn(t.db);
    const killed = await insertRunning(t.pool, { tries: 1, try_limit: 5 });
    const failed = await insertRunning(t.pool, { tries: 1, try_limit: 5 });
    await store.requestsCancel({ id: killed });
    await store.requestsCancel({ id: failed });
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(killed, 1, {
          result: 'CANCELLED',
          resultText: 'cancelled: killed by its launcher (SIGTERM)',
          endNow: true,
          attempt: { signal: 'SIGTERM' },
        }),
        outcomeOf(failed, 1),
      ],
    });
    const killedRow = await getRow(t.pool, killed);
    expect(killedRow).toMatchObject({
      result: 'CANCELLED',
      result_text: 'cancelled: killed by its launcher (SIGTERM)',
      pid: null,
      tries: 1,
    });
    expect(killedRow.completed_at).toBeInstanceOf(Date);
    const failedRow = await getRow(t.pool, failed);
    expect(failedRow).toMatchObject({
      result: 'CANCELLED',
      result_text: 'cancelled: Error: boom\n    at run (task.js:1:1)',
      pid: null,
    });
    expect(failedRow.completed_at).toBeInstanceOf(Date);
    expect(await historyOf(t.pool, killed)).toMatchObject([{ result: 'CANCELLED', signal: 'SIGTERM' }]);
    expect(await historyOf(t.pool, failed)).toMatchObject([{ result: 'FAILED' }]);
    expect(await claimAll(store)).toEqual([]);
  });

  it("ends CANCELLED, not PARKED or given back, whatever the try's outcome short of FINISHED", async () => {
    const store = storeOn(t.db, { crashLimit: 1 });
    const crashed = await insertRunning(t.pool);
    const interrupted = await insertRunning(t.pool, { tries: 2 });
    const finished = await insertRunning(t.pool);
    for (const id of [crashed, interrupted, finished]) await store.requestsCancel({ id });
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        crashOf(crashed, 1),
        outcomeOf(interrupted, 2, { result: 'INTERRUPTED', refund: true, resultText: 'launcher shutting down' }),
        outcomeOf(finished, 1, { result: 'FINISHED', endNow: true, resultText: 'made it' }),
      ],
    });
    expect(await getRow(t.pool, crashed)).toMatchObject({
      result: 'CANCELLED',
      crashes: 1,
      result_text: 'cancelled: child process 4242 was killed by SIGKILL',
    });
    const interruptedRow = await getRow(t.pool, interrupted);
    expect(interruptedRow).toMatchObject({
      result: 'CANCELLED',
      tries: 2,
      result_text: 'cancelled: launcher shutting down',
    });
    expect(interruptedRow.completed_at).toBeInstanceOf(Date);
    expect(await getRow(t.pool, finished)).toMatchObject({ result: 'FINISHED', result_text: 'made it' });
  });

  it('ends CANCELLED when the probe, lease recovery or shutdown finds the try gone', async () => {
    const store = storeOn(t.db);
    const probed = await insertRunning(t.pool, { launcher_id: 'launcher-gone' });
    const expired = await insertRunning(t.pool, {
      host: 'dead-host',
      launcher_id: 'launcher-z',
      lease_expires_at: new Date(Date.now() - 1_000),
    });
    const released = await insertRunning(t.pool);
    for (const id of [probed, expired, released]) await store.requestsCancel({ id });
    await store.requestsMarkCrashed({
      host: testHost,
      rows: [{ id: probed, pid: deadPid, processIdentity: 'boot:1', text: 'process gone' }],
    });
    await store.requestsRecoverExpired({ host: testHost });
    await store.requestsReleaseByLauncher({ launcherId: testLauncher, text: 'released by launcher shutdown' });
    expect(await getRow(t.pool, probed)).toMatchObject({ result: 'CANCELLED', result_text: 'cancelled: process gone' });
    expect((await getRow(t.pool, expired)).result_text).toMatch(/^cancelled: lease expired/);
    expect(await getRow(t.pool, released)).toMatchObject({
      result: 'CANCELLED',
      tries: 1,
      result_text: 'cancelled: released by launcher shutdown',
    });
    for (const id of [probed, expired, released]) expect((await getRow(t.pool, id)).completed_at).toBeInstanceOf(Date);
    expect(await historyOf(t.pool, released)).toMatchObject([{ result: 'INTERRUPTED' }]);
  });
});

describe('an ended or missing request', () => {
  it('leaves an ended request as it is', async () => {
    const store = storeOn(t.db);
    const completedAt = new Date(Date.now() - 60_000);
    const id = await insertRequest(t.pool, {
      completed_at: completedAt,
      result: 'FINISHED',
      result_text: 'ok',
      tries: 1,
      host: 'h1',
      launcher_id: 'l1',
    });
    expect(await store.requestsCancel({ id })).toEqual({
      state: 'ended',
      result: 'FINISHED',
      pid: null,
      host: 'h1',
      launcherId: 'l1',
    });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'FINISHED', result_text: 'ok', cancel_requested_at: null });
    expect(row.completed_at).toEqual(completedAt);
    expect(payloads).toEqual([]);
  });

  it('refuses a missing id with REQUEST_NOT_FOUND', async () => {
    await expect(storeOn(t.db).requestsCancel({ id: '987654321' })).rejects.toMatchObject({
      code: 'REQUEST_NOT_FOUND',
      message: 'request 987654321 does not exist',
    });
  });
});

describe('retrying a cancelled request', () => {
  it('clears the cancel, and the request runs and finishes normally', async () => {
    const store = storeOn(t.db);
    const id = await insertRunning(t.pool);
    await store.requestsCancel({ id });
    await store.requestsComplete({ launcherId: testLauncher, outcomes: [outcomeOf(id, 1)] });
    expect((await getRow(t.pool, id)).result).toBe('CANCELLED');

    await store.requestsRetry({ id });
    expect(await getRow(t.pool, id)).toMatchObject({ completed_at: null, cancel_requested_at: null, crashes: 0 });
    const [claimed] = await claimAll(store);
    expect(claimed).toMatchObject({ id, tries: 2 });
    expect((await store.requestsRenewLeases({ launcherId: testLauncher, leaseMs: 60_000 })).cancelled).toEqual([]);
    await store.requestsComplete({ launcherId: testLauncher, outcomes: [outcomeOf(id, 2)] });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'FAILED', completed_at: null });
  });
});
