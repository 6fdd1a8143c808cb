import { randomUUID } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../dist/index.js';
import type { AttemptJob, AttemptReport, AttemptStart } from '../../dist/pool/attempt.js';
import { ThreadPool } from '../../dist/pool/thread-pool.js';
import { waitFor } from '../helpers/db.js';
import { childEnv, jobFor } from '../helpers/jobs.js';

const pools: ThreadPool[] = [];
const channels: Signals[] = [];
const launcherIdentity = 'test-launcher-identity';

interface PoolParams {
  maxThreads?: number;
  maxOldGenerationSizeMb?: number | null;
  env?: Record<string, string>;
  logger?: Logger;
}

function createPool(params: PoolParams = {}): ThreadPool {
  const pool = new ThreadPool({
    maxThreads: params.maxThreads ?? 2,
    idleTimeoutMs: 30_000,
    resourceLimits: {
      maxOldGenerationSizeMb: params.maxOldGenerationSizeMb ?? null,
      maxYoungGenerationSizeMb: null,
      stackSizeMb: null,
    },
    env: params.env ?? childEnv,
    launcherPid: process.pid,
    launcherIdentity,
    logger: params.logger ?? silentLogger,
  });
  pools.push(pool);
  return pool;
}

/** Runs a job, recording its start; `controller` aborts it. */
function run(pool: ThreadPool, job: AttemptJob, onStart?: (start: AttemptStart) => void) {
  const controller = new AbortController();
  const starts: AttemptStart[] = [];
  const report = pool.run(
    job,
    {
      onStart: (start) => {
        starts.push(start);
        onStart?.(start);
      },
    },
    controller.signal,
  );
  let reported = false;
  void report.then(() => {
    reported = true;
  });
  return { report, controller, starts, reported: () => reported };
}

interface Signal {
  id: string;
  threadId: number;
}

/** The BroadcastChannel a ThreadSignal task announces itself on; every wait has a timeout. */
class Signals {
  readonly name = `cwtr-thread-test-${randomUUID()}`;
  readonly #channel = new BroadcastChannel(this.name);
  readonly #received: Signal[] = [];
  #waiters: ((signal: Signal) => void)[] = [];

  constructor() {
    this.#channel.onmessage = (event) => {
      const signal = (event as MessageEvent<Signal>).data;
      const waiter = this.#waiters.shift();
      if (waiter !== undefined) waiter(signal);
      else this.#received.push(signal);
    };
    channels.push(this);
  }

  next(timeoutMs = 10_000): Promise<Signal> {
    const ready = this.#received.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise<Signal>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ThreadSignal message within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push((signal) => {
        clearTimeout(timer);
        resolve(signal);
      });
    });
  }

  close(): void {
    this.#channel.close();
  }
}

afterEach(async () => {
  for (const channel of channels.splice(0)) channel.close();
  const closing = pools.splice(0);
  await Promise.all(closing.map((pool) => pool.close()));
  for (const pool of closing) expect(pool.threadIds, 'threads still alive after close()').toEqual([]);
});

function expectOutcome<O extends AttemptReport['outcome']>(
  report: AttemptReport,
  outcome: O,
): Extract<AttemptReport, { outcome: O }> {
  expect(report.outcome).toBe(outcome);
  return report as Extract<AttemptReport, { outcome: O }>;
}

