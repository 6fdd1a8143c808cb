import { describe, expect, it } from 'vitest';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Only the child runtime speaks on the IPC channel. A task that tries to report for itself, by
 * the channel's own send function or by writing to its file descriptor, never ends its try early
 * with a result of its own making, and never gets a later try in the same child blamed.
 */
const runners = useTestRunners();
const t = useTestDatabase();

async function attempts(id: string): Promise<{ result: string; pid: number; mode: string }[]> {
  const { rows } = await t.pool.query(
    'SELECT result, pid, mode FROM task_runner_requests_attempts WHERE request_id = $1 ORDER BY id',
    [id],
  );
  return rows;
}

describe('a task forging its own report', () => {
  it('finds no send function of the channel to call', async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('Forge', { how: 'send' }, { tryLimit: 1 });
    expect(await waitForCompleted(t.pool, id)).toMatchObject({
      result: 'FINISHED',
      result_text: 'real (process._send is gone)',
    });
    await runner.stop();
  });

  it('writing a report to the channel descriptor fails the try as forged, without ending it as FINISHED', async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('Forge', { how: 'fd' }, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id);
    expect(row.result).toBe('FAILED');
    expect(row.result_text).toMatch(/did not come from the child runtime/);
    await runner.stop();
  });

  it('costs the next request on a reused child nothing', async () => {
    const runner = await runners.start(t, { concurrency: 1, spareChildren: 0, maxTasksPerChild: Infinity });
    const forger = await runner.schedule('Forge', { how: 'send', ms: 50 }, { tryLimit: 1 });
    const next = await runner.schedule('Echo', { text: 'innocent' }, { tryLimit: 1 });
    expect(await waitForCompleted(t.pool, forger)).toMatchObject({ result: 'FINISHED' });
    expect(await waitForCompleted(t.pool, next)).toMatchObject({
      result: 'FINISHED',
      result_text: 'innocent',
      crashes: 0,
    });
    const [first] = await attempts(forger);
    const [second] = await attempts(next);
    expect(second).toMatchObject({ result: 'FINISHED', mode: 'reused', pid: first!.pid });
    await runner.stop();
  });
});
