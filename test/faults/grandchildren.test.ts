import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CreateRunnerOptions } from '../../dist/index.js';
import { useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { isAlive, PidTracker, waitForExit } from '../helpers/processes.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * A try's descendants end with the try, however it ended and wherever it ran: a process a task
 * started (one that ignores SIGTERM, here) does not survive its try's end, in a fresh child, in a
 * reused one (which itself lives on), or in a worker thread, after a timeout too.
 */
const runners = useTestRunners();
const t = useTestDatabase();
const leftovers = new PidTracker();

const pidIn = (text: string): number => Number(/grandchild pid=(\d+)/.exec(text)?.[1]);

const modes: { name: string; options: Partial<CreateRunnerOptions> }[] = [
  { name: 'fresh child', options: { spareChildren: 0 } },
  { name: 'reused child', options: { spareChildren: 0, maxTasksPerChild: Infinity, concurrency: 1 } },
  { name: 'thread', options: { defaultMode: 'thread' } },
];

describe.each(modes)('processes a task started, $name', ({ options }) => {
  it('end when the try FINISHED', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Spawner', {}, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id);
    expect(row.result).toBe('FINISHED');
    const grandchild = pidIn(row.result_text);
    leftovers.add(grandchild);
    await waitForExit(grandchild, 5_000);
    await runner.stop();
    await leftovers.expectAllGone(0);
  });

  it('end when the try is stopped by its hard timeout', async () => {
    const runner = await runners.start(t, options);
    const pidFile = path.join(await mkdtemp(path.join(tmpdir(), 'cwtr-spawner-')), 'pid');
    const id = await runner.schedule('Spawner', { hang: true, pidFile }, { tryLimit: 1, timeoutMs: 1_000 });
    const grandchild = Number(
      await waitFor(() => readFile(pidFile, 'utf8').catch(() => ''), { what: 'the grandchild pid' }),
    );
    leftovers.add(grandchild);
    expect(isAlive(grandchild)).toBe(true);
    expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'TIMED_OUT' });
    await waitForExit(grandchild, 5_000);
    await runner.stop();
    await leftovers.expectAllGone(0);
  });
});

describe('a reused child', () => {
  it('lives on after the processes of its try were ended', async () => {
    const runner = await runners.start(t, modes[1]!.options);
    const first = await runner.schedule('Spawner', {}, { tryLimit: 1 });
    const second = await runner.schedule('Echo', { text: 'after' }, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, first);
    leftovers.add(pidIn(row.result_text));
    expect(await waitForCompleted(t.pool, second)).toMatchObject({ result: 'FINISHED', result_text: 'after' });
    const { rows } = await t.pool.query(
      'SELECT pid, mode FROM task_runner_requests_attempts WHERE request_id = ANY($1::bigint[]) ORDER BY id',
      [[first, second]],
    );
    expect(rows.map((r) => r.mode)).toEqual(['fresh', 'reused']);
    expect(rows[0].pid).toBe(rows[1].pid);
    await waitFor(() => !isAlive(pidIn(row.result_text)), { timeoutMs: 5_000, what: 'the grandchild to end' });
    await runner.stop();
    await leftovers.expectAllGone(0);
  });
});
