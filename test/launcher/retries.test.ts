import { describe, expect, it } from 'vitest';
import { useTestDatabase, getRow } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/** A throwing task is recorded with its stack and retried, after a backoff, until try_limit. */
const runners = useTestRunners();

const t = useTestDatabase();

describe('retries', () => {
  it('retries a failing task until it succeeds', async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('FailTimes', { succeedOnTry: 3 }, { tryLimit: 5 });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FINISHED', tries: 3 });
    expect(await getRow(t.pool, id)).toMatchObject({
      result: 'FINISHED',
      tries: 3,
      pid: null,
      result_text: 'FailTimes succeeded on try 3',
    });
    const tries = runners.completions(runner).filter((e) => e.id === id);
    expect(tries.map((e) => [e.tries, e.result, e.ended])).toEqual([
      [1, 'FAILED', false],
      [2, 'FAILED', false],
      [3, 'FINISHED', true],
    ]);
    expect(tries[0]!.resultText).toMatch(/Error: FailTimes failed on try 1\n\s+at /);
    await runner.stop();
  });

  it('gives up at try_limit with the error and its stack in result_text', async () => {
    const logged: { message: string; fields?: Record<string, unknown> }[] = [];
    const record = (message: string, fields?: Record<string, unknown>): void => {
      logged.push({ message, fields });
    };
    const logger = { debug: record, info: record, warn: record, error: record };
    const runner = await runners.start(t, { logger });
    const id = await runner.schedule('Fail', { reason: 'always' }, { tryLimit: 3 });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FAILED', tries: 3, ended: true });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'FAILED', tries: 3, try_limit: 3, pid: null });
    expect(row.completed_at).toBeInstanceOf(Date);
    expect(row.result_text).toContain('Error: Fail task failed on purpose: always');
    expect(row.result_text).toMatch(/\n\s+at .*Fail\.mjs:\d+/);
    // The launcher's log carries the error and its stack too.
    const failures = logged.filter(
      (entry) => entry.fields?.id === id && String(entry.fields?.text).includes('failed on purpose'),
    );
    expect(failures).toHaveLength(3);
    expect(String(failures[0]!.fields!.text)).toMatch(/\n\s+at /);
    await runner.stop();
    // Given up means given up: no runner takes it again.
    const next = await runners.start(t);
    expect((await next.status()).counts).toMatchObject({ givenUp: 1, waiting: 0 });
    await next.stop();
  });

  it('waits the backoff between tries: min(baseMs * 2^(tries-1), maxMs)', async () => {
    const runner = await runners.start(t, { retryBackoff: { baseMs: 600, maxMs: 1_000 } });
    const id = await runner.schedule('FailTimes', { succeedOnTry: 3 }, { tryLimit: 3 });
    const starts: Promise<{ tries: number; at: Date }>[] = [];
    const delays: Promise<{ tries: number; delayUntil: Date }>[] = [];
    // delay_until stays in the row until the next outcome overwrites it, so reading it after the
    // event is safe even if the retry was claimed meanwhile.
    runner.events.on('task:completed', (e) => {
      if (e.id === id && !e.ended)
        delays.push(getRow(t.pool, id).then((row) => ({ tries: e.tries, delayUntil: row.delay_until })));
    });
    runner.events.on('task:started', (e) => {
      if (e.id === id) starts.push(getRow(t.pool, id).then((row) => ({ tries: e.tries, at: row.started_at })));
    });
    await finalCompletion(runner, id);
    // The reads the events began may still be on their way: wait for each of them.
    const started = await Promise.all(starts);
    const delayed = await Promise.all(delays);
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'FINISHED', tries: 3 });
    // Each retry started no earlier than the delay its failure set, and that delay grew.
    expect(delayed).toHaveLength(2);
    expect(started.map((s) => s.tries)).toEqual([1, 2, 3]);
    for (const { tries, delayUntil } of delayed) {
      const next = started.find((s) => s.tries === tries + 1)!;
      expect(next.at.getTime()).toBeGreaterThanOrEqual(delayUntil.getTime());
    }
    const gap = (n: number) => started[n]!.at.getTime() - started[n - 1]!.at.getTime();
    expect(gap(1)).toBeGreaterThanOrEqual(600);
    expect(gap(2)).toBeGreaterThanOrEqual(1_000);
    await runner.stop();
  });
});
