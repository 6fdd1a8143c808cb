import { beforeEach, describe, expect, it } from 'vitest';
import { getRow, insertRequest } from '../helpers/db.js';
import { insertRunning, outcomeOf, storeOn, testLauncher } from '../helpers/store.js';
import { cli, cliOnTestDatabase } from './cli-process.js';

/** `cancel`, `attempts`, and the flags and counts that came with them (`schedule --timeout-ms`, `status`). */
const s = cliOnTestDatabase();
beforeEach(async () => {
  await s.t.pool.query('TRUNCATE task_runner_requests, task_runner_requests_attempts');
});

describe('cancel', () => {
  it('cancels a waiting request before it runs', async () => {
    const id = await insertRequest(s.t.pool, {});
    expect(await cli(['cancel', id], s.at)).toEqual({
      code: 0,
      stdout: `cancelled request ${id} before it ran\n`,
      stderr: '',
    });
    expect(await getRow(s.t.pool, id)).toMatchObject({ result: 'CANCELLED', result_text: 'cancelled before it ran' });
  });

  it('asks the launcher of a running request to kill it', async () => {
    const id = await insertRunning(s.t.pool, { pid: 4321, host: 'worker-7' });
    const result = await cli(['cancel', id], s.at);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(
      `cancel requested for running request ${id} (pid 4321 on host worker-7); its launcher kills it\n`,
    );
    expect((await getRow(s.t.pool, id)).cancel_requested_at).toBeInstanceOf(Date);
  });

  it('says how an ended request ended, and prints JSON with --json', async () => {
    const id = await insertRequest(s.t.pool, { completed_at: new Date(), result: 'FINISHED', tries: 1 });
    expect((await cli(['cancel', id], s.at)).stdout).toBe(`request ${id} already ended: FINISHED\n`);
    const json = await cli(['cancel', id, '--json'], s.at);
    expect(JSON.parse(json.stdout)).toEqual({
      id,
      state: 'ended',
      result: 'FINISHED',
      pid: null,
      host: null,
      launcherId: null,
    });
  });

  it('fails with one line for a missing id, and with a usage error for a bad one', async () => {
    expect(await cli(['cancel', '987654321'], s.at)).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cw-task-runner: request 987654321 does not exist\n',
    });
    const bad = await cli(['cancel', 'five'], s.at);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid request id "five".*cw-task-runner cancel --help/);
    expect((await cli(['cancel'], s.at)).stderr).toMatch(/cancel takes one request id/);
  });

  it('has its own help', async () => {
    const help = await cli(['cancel', '--help'], s.at);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: cw-task-runner cancel <id> \[options\]/);
    expect((await cli(['--help'], s.at)).stdout).toMatch(/\n {2}cancel +cancel a request/);
  });
});

describe('attempts', () => {
  it('prints one line per try, oldest first', async () => {
    const store = storeOn(s.t.db);
    const id = await insertRunning(s.t.pool, { tries: 1, try_limit: 3 });
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(id, 1, {
          result: 'CRASHED',
          crash: true,
          resultText: 'child process 777 was killed by SIGKILL\nstderr: out of memory',
          attempt: {
            pid: 777,
            mode: 'fresh',
            startedAtMs: performance.timeOrigin + performance.now() - 60_000,
            signal: 'SIGKILL',
            peakMemoryBytes: 157_286_400,
          },
        }),
      ],
    });
    await s.t.pool.query(
      `UPDATE task_runner_requests SET pid = 888, thread_id = 2, tries = 2, launcher_id = $2 WHERE id = $1`,
      [id, testLauncher],
    );
    await store.requestsComplete({
      launcherId: testLauncher,
      outcomes: [
        outcomeOf(id, 2, {
          result: 'FINISHED',
          endNow: true,
          resultText: 'ok',
          attempt: {
            pid: 888,
            threadId: 2,
            mode: 'thread',
            startedAtMs: performance.timeOrigin + performance.now() - 30_000,
            exitCode: null,
          },
        }),
      ],
    });
    const result = await cli(['attempts', id], s.at);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      /^try 1 {2}CRASHED {2}mode fresh {2}pid 777 {2}\d{4}-\d\d-\d\dT[\d:.]+Z \.\. \S+Z {2}signal SIGKILL {2}peak 150\.0 MiB {2}child process 777 was killed by SIGKILL$/,
    );
    expect(lines[1]).toMatch(
      /^try 2 {2}FINISHED {2}mode thread {2}pid 888 thread 2 {2}\d{4}-\d\d-\d\dT[\d:.]+Z \.\. \S+Z {2}exit - {2}peak -$/,
    );

    const json = JSON.parse((await cli(['attempts', id, '--json'], s.at)).stdout);
    expect(json.map((a: { try: number; result: string }) => [a.try, a.result])).toEqual([
      [1, 'CRASHED'],
      [2, 'FINISHED'],
    ]);
  });

  it('says when a request has no ended try, and fails for a missing one', async () => {
    const id = await insertRequest(s.t.pool, {});
    expect((await cli(['attempts', id], s.at)).stdout).toBe(`request ${id} has no ended tries yet\n`);
    expect(await cli(['attempts', '987654321'], s.at)).toEqual({
      code: 1,
      stdout: '',
      stderr: 'cw-task-runner: request 987654321 does not exist\n',
    });
  });
});

describe('what came with them', () => {
  it("schedule --timeout-ms sets the request's timeout and refuses a bad one", async () => {
    const result = await cli(['schedule', 'Echo', '--timeout-ms', '1500'], s.at);
    expect(result.code).toBe(0);
    expect(await getRow(s.t.pool, result.stdout.trim())).toMatchObject({ timeout_ms: 1_500 });
    const none = await cli(['schedule', 'Echo'], s.at);
    expect(await getRow(s.t.pool, none.stdout.trim())).toMatchObject({ timeout_ms: null });
    const zero = await cli(['schedule', 'Echo', '--timeout-ms', '0'], s.at);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/timeoutMs must be a whole number of milliseconds from 1 to 2147483647/);
  });

  it('status counts cancelled and parked requests among the given up', async () => {
    await insertRequest(s.t.pool, { completed_at: new Date(), result: 'CANCELLED' });
    await insertRequest(s.t.pool, { completed_at: new Date(), result: 'PARKED', tries: 3, crashes: 3 });
    await insertRequest(s.t.pool, { completed_at: new Date(), result: 'FAILED', tries: 5 });
    const text = await cli(['status'], s.at);
    expect(text.stdout).toMatch(
      /^requests in task_runner_requests: 0 waiting, 0 delayed, 0 running, 0 held, 0 finished, 3 given up \(1 cancelled, 1 parked\)$/m,
    );
  });

  it('retry makes a cancelled request runnable again', async () => {
    const id = await insertRequest(s.t.pool, {});
    await cli(['cancel', id], s.at);
    expect((await cli(['retry', id], s.at)).stdout).toBe(`request ${id} is runnable again\n`);
    expect(await getRow(s.t.pool, id)).toMatchObject({ completed_at: null, cancel_requested_at: null });
  });
});
