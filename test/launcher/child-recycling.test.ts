import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * Reused children are replaced after `maxTasksPerChild` tries and after their memory crossed
 * `childMaxRssMb`; the attempt history's pids show it.
 */
const runners = useTestRunners();
const t = useTestDatabase();

async function history(ids: string[]): Promise<{ pid: number; mode: string; peak: number }[]> {
  const { rows } = await t.pool.query(
    `SELECT pid, mode, peak_memory_bytes FROM task_runner_requests_attempts WHERE request_id = ANY($1::bigint[]) ORDER BY ended_at, id`,
    [ids],
  );
  return rows.map((row) => ({ pid: row.pid, mode: row.mode, peak: Number(row.peak_memory_bytes) }));
}

/** Schedules the tasks one after another, each once the previous one ended. */
async function runInTurn(
  runner: ReturnType<typeof runners.create>,
  count: number,
  task: string,
  options: object,
): Promise<string[]> {
  const ids: string[] = [];
  for (let n = 0; n < count; n++) {
    const id = await runner.schedule(task, options);
    await finalCompletion(runner, id);
    ids.push(id);
  }
  return ids;
}

describe('child recycling', () => {
  it('replaces a child after maxTasksPerChild tries', async () => {
    const runner = await runners.start(t, { concurrency: 1, spareChildren: 0, maxTasksPerChild: 3 });
    const rows = await history(await runInTurn(runner, 6, 'Echo', { text: 'x' }));
    expect(rows.map((r) => r.mode)).toEqual(['fresh', 'reused', 'reused', 'fresh', 'reused', 'reused']);
    expect(new Set(rows.slice(0, 3).map((r) => r.pid)).size).toBe(1);
    expect(new Set(rows.slice(3).map((r) => r.pid)).size).toBe(1);
    expect(rows[0]!.pid).not.toBe(rows[3]!.pid);
    // Two children each ran their three tries and were ended (the metrics' child recycles).
    expect(runner.stats.childRecycles).toEqual({ tasks: 2, memory: 0, ended: 0 });
    await runner.stop();
  });

  it('replaces a leaking child once its memory crossed childMaxRssMb', async () => {
    const ceilingMb = 160;
    const runner = await runners.start(t, {
      concurrency: 1,
      spareChildren: 0,
      maxTasksPerChild: Infinity,
      childMaxRssMb: ceilingMb,
    });
    const rows = await history(await runInTurn(runner, 5, 'Leak', { mb: 40 }));
    const change = rows.findIndex((r) => r.pid !== rows[0]!.pid);
    expect(change, 'a later try ran in a new child').toBeGreaterThan(1);
    expect(rows[change]!.mode).toBe('fresh');
    expect(rows[change - 1]!.peak).toBeGreaterThan(ceilingMb * 1024 * 1024);
    expect(rows[0]!.peak).toBeLessThan(ceilingMb * 1024 * 1024);
    expect(runner.stats.childRecycles.memory).toBeGreaterThanOrEqual(1);
    await runner.stop();
  });
});