describe('ThreadPool', () => {
  it('runs a fixture task in a worker thread and reports where it ran', async () => {
    const pool = createPool();
    const attempt = run(pool, await jobFor('Echo', { text: 'hello from a thread' }), () => {
      expect(attempt.reported()).toBe(false);
    });
    const report = await attempt.report;
    expect(report).toEqual({
      outcome: 'finished',
      pid: process.pid,
      threadId: expect.any(Number),
      peakMemoryBytes: expect.any(Number),
      resultText: 'hello from a thread',
    });
    expect(attempt.starts).toEqual([
      {
        pid: process.pid,
        processIdentity: launcherIdentity,
        threadId: report.threadId,
        mode: 'thread',
        startedAt: expect.any(Date),
        startedAtMs: expect.any(Number),
      },
    ]);
    expect(report.threadId).toBeGreaterThan(0); // 0 is the launcher's main thread
    expect(report.peakMemoryBytes).toBeGreaterThan(1024 * 1024);
    expect(pool.threadIds).toContain(report.threadId); // reused, not ended after the try
  });

  it("passes a try's output on line by line, capped at 64 KiB with the rest counted", async () => {
    const pool = createPool({ maxThreads: 1 });
    const lines: string[] = [];
    const hooks = { onOutput: (stream: string, line: string) => lines.push(`${stream}: ${line}`) };
    const chatty = await pool.run(await jobFor('Chatty', { text: 'hi' }), hooks, new AbortController().signal);
    expect(chatty).toMatchObject({ outcome: 'finished', resultText: 'said' });
    expect(lines).toEqual(['stdout: chatty says hi', 'stderr: chatty warns']);
    lines.length = 0;
    const flood = await pool.run(await jobFor('Flood', { mb: 1 }), hooks, new AbortController().signal);
    expect(flood).toMatchObject({ outcome: 'finished', resultText: 'flooded 1 MiB' });
    const kept = lines
      .filter((line) => line.startsWith('stdout: '))
      .reduce((sum, line) => sum + line.replace(/ \[line continues\]$/, '').length - 8, 0);
    expect(kept).toBe(64 * 1024);
    expect(lines.at(-1)).toBe(
      `stderr: [${1024 * 1024 - 64 * 1024} more bytes of output dropped: a thread-mode try keeps at most 64 KiB]`,
    );
  });

  it('maps task, load, options and result failures exactly as fork mode does', async () => {
    const pool = createPool();
    const failed = expectOutcome(await run(pool, await jobFor('Fail', { reason: 'testing' })).report, 'failed');
    expect(failed).toMatchObject({ kind: 'task', pid: process.pid });
    expect(failed.text).toContain('Error: Fail task failed on purpose: testing');
    expect(failed.text).toMatch(/\n\s+at .*Fail\.mjs:\d+/);

    const load = expectOutcome(await run(pool, await jobFor('BadExport')).report, 'failed');
    expect(load.kind).toBe('load');
    expect(load.text).toMatch(/does not export a task class for "BadExport"/);

    const options = expectOutcome(
      await run(pool, await jobFor('Echo', {}, { optionsYaml: '--- !ruby/object:Foo\nbar: 1\n' })).report,
      'failed',
    );
    expect(options.kind).toBe('options');

    const result = expectOutcome(
      await run(pool, await jobFor('HugeResult', { bytes: 5_000 }, { maxResultBytes: 1_000 })).report,
      'failed',
    );
    expect(result.kind).toBe('result');
    expect(result.text).toMatch(/task result is 5000 bytes, over the limit of 1000 bytes/);

    const nested = await run(pool, await jobFor('Nested::Inner', { text: 'deep' })).report;
    expect(nested).toMatchObject({ outcome: 'finished', resultText: 'inner: deep' });
    const retried = await run(pool, await jobFor('FailTimes', { succeedOnTry: 3 }, { tries: 3 })).report;
    expect(retried).toMatchObject({ outcome: 'finished', resultText: 'FailTimes succeeded on try 3' });
  });

  it("gives threads the env it was given as process.env, not the launcher's", async () => {
    const env = { PATH: '/usr/bin:/bin', CWTR_THREAD_ONLY: 'yes' };
    const report = await run(createPool({ env }), await jobFor('Env')).report;
    expect(report).toMatchObject({ outcome: 'finished', resultText: JSON.stringify(['CWTR_THREAD_ONLY', 'PATH']) });
    expect(process.env.CWTR_THREAD_ONLY).toBeUndefined();
  });

  it('reports an exception thrown outside run() as crashed, and keeps serving', async () => {
    const pool = createPool({ maxThreads: 1 });
    const attempt = run(pool, await jobFor('Fail', { reason: 'async', later: true }));
    const crashed = expectOutcome(await attempt.report, 'crashed');
    expect(crashed).toMatchObject({
      pid: process.pid,
      threadId: attempt.starts[0]!.threadId,
      exitCode: 1,
      signal: null,
      stderrTail: '',
    });
    expect(crashed.text).toMatch(
      /^thread \d+ crashed without reporting a result: uncaught Error: Fail task failed on purpose: async/,
    );
    expect(pool.threadIds).not.toContain(crashed.threadId);

    const next = await run(pool, await jobFor('Echo', { text: 'still here' })).report;
    expect(next).toMatchObject({ outcome: 'finished', resultText: 'still here' });
    expect(next.threadId).not.toBe(crashed.threadId);
  });

  it('reports process.exit(3) in a thread as crashed with code 3; only the thread ends', async () => {
    const pool = createPool({ maxThreads: 1 });
    const crashed = expectOutcome(await run(pool, await jobFor('Exit', { code: 3 })).report, 'crashed');
    expect(crashed).toMatchObject({ pid: process.pid, exitCode: 3, signal: null, stderrTail: '' });
    expect(crashed.text).toMatch(/^thread \d+ exited with code 3 without reporting a result$/);
    // The launcher (this process) is untouched: still running, and no exit code was set on it.
    expect(process.exitCode).toBeUndefined();
    const next = await run(pool, await jobFor('Echo', { text: 'launcher alive' })).report;
    expect(next).toMatchObject({ outcome: 'finished', pid: process.pid, resultText: 'launcher alive' });
  });

  it('reports a thread past its heap limit as crashed: out of memory', async () => {
    const pool = createPool({ maxThreads: 1, maxOldGenerationSizeMb: 32 });
    const crashed = expectOutcome(await run(pool, await jobFor('Hog')).report, 'crashed');
    expect(crashed).toMatchObject({ pid: process.pid, signal: null, stderrTail: '' });
    expect(crashed.text).toMatch(/^thread \d+ ran out of memory/);
    const next = await run(pool, await jobFor('Echo', { text: 'after the hog' })).report;
    expect(next).toMatchObject({ outcome: 'finished', resultText: 'after the hog' });
  });

  it('fails a try no thread can boot for (a heap too small to start), instead of leaving it waiting', async () => {
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (message) => void warnings.push(message) };
    const pool = createPool({ maxThreads: 1, maxOldGenerationSizeMb: 1, logger });
    const attempt = run(pool, await jobFor('Echo', { text: 'never' }));
    const report = expectOutcome(await attempt.report, 'crashed');
    expect(report).toMatchObject({ pid: null, threadId: null, exitCode: null, signal: null });
    expect(report.text).toMatch(/^no worker thread could start: .*reaching memory limit/);
    expect(attempt.starts).toEqual([]);
    expect(warnings).toContain('a worker thread failed outside any task');
    expect(pool.busy).toBe(0);
  });

  it('aborts a queued try without starting it, and a running one by terminating its thread', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const running = run(pool, await jobFor('ThreadSignal', { channel: signals.name }));
    const queued = run(pool, await jobFor('Echo', { text: 'never' }));
    expect(pool.busy).toBe(2);
    const { threadId } = await signals.next();
    // onStart follows within one start check (20 ms) of the thread beginning the try.
    await waitFor(() => running.starts.length > 0, { what: 'onStart of the running try' });
    expect(running.starts[0]!.threadId).toBe(threadId);

    queued.controller.abort('cancel');
    expect(await queued.report).toEqual({
      outcome: 'aborted',
      reason: 'cancel',
      pid: null,
      threadId: null,
      peakMemoryBytes: null,
      exitCode: null,
      signal: null,
      text: 'aborted (cancel) before it started',
    });
    expect(queued.starts).toEqual([]);
    expect(pool.busy).toBe(1);

    running.controller.abort('timeout');
    const aborted = expectOutcome(await running.report, 'aborted');
    expect(aborted).toMatchObject({ reason: 'timeout', pid: process.pid, threadId, exitCode: null, signal: null });
    expect(aborted.text).toBe(`aborted (timeout): thread ${threadId} was terminated`);
    expect(pool.threadIds).not.toContain(threadId);
    expect(pool.busy).toBe(0);
  });

  it('terminates a thread spinning in synchronous code', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const spinning = run(pool, await jobFor('ThreadSignal', { channel: signals.name, spin: true }));
    const { threadId } = await signals.next();
    spinning.controller.abort('timeout');
    expect(await spinning.report).toMatchObject({ outcome: 'aborted', reason: 'timeout', threadId });
    expect(pool.threadIds).not.toContain(threadId);
    expect(await run(pool, await jobFor('Echo', { text: 'next' })).report).toMatchObject({ outcome: 'finished' });
  });

  it('reports a try whose signal is already aborted without starting it; other reasons count as shutdown', async () => {
    const pool = createPool();
    const controller = new AbortController();
    controller.abort(new Error('whatever'));
    let started = false;
    const report = await pool.run(
      await jobFor('Echo', { text: 'no' }),
      { onStart: () => (started = true) },
      controller.signal,
    );
    expect(report).toMatchObject({ outcome: 'aborted', reason: 'shutdown', threadId: null, pid: null });
    expect(started).toBe(false);
    expect(pool.busy).toBe(0);
  });

  it('never runs more tries than maxThreads; busy counts running and queued', async () => {
    const pool = createPool({ maxThreads: 2 });
    const signals = new Signals();
    const jobs = await Promise.all([1, 2, 3].map(() => jobFor('ThreadSignal', { channel: signals.name })));
    const attempts = jobs.map((job) => run(pool, job));
    expect(pool.busy).toBe(3);
    const first = await signals.next();
    const second = await signals.next();
    expect(new Set([first.threadId, second.threadId]).size).toBe(2);
    await waitFor(() => attempts.filter((a) => a.starts.length > 0).length === 2, {
      what: 'onStart of the two running tries',
    });
    expect(attempts[2]!.starts).toEqual([]);

    // Freeing one thread lets the queued try start, on a thread of the pool.
    const firstAttempt = attempts.find((a) => a.starts[0]?.threadId === first.threadId)!;
    firstAttempt.controller.abort('cancel');
    expect(await firstAttempt.report).toMatchObject({ outcome: 'aborted', reason: 'cancel' });
    const third = await signals.next();
    expect(third.id).toBe(jobs[2]!.request.id);
    expect(pool.threadIds.length).toBeLessThanOrEqual(2);
    expect(pool.busy).toBe(2);
    expect(await pool.drain(50)).toBe(false);
  });

  it('drains once every try is reported', async () => {
    const pool = createPool({ maxThreads: 2 });
    const attempts = await Promise.all(
      [1, 2, 3, 4, 5].map(async (n) => run(pool, await jobFor('Echo', { text: `t${n}` }))),
    );
    expect(await pool.drain(10_000)).toBe(true);
    expect(pool.busy).toBe(0);
    const reports = await Promise.all(attempts.map((a) => a.report));
    expect(reports.map((r) => r.outcome)).toEqual(Array(5).fill('finished'));
    expect(new Set(reports.map((r) => r.threadId)).size).toBeLessThanOrEqual(2);
    expect(await pool.drain(0)).toBe(true);
  });

  it('close() aborts running and queued tries (shutdown) and refuses later runs', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const running = run(pool, await jobFor('ThreadSignal', { channel: signals.name }));
    const queued = run(pool, await jobFor('Echo', { text: 'never' }));
    const { threadId } = await signals.next();
    await pool.close();
    expect(await running.report).toMatchObject({
      outcome: 'aborted',
      reason: 'shutdown',
      threadId,
      exitCode: null,
      signal: null,
    });
    expect(await queued.report).toMatchObject({ outcome: 'aborted', reason: 'shutdown', threadId: null });
    expect(queued.starts).toEqual([]);
    expect(pool.threadIds).toEqual([]);
    expect(pool.busy).toBe(0);
    expect(await pool.drain(0)).toBe(true);

    const later = await run(pool, await jobFor('Echo', { text: 'too late' })).report;
    expect(later).toEqual({
      outcome: 'crashed',
      pid: null,
      threadId: null,
      peakMemoryBytes: null,
      exitCode: null,
      signal: null,
      stderrTail: '',
      text: 'pool closed: the try was not started',
    });
    await pool.close(); // twice is fine
  });
});

