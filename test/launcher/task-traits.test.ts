import { describe, expect, it } from 'vitest';
import { getRow, useTestDatabase } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * A task class's `static mode` and `static timeoutMs` decide where and how long it runs, unless
 * `taskOverrides` or the request itself says otherwise.
 */
const runners = useTestRunners();
const t = useTestDatabase();

describe('task class traits in the launcher', () => {
  it('runs a class declaring thread mode in a worker thread, recording the launcher pid and thread id', async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('ThreadEcho', { text: 'hi' });
    const started = await runners.started(runner, id);
    expect(started).toMatchObject({ pid: process.pid, threadId: expect.any(Number), mode: 'thread' });
    const done = await finalCompletion(runner, id);
    expect(done).toMatchObject({ result: 'FINISHED' });
    expect(done.resultText).toBe(`hi (pid ${process.pid}, thread ${started.threadId})`);
    await runner.stop();
  });

  it('lets taskOverrides send a thread-mode class to a child process', async () => {
    const runner = await runners.start(t, { taskOverrides: { ThreadEcho: { mode: 'process' } } });
    const id = await runner.schedule('ThreadEcho', { text: 'hi' });
    const started = await runners.started(runner, id);
    expect(started.threadId).toBeNull();
    expect(started.pid).not.toBe(process.pid);
    expect(await finalCompletion(runner, id)).toMatchObject({
      result: 'FINISHED',
      resultText: `hi (pid ${started.pid}, thread 0)`,
    });
    await runner.stop();
  });

  it('applies a class timeout, which the request and taskOverrides can replace', async () => {
    const runner = await runners.start(t);
    const classTimeout = await runner.schedule('SlowStatic', {}, { tryLimit: 1 });
    expect(await finalCompletion(runner, classTimeout)).toMatchObject({
      result: 'TIMED_OUT',
      resultText: expect.stringMatching(/hard timeout of 300 ms/),
    });
    const longer = await runner.schedule('SlowStatic', { ms: 500 }, { tryLimit: 1, timeoutMs: 5_000 });
    expect(await finalCompletion(runner, longer)).toMatchObject({ result: 'FINISHED', resultText: 'waited 500 ms' });
    await runner.stop();
    const unlimited = await runners.start(t, { taskOverrides: { SlowStatic: { timeoutMs: null } } });
    const id = await unlimited.schedule('SlowStatic', { ms: 500 }, { tryLimit: 1 });
    expect(await finalCompletion(unlimited, id)).toMatchObject({ result: 'FINISHED' });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'FINISHED', crashes: 0 });
    await unlimited.stop();
  });
});
