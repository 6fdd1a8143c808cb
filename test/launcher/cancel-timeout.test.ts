import { describe, expect, it } from 'vitest';
import { getRow, useTestDatabase } from '../helpers/db.js';
import { isAlive, waitForExit } from '../helpers/processes.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * Cancels reach the launcher that runs the request, wherever the cancel comes from; timeouts and
 * cancels kill the task's whole process group, escalating to SIGKILL for a task that ignores
 * SIGTERM.
 */
const runners = useTestRunners();
const t = useTestDatabase();

/** Resolves with the rest of the first output line of request `id` starting with `prefix`. */
function outputLine(runner: ReturnType<typeof runners.create>, id: string, prefix: string): Promise<string> {
  return runner.events
    .waitFor('task:output', (e) => e.id === id && e.line.startsWith(prefix), 15_000)
    .then((e) => e.line.slice(prefix.length));
}

describe('cancel across launchers', () => {
  it('a cancel from another process reaches the running launcher through NOTIFY', async () => {
    const running = await runners.start(t);
    // Never started: only its store is used, as a web process or the CLI would.
    const elsewhere = runners.create(t);
    const id = await running.schedule('Sleep', { ms: 60_000 });
    const started = await runners.started(running, id);
    expect(await elsewhere.cancel(id)).toMatchObject({
      state: 'cancelling',
      pid: started.pid,
      launcherId: running.launcherId,
    });
    expect(await finalCompletion(running, id)).toMatchObject({ result: 'CANCELLED', ended: true });
    await waitForExit(started.pid);
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'CANCELLED', pid: null });
    await elsewhere.stop();
    await running.stop();
  });

  it('a cancel whose notification was missed is found at the next lease renewal', async () => {
    const running = await runners.start(t, { leaseMs: 600 });
    const id = await running.schedule('Sleep', { ms: 60_000 });
    await runners.started(running, id);
    // Set by hand, with no NOTIFY: only the renewal (every leaseMs / 3) can see it.
    await t.pool.query('UPDATE task_runner_requests SET cancel_requested_at = now() WHERE id = $1', [id]);
    expect(await finalCompletion(running, id)).toMatchObject({ result: 'CANCELLED', ended: true });
    await running.stop();
  });
});

describe('killing the whole task', () => {
  it('SIGKILLs a task that ignores SIGTERM once killTimeoutMs has passed after its timeout', async () => {
    const runner = await runners.start(t, { killTimeoutMs: 300 });
    const id = await runner.schedule('IgnoreTerm', {}, { tryLimit: 1, timeoutMs: 300 });
    const ignoring = outputLine(runner, id, 'ignoring SIGTERM');
    await ignoring;
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'TIMED_OUT' });
    const { rows } = await t.pool.query('SELECT signal FROM task_runner_requests_attempts WHERE request_id = $1', [id]);
    expect(rows).toEqual([{ signal: 'SIGKILL' }]);
    await runner.stop();
  });

  for (const how of ['timeout', 'cancel'] as const) {
    it(`leaves no grandchild behind after a ${how}`, async () => {
      const runner = await runners.start(t, { maxTasksPerChild: Infinity });
      const id = await runner.schedule(
        'Grandchild',
        {},
        { tryLimit: 1, ...(how === 'timeout' ? { timeoutMs: 500 } : {}) },
      );
      const grandchild = Number(await outputLine(runner, id, 'grandchild pid='));
      expect(isAlive(grandchild)).toBe(true);
      if (how === 'cancel') await runner.cancel(id);
      expect(await finalCompletion(runner, id)).toMatchObject({
        result: how === 'timeout' ? 'TIMED_OUT' : 'CANCELLED',
      });
      await waitForExit(grandchild, 5_000);
      await runner.stop();
    });
  }
});