/**
 * Runs `jobs` so that they reach a thread as one batch. A try that finds every thread idle is
 * dealt alone at once; so a warm-up try goes first, and the jobs, run in the same turn, wait
 * for a thread and are then dealt together to the first one free.
 */
async function runAsBatch(pool: ThreadPool, jobs: AttemptJob[]): Promise<ReturnType<typeof run>[]> {
  const warmUp = run(pool, await jobFor('Echo', { text: 'warm-up' }));
  const attempts = jobs.map((job) => run(pool, job));
  expect(await warmUp.report).toMatchObject({ outcome: 'finished' });
  return attempts;
}

describe('ThreadPool batches (several tries handed to a thread at once)', () => {
  it('aborts a try waiting behind a running one in its thread without ending the thread', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const [running, behind] = await runAsBatch(pool, [
      await jobFor('ThreadSignal', { channel: signals.name }),
      await jobFor('Echo', { text: 'never' }),
    ]);
    const { threadId } = await signals.next();
    behind!.controller.abort('cancel');
    expect(await behind!.report).toMatchObject({
      outcome: 'aborted',
      reason: 'cancel',
      threadId: null,
      text: 'aborted (cancel) before it started',
    });
    expect(behind!.starts).toEqual([]);
    expect(pool.threadIds).toContain(threadId);
    expect(running!.reported()).toBe(false);
    expect(pool.busy).toBe(1);
  });

  it('ends a thread to stop its running try; the tries behind it run on a new thread, not counted as crashed', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const jobs = [
      await jobFor('ThreadSignal', { channel: signals.name }),
      await jobFor('Echo', { text: 'a' }),
      await jobFor('Echo', { text: 'b' }),
    ];
    const [running, ...behind] = await runAsBatch(pool, jobs);
    const { threadId } = await signals.next();
    running!.controller.abort('timeout');
    expect(await running!.report).toMatchObject({ outcome: 'aborted', reason: 'timeout', threadId });
    const reports = await Promise.all(behind.map((attempt) => attempt.report));
    expect(reports.map((report) => [report.outcome, report.outcome === 'finished' && report.resultText])).toEqual([
      ['finished', 'a'],
      ['finished', 'b'],
    ]);
    for (const report of reports) expect(report.threadId).not.toBe(threadId);
    for (const attempt of behind) expect(attempt.starts).toHaveLength(1);
  });

  it('reports a thread that dies under a try against that try only: the ones behind it run on', async () => {
    const pool = createPool({ maxThreads: 1 });
    const [exiting, behind] = await runAsBatch(pool, [
      await jobFor('Exit', { code: 3 }),
      await jobFor('Echo', { text: 'after the exit' }),
    ]);
    const crashed = expectOutcome(await exiting!.report, 'crashed');
    expect(crashed.exitCode).toBe(3);
    const next = await behind!.report;
    expect(next).toMatchObject({ outcome: 'finished', resultText: 'after the exit' });
    expect(next.threadId).not.toBe(crashed.threadId);
  });

  it('reports a try as soon as it ends, so ending its thread later for another try loses nothing', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const [first, long] = await runAsBatch(pool, [
      await jobFor('Echo', { text: 'kept' }),
      await jobFor('ThreadSignal', { channel: signals.name }),
    ]);
    const { threadId } = await signals.next();
    // Reported while its thread runs the try behind it.
    expect(await first!.report).toMatchObject({ outcome: 'finished', resultText: 'kept', threadId });
    expect(long!.reported()).toBe(false);
    long!.controller.abort('cancel');
    expect(await long!.report).toMatchObject({ outcome: 'aborted', reason: 'cancel', threadId });
  });

  it('keeps the result of a try that ended just before its thread was ended to stop the next one', async () => {
    const pool = createPool({ maxThreads: 1 });
    const signals = new Signals();
    const marker = path.join(os.tmpdir(), `cwtr-thread-started-${randomUUID()}`);
    const jobs = [
      await jobFor('Sleep', { ms: 300 }),
      await jobFor('ThreadSignal', { channel: signals.name, spin: true, touch: marker }),
    ];
    const [sleeper, spinner] = await runAsBatch(pool, jobs);
    await waitFor(() => sleeper!.starts.length > 0, { what: 'the first try of the batch started' });
    // The event loop is held from here to the abort, so the first try's result, posted when it
    // ended, is still unread when its thread is ended under the second try.
    const deadline = Date.now() + 10_000;
    while (!existsSync(marker)) if (Date.now() > deadline) throw new Error('the second try of the batch never started');
    rmSync(marker);
    spinner!.controller.abort('timeout');
    expect(await sleeper!.report).toMatchObject({ outcome: 'finished', resultText: 'slept 300 ms' });
    expect(await spinner!.report).toMatchObject({ outcome: 'aborted', reason: 'timeout' });
  });

  it("ignores what a task posts on its thread's parent port", async () => {
    const pool = createPool({ maxThreads: 1 });
    const [posting, behind] = await runAsBatch(pool, [
      await jobFor('ParentPost'),
      await jobFor('Echo', { text: 'unbothered' }),
    ]);
    const first = await posting!.report;
    expect(first).toMatchObject({ outcome: 'finished', resultText: 'posted' });
    expect(await behind!.report).toMatchObject({
      outcome: 'finished',
      resultText: 'unbothered',
      threadId: first.threadId,
    });
  });

  it('moves a try waiting behind a long one to a thread with nothing to do', async () => {
    const pool = createPool({ maxThreads: 2 });
    const signals = new Signals();
    const jobs = [
      await jobFor('ThreadSignal', { channel: signals.name }),
      ...(await Promise.all(['b', 'c', 'd'].map((text) => jobFor('Echo', { text })))),
    ];
    // The warm-up holds one thread, so the four go to the other as one batch.
    const [long, ...behind] = await runAsBatch(pool, jobs);
    const { threadId } = await signals.next();
    const reports = await Promise.all(behind.map((attempt) => attempt.report));
    expect(reports.map((report) => report.outcome)).toEqual(['finished', 'finished', 'finished']);
    for (const report of reports) expect(report.threadId).not.toBe(threadId);
    expect(long!.reported()).toBe(false);
  });
});
