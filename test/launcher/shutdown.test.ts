import { describe, expect, it } from 'vitest';
import { useTestDatabase, getRow } from '../helpers/db.js';
import { isAlive } from '../helpers/processes.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * Graceful shutdown: stop claiming, let running tasks finish within the grace period, then
 * terminate the rest and release their rows (INTERRUPTED, try given back). No row keeps a pid.
 */
const runners = useTestRunners();

const t = useTestDatabase();

async function rowsHoldingPid(): Promise<number> {
  const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM task_runner_requests WHERE pid IS NOT NULL');
  return rows[0].n;
}

describe('stop()', () => {
  it('interrupts tasks still running after the grace period and releases their rows', async () => {
    const runner = await runners.start(t, { concurrency: 2, shutdownGraceMs: 200, killTimeoutMs: 300 });
    const ids = await Promise.all([1, 2].map(() => runner.schedule('Sleep', { ms: 60_000 })));
    const waiting = await runner.schedule('Echo', { text: 'not yet' });
    const pids = await Promise.all(ids.map(async (id) => (await runners.started(runner, id)).pid));
    const stopped = runner.events.waitFor('runner:stopped', () => true, 15_000);

    await runner.stop();
    expect(await stopped).toMatchObject({ launcherId: runner.launcherId, interrupted: 2 });
    expect(pids.filter(isAlive)).toEqual([]);
    expect(await rowsHoldingPid()).toBe(0);
    for (const id of ids) {
      const row = await getRow(t.pool, id);
      expect(row).toMatchObject({ result: 'INTERRUPTED', pid: null, tries: 0, completed_at: null, delay_until: null });
      expect(row.result_text).toMatch(/interrupted by launcher shutdown|released by launcher shutdown/);
    }
    // The queued request was never claimed.
    expect(await getRow(t.pool, waiting)).toMatchObject({ tries: 0, pid: null, result: null });
  });

  it('lets tasks that end within the grace period finish', async () => {
    const runner = await runners.start(t, { shutdownGraceMs: 10_000 });
    const id = await runner.schedule('Sleep', { ms: 500 });
    await runners.started(runner, id);
    await runner.stop();
    expect(await getRow(t.pool, id)).toMatchObject({
      result: 'FINISHED',
      result_text: 'slept 500 ms',
      tries: 1,
      pid: null,
    });
  });

  it('an interrupted request runs again under the next launcher', async () => {
    const first = await runners.start(t, { shutdownGraceMs: 0 });
    const sleeper = await first.schedule('Sleep', { ms: 60_000 });
    await runners.started(first, sleeper);
    await first.stop();
    expect(await getRow(t.pool, sleeper)).toMatchObject({ result: 'INTERRUPTED', tries: 0 });

    await t.pool.query(`UPDATE task_runner_requests SET options = '--- {ms: 10}' WHERE id = $1`, [sleeper]);
    const second = runners.create(t);
    const finished = finalCompletion(second, sleeper);
    await second.start();
    expect(await finished).toMatchObject({ result: 'FINISHED', tries: 1 });
    await second.stop();
  });

  it('is safe before start and when called twice', async () => {
    const never = runners.create(t);
    await never.stop();
    await never.stop();
    const runner = await runners.start(t);
    await Promise.all([runner.stop(), runner.stop()]);
    await runner.stop();
    await expect(runner.start()).rejects.toThrow(/stopped/);
  });
});
