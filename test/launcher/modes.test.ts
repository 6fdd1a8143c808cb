import { describe, expect, it } from 'vitest';
import type { CreateRunnerOptions } from '../../dist/index.js';
import { getRow, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * One behavioural suite, run in every pool mode: a fresh child per try, warm spares, reused
 * children, and worker threads. Each case checks the request row and the attempt history.
 */
const runners = useTestRunners();
const t = useTestDatabase();

interface ModeCase {
  name: string;
  options: Partial<CreateRunnerOptions>;
  /** The `mode` the history records for a request's first try. */
  firstMode: string;
}

const modes: ModeCase[] = [
  { name: 'fresh child', options: { spareChildren: 0, maxTasksPerChild: 1 }, firstMode: 'fresh' },
  { name: 'warm spare', options: { spareChildren: 2, maxTasksPerChild: 1 }, firstMode: 'spare' },
  {
    name: 'reused child',
    options: { spareChildren: 0, maxTasksPerChild: Infinity, concurrency: 1 },
    firstMode: 'fresh',
  },
  { name: 'thread', options: { defaultMode: 'thread' }, firstMode: 'thread' },
];

async function attempts(id: string): Promise<any[]> {
  const { rows } = await t.pool.query('SELECT * FROM task_runner_requests_attempts WHERE request_id = $1 ORDER BY id', [
    id,
  ]);
  return rows;
}

describe.each(modes)('pool mode: $name', ({ options, firstMode }) => {
  it('runs a task to FINISHED and records the attempt', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Echo', { text: 'hello' });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FINISHED', resultText: 'hello' });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'FINISHED', result_text: 'hello', tries: 1, pid: null });
    const [attempt, ...more] = await attempts(id);
    expect(more).toEqual([]);
    expect(attempt).toMatchObject({
      try: 1,
      result: 'FINISHED',
      mode: firstMode,
      host: runner.config.host,
      launcher_id: runner.launcherId,
    });
    expect(attempt.pid).toEqual(expect.any(Number));
    if (firstMode === 'thread') expect(attempt).toMatchObject({ pid: process.pid, thread_id: expect.any(Number) });
    else expect(attempt.thread_id).toBeNull();
    expect(attempt.started_at).toBeInstanceOf(Date);
    expect(attempt.ended_at.getTime()).toBeGreaterThanOrEqual(attempt.started_at.getTime());
    await runner.stop();
  });

  it("passes the task's output on with its request id", async () => {
    const runner = await runners.start(t, options);
    const lines: string[] = [];
    runner.events.on('task:output', (e) => lines.push(`${e.id} ${e.stream}: ${e.line}`));
    const id = await runner.schedule('Chatty', { text: 'hi' });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FINISHED', resultText: 'said' });
    // A child's pipes and its IPC channel are not ordered with each other: wait for the lines.
    const expected = [`${id} stdout: chatty says hi`, `${id} stderr: chatty warns`];
    await waitFor(() => expected.every((line) => lines.includes(line)), {
      what: 'both output lines',
      timeoutMs: 5_000,
    });
    await runner.stop();
  });

  it('records an exception as FAILED and retries it up to try_limit', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Fail', { reason: 'mode suite' }, { tryLimit: 2 });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FAILED', tries: 2, ended: true });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'FAILED', tries: 2, crashes: 0 });
    expect(row.result_text).toContain('Fail task failed on purpose: mode suite');
    expect((await attempts(id)).map((a) => [a.try, a.result])).toEqual([
      [1, 'FAILED'],
      [2, 'FAILED'],
    ]);
    await runner.stop();
  });

  it('records a crash as CRASHED, counts it apart, and parks the request at crashLimit', async () => {
    const runner = await runners.start(t, { ...options, crashLimit: 2 });
    const id = await runner.schedule('Exit', { code: 3 }, { tryLimit: 5 });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'CRASHED', tries: 2, ended: true, parked: true });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'PARKED', tries: 2, crashes: 2, pid: null });
    expect(row.result_text).toMatch(/parked after 2 crashes/);
    expect(row.completed_at).toBeInstanceOf(Date);
    const history = await attempts(id);
    expect(history.map((a) => a.result)).toEqual(['CRASHED', 'CRASHED']);
    if (firstMode !== 'thread') expect(history[0]).toMatchObject({ exit_code: 3, signal: null });
    // The launcher is fine and runs the next task.
    const echo = await runner.schedule('Echo', { text: 'still here' });
    expect(await finalCompletion(runner, echo)).toMatchObject({ result: 'FINISHED' });
    await runner.stop();
  });

  it('stops a try at its hard timeout and records TIMED_OUT', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Sleep', { ms: 60_000 }, { tryLimit: 1, timeoutMs: 400 });
    const done = await finalCompletion(runner, id);
    expect(done).toMatchObject({ result: 'TIMED_OUT', ended: true });
    expect(done.resultText).toMatch(/hard timeout of 400 ms reached/);
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'TIMED_OUT', crashes: 1, pid: null });
    const [attempt] = await attempts(id);
    expect(attempt).toMatchObject({ result: 'TIMED_OUT' });
    if (firstMode !== 'thread') expect(attempt.signal).toBe('SIGTERM');
    await runner.stop();
  });

  it('cancels a running try: killed, CANCELLED, never retried', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Sleep', { ms: 60_000 }, { tryLimit: 5 });
    await runners.started(runner, id);
    expect(await runner.cancel(id)).toMatchObject({ state: 'cancelling' });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'CANCELLED', ended: true, tries: 1 });
    const row = await waitForCompleted(t.pool, id);
    expect(row).toMatchObject({ result: 'CANCELLED', tries: 1, pid: null });
    expect((await attempts(id)).map((a) => a.result)).toEqual(['CANCELLED']);
    await runner.stop();
  });

  it('cancels a waiting request: it never starts', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Echo', { text: 'never' }, { delayMs: 60_000 });
    expect(await runner.cancel(id)).toMatchObject({ state: 'cancelled' });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'CANCELLED', tries: 0, pid: null });
    expect(await attempts(id)).toEqual([]);
    await runner.stop();
  });
});
