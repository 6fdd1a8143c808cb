import { sql } from 'kysely';
import { beforeEach, describe, expect, it } from 'vitest';
import {
  attemptsTableFor,
  createTaskRunnerRequestTable,
  dropTaskRunnerRequestTable,
  parseTableName,
} from '../../dist/index.js';
import { getRow, insertRequest, useTestDatabase } from '../helpers/db.js';
import { deadPid, historyOf, insertRunning, outcomeOf, storeOn, testHost, testLauncher } from '../helpers/store.js';

/** The attempt-history table: its name and shape, and the row every ended try leaves in it. */
const t = useTestDatabase();
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests_attempts');
});

describe('attemptsTableFor', () => {
  it('names the table after the request table, in the same schema', () => {
    expect(attemptsTableFor(parseTableName('task_runner_requests'))).toEqual({
      schema: null,
      table: 'task_runner_requests_attempts',
      qualified: 'task_runner_requests_attempts',
    });
    expect(attemptsTableFor(parseTableName('jobs.requests'))).toEqual({
      schema: 'jobs',
      table: 'requests_attempts',
      qualified: 'jobs.requests_attempts',
    });
  });

  it('keeps long names within 63 bytes and apart', () => {
    const first = attemptsTableFor(parseTableName(`${'a'.repeat(55)}_one`)).table;
    const second = attemptsTableFor(parseTableName(`${'a'.repeat(55)}_two`)).table;
    expect(first.length).toBeLessThanOrEqual(63);
    expect(second.length).toBeLessThanOrEqual(63);
    expect(first).not.toBe(second);
    expect(first).toMatch(/_attempts$/);
    expect(attemptsTableFor(parseTableName(`${'a'.repeat(55)}_one`)).table).toBe(first);
  });
});

