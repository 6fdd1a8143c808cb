import { describe, expect, it } from 'vitest';
import { getRow, insertRequests, useTestDatabase, waitFor } from '../helpers/db.js';
import { isAlive } from '../helpers/processes.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * A row taken from a launcher while it runs it (another host recovered it after the lease ran
 * out, as when the launcher was frozen): the next lease renewal finds it gone, the try is stopped
 * and nothing is written for it, and a held row that was taken is never started.
 * (test/chaos/stopped-launcher.test.ts does this with a real SIGSTOP.)
 */
const t = useTestDatabase();
const runners = useTestRunners();

/** What another launcher's lease recovery does to a row, written by hand. */
async function takeAway(id: string): Promise<void> {
  await t.pool.query(
    `UPDATE task_runner_requests SET pid = NULL, launcher_id = 'elsewhere', host = 'elsewhere',
    result = 'CRASHED', result_text = 'taken away', delay_until = 'infinity' WHERE id = $1`,
    [id],
  );
}

describe('a lease lost while running', () => {
  it('stops the try whose row was taken, writes nothing for it, and never starts a taken held row', async () => {
    // Renewed every second: a loaded machine (a CI run) delayed renewals of a 600 ms lease past
    // its fence, which ended the try itself and wrote its history before the row was taken.
    const runner = await runners.start(t, { concurrency: 1, leaseMs: 3_000, prefetch: 4, maxTasksPerChild: 1 });
    // Short tries first, so the runner holds rows ahead; then two long ones: one runs, one is held.
    const warm = await insertRequests(t.pool, 4, { task_class_name: 'Echo', options: { text: 'warm' } });
    await waitFor(
      async () => (await Promise.all(warm.map((id) => getRow(t.pool, id)))).every((row) => row.completed_at !== null),
      { what: 'the warm-up rows' },
    );
    const [running, held] = await insertRequests(t.pool, 2, { task_class_name: 'Sleep', options: { ms: 60_000 } });
    const started = await runners.started(runner, running!);
    await waitFor(async () => (await getRow(t.pool, held!)).launcher_id === runner.launcherId, {
      what: 'the second row to be held',
    });

    await takeAway(running!);
    await takeAway(held!);
    await waitFor(() => !isAlive(started.pid), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'the try of the taken row to be stopped',
    });

    expect(await getRow(t.pool, running!)).toMatchObject({
      result: 'CRASHED',
      result_text: 'taken away',
      launcher_id: 'elsewhere',
      pid: null,
    });
    expect(await getRow(t.pool, held!)).toMatchObject({
      result: 'CRASHED',
      result_text: 'taken away',
      launcher_id: 'elsewhere',
      pid: null,
    });
    const { rows } = await t.pool.query(
      'SELECT count(*)::int AS n FROM task_runner_requests_attempts WHERE request_id = ANY($1::bigint[])',
      [[running, held]],
    );
    expect(rows[0].n).toBe(0);
    expect(runners.completions(runner).filter((c) => c.id === running || c.id === held)).toEqual([]);
    // The slot is free again: new work runs.
    const [next] = await insertRequests(t.pool, 1, { task_class_name: 'Echo', options: { text: 'after' } });
    await waitFor(async () => (await getRow(t.pool, next!)).result === 'FINISHED', {
      timeoutMs: 20_000,
      what: 'new work to run',
    });
    await runner.stop();
    expect(runners.completions(runner).some((c) => c.id === held)).toBe(false);
    expect(await getRow(t.pool, held!)).toMatchObject({ result: 'CRASHED', launcher_id: 'elsewhere' });
  });
});