describe('the attempts table', () => {
  it('is created with the request table, with its columns and its (request_id, id) index', async () => {
    const { rows } = await t.pool.query<{ column_name: string; data_type: string; is_nullable: string }>(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
       WHERE table_schema = 'public' AND table_name = 'task_runner_requests_attempts'`,
    );
    const columns = Object.fromEntries(
      rows.map((row) => [row.column_name, `${row.data_type}${row.is_nullable === 'NO' ? ' not null' : ''}`]),
    );
    expect(columns).toEqual({
      id: 'bigint not null',
      request_id: 'bigint not null',
      try: 'integer not null',
      host: 'text',
      launcher_id: 'text',
      pid: 'integer',
      thread_id: 'integer',
      mode: 'text',
      started_at: 'timestamp with time zone',
      ended_at: 'timestamp with time zone not null',
      result: 'text not null',
      exit_code: 'integer',
      signal: 'text',
      peak_memory_bytes: 'bigint',
      result_text: 'text',
    });
    const index = await t.pool.query<{ indexdef: string }>(
      "SELECT indexdef FROM pg_indexes WHERE tablename = 'task_runner_requests_attempts' AND indexdef LIKE '%(request_id, id)%'",
    );
    expect(index.rows).toHaveLength(1);
    const foreign = await t.pool.query(
      "SELECT 1 FROM pg_constraint WHERE conrelid = 'task_runner_requests_attempts'::regclass AND contype = 'f'",
    );
    expect(foreign.rows).toHaveLength(0);
  });

  it('is created and dropped with a custom, a schema-qualified and a long-named request table', async () => {
    const long = `c${'d'.repeat(61)}y`;
    await sql`CREATE SCHEMA IF NOT EXISTS history`.execute(t.db);
    for (const name of ['history_jobs', 'history.requests', long]) {
      const attempts = attemptsTableFor(parseTableName(name)).qualified;
      await createTaskRunnerRequestTable(t.db, name);
      const { rows } = await t.pool.query('SELECT to_regclass($1) AS found', [attempts]);
      expect(rows[0].found, name).not.toBeNull();
      await dropTaskRunnerRequestTable(t.db, name);
      const after = await t.pool.query('SELECT to_regclass($1) AS found, to_regclass($2) AS requests', [
        attempts,
        name,
      ]);
      expect(after.rows[0], name).toEqual({ found: null, requests: null });
    }
  });
});

describe('requestsComplete writes one history row per written outcome', () => {
  it('records a FINISHED try without its text and a FAILED one with it', async () => {
    const store = storeOn(t.db);
    const startedAt = new Date(Date.now() - 2_000);
    const finished = await insertRunning(t.pool, { tries: 2 });
    const failed = await insertRunning(t.pool, { thread_id: 3 });
    const written = await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(finished, 2, {
          result: 'FINISHED',
          resultText: '{"sent":3}',
          endNow: true,
          attempt: {
            pid: 5151,
            mode: 'reused',
            startedAtMs: startedAt.getTime(),
            exitCode: null,
            peakMemoryBytes: 52_428_800,
          },
        }),
        outcomeOf(failed, 1, {
          attempt: {
            pid: 6161,
            threadId: 3,
            mode: 'thread',
            startedAtMs: startedAt.getTime(),
            peakMemoryBytes: 5_000_000_000,
          },
        }),
      ],
    });
    expect([...written].sort()).toEqual([finished, failed].sort());

    const [done] = await historyOf(t.pool, finished);
    expect(done).toMatchObject({
      request_id: finished,
      try: 2,
      host: testHost,
      launcher_id: testLauncher,
      pid: 5151,
      thread_id: null,
      mode: 'reused',
      result: 'FINISHED',
      exit_code: null,
      signal: null,
      peak_memory_bytes: '52428800',
      result_text: null,
    });
    // Stored by the database's clock: the try's age (2 s, plus the statement's trip) before the statement's own start.
    const ranMs = done.ended_at.getTime() - done.started_at.getTime();
    expect(ranMs).toBeGreaterThanOrEqual(1_990);
    expect(ranMs).toBeLessThan(3_000);
    expect(Date.now() - done.ended_at.getTime()).toBeLessThan(10_000);
    expect((await getRow(t.pool, finished)).result_text).toBe('{"sent":3}');

    const [error] = await historyOf(t.pool, failed);
    expect(error).toMatchObject({
      try: 1,
      pid: 6161,
      thread_id: 3,
      mode: 'thread',
      result: 'FAILED',
      result_text: 'Error: boom\n    at run (task.js:1:1)',
      peak_memory_bytes: '5000000000',
    });
  });

  it('records the claim time when the try has no start time of its own, and exit code and signal as given', async () => {
    const store = storeOn(t.db);
    const claimedAt = new Date(Date.now() - 7_000);
    const id = await insertRunning(t.pool, { started_at: claimedAt });
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(id, 1, {
          result: 'CRASHED',
          crash: true,
          resultText: 'exited with code 3',
          attempt: { exitCode: 3, signal: null },
        }),
      ],
    });
    const [row] = await historyOf(t.pool, id);
    expect(row).toMatchObject({ result: 'CRASHED', exit_code: 3, signal: null, result_text: 'exited with code 3' });
    expect(row.started_at.getTime()).toBe(claimedAt.getTime());
  });

  it('writes no history for an outcome the guard refuses, and one row for an id given twice', async () => {
    const store = storeOn(t.db);
    const foreign = await insertRunning(t.pool, { launcher_id: 'launcher-b' });
    const stale = await insertRunning(t.pool, { tries: 2 });
    const twice = await insertRunning(t.pool);
    const written = await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(foreign, 1),
        outcomeOf(stale, 1),
        outcomeOf(twice, 1),
        outcomeOf(twice, 1, { result: 'FINISHED', endNow: true, resultText: 'ok' }),
      ],
    });
    expect([...written]).toEqual([twice]);
    expect(await historyOf(t.pool, foreign)).toEqual([]);
    expect(await historyOf(t.pool, stale)).toEqual([]);
    expect((await historyOf(t.pool, twice)).map((row) => row.result)).toEqual(['FINISHED']);
    expect(await getRow(t.pool, twice)).toMatchObject({ result: 'FINISHED', result_text: 'ok' });
  });

  it('keeps every try of a request, listed oldest first by attemptsList', async () => {
    const store = storeOn(t.db);
    const id = await insertRequest(t.pool, { task_class_name: 'Flaky', try_limit: 3 });
    const claim = () =>
      store.requestsClaim({
        limit: 1,
        launcherId: testLauncher,
        host: testHost,
        launcherPid: process.pid,
        processIdentity: null,
        queues: null,
        leaseMs: 60_000,
      });
    const [first] = await claim();
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [outcomeOf(id, first!.tries, { attempt: { pid: 101 } })],
    });
    await t.pool.query('UPDATE task_runner_requests SET delay_until = NULL WHERE id = $1', [id]);
    const [second] = await claim();
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(id, second!.tries, {
          result: 'FINISHED',
          endNow: true,
          resultText: 'done',
          attempt: { pid: 102, peakMemoryBytes: 1024 },
        }),
      ],
    });

    const list = await store.attemptsList({ requestId: id });
    expect(list.map((a) => [a.try, a.result, a.pid, a.resultText])).toEqual([
      [1, 'FAILED', 101, 'Error: boom\n    at run (task.js:1:1)'],
      [2, 'FINISHED', 102, null],
    ]);
    expect(list[1]).toMatchObject({
      requestId: id,
      host: testHost,
      launcherId: testLauncher,
      mode: 'fresh',
      peakMemoryBytes: 1024,
      threadId: null,
    });
    expect(typeof list[0]!.id).toBe('string');
    expect(BigInt(list[0]!.id) < BigInt(list[1]!.id)).toBe(true);
    expect(list[0]!.endedAt).toBeInstanceOf(Date);
    expect(await store.attemptsList({ requestId: '987654321' })).toEqual([]);
  });
});

describe('tries nobody reports on get a history row too', () => {
  it("the pid probe records a CRASHED try with the row's pid and thread and no mode", async () => {
    const store = storeOn(t.db);
    const id = await insertRunning(t.pool, { thread_id: 7, host: testHost, launcher_id: 'launcher-gone' });
    expect(
      await store.requestsMarkCrashed({
        host: testHost,
        rows: [{ id, pid: deadPid, processIdentity: 'boot:1', text: 'pid probe: process is gone' }],
      }),
    ).toEqual([id]);
    const [row] = await historyOf(t.pool, id);
    expect(row).toMatchObject({
      try: 1,
      pid: deadPid,
      thread_id: 7,
      mode: null,
      result: 'CRASHED',
      result_text: 'pid probe: process is gone',
      host: testHost,
      launcher_id: 'launcher-gone',
      exit_code: null,
      signal: null,
    });
    expect(row.started_at).toBeInstanceOf(Date);
    expect(await getRow(t.pool, id)).toMatchObject({ pid: null, thread_id: null, crashes: 1, result: 'CRASHED' });
  });

  it('lease recovery records a CRASHED try naming the launcher and host that stopped renewing', async () => {
    const store = storeOn(t.db);
    const id = await insertRunning(t.pool, {
      host: 'dead-host',
      launcher_id: 'launcher-z',
      pid: 3131,
      tries: 2,
      lease_expires_at: new Date(Date.now() - 1_000),
    });
    expect(await store.requestsRecoverExpired({ host: testHost })).toEqual([id]);
    const [row] = await historyOf(t.pool, id);
    expect(row).toMatchObject({
      try: 2,
      pid: 3131,
      mode: null,
      result: 'CRASHED',
      host: 'dead-host',
      launcher_id: 'launcher-z',
    });
    expect(row.result_text).toBe('lease expired: launcher launcher-z on host dead-host stopped renewing it (pid 3131)');
  });

  it('a launcher releasing its rows at shutdown records INTERRUPTED tries and gives them back', async () => {
    const store = storeOn(t.db);
    const id = await insertRunning(t.pool, { tries: 2 });
    expect(
      await store.requestsReleaseByLauncher({ launcherId: testLauncher, text: 'released by launcher shutdown' }),
    ).toEqual([id]);
    expect(await getRow(t.pool, id)).toMatchObject({
      result: 'INTERRUPTED',
      tries: 1,
      pid: null,
      completed_at: null,
      delay_until: null,
    });
    expect(await historyOf(t.pool, id)).toMatchObject([
      { try: 2, result: 'INTERRUPTED', result_text: 'released by launcher shutdown' },
    ]);
  });
});
