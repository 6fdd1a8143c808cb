import { describe, expect, it } from 'vitest';
import type { ForkPool } from '../../dist/pool/fork-pool.js';
import { waitFor } from '../helpers/db.js';
import { jobFor } from '../helpers/jobs.js';
import { useTestPools, type PoolAttempt } from '../helpers/pools.js';

/**
 * A child's output is never dropped without a word: a task that writes faster than the launcher
 * reads (and does not wait for the stream to drain) gets the end of its output logged, its last
 * line included, after a line that says how many bytes were cut, in every kind of child.
 */
const pools = useTestPools();
const mib = 1024 * 1024;
const marker = /^\[(\d+) bytes of output dropped: /;

/** What Spew writes: `mb` MiB of 1 KiB lines, then its last line. */
const written = (mb: number): number => mb * mib + Buffer.byteLength(`spew done: ${mb} MiB\n`);

async function spew(pool: ForkPool, mb: number): Promise<PoolAttempt> {
  const attempt = pools.run(pool, await jobFor('Spew', { mb }));
  expect(await attempt.report).toMatchObject({ outcome: 'finished', resultText: `spewed ${mb} MiB` });
  // Output may arrive after the report: it is the try's until the child's next one.
  await waitFor(() => attempt.lines.includes(`stdout: spew done: ${mb} MiB`), {
    timeoutMs: 20_000,
    what: 'the last line',
  });
  return attempt;
}

/** Every byte written is either in a line that reached the log or counted by the marker. */
function expectAccounted(attempt: PoolAttempt, mb: number): void {
  const stdout = attempt.lines
    .filter((line) => line.startsWith('stdout: '))
    .map((line) => line.slice('stdout: '.length));
  const markers = stdout.filter((line) => marker.test(line));
  expect(markers.length, 'a marker says what was dropped').toBeGreaterThanOrEqual(1);
  const dropped = markers.reduce((sum, line) => sum + Number(marker.exec(line)![1]), 0);
  const passed = stdout
    .filter((line) => !marker.test(line))
    .reduce((sum, line) => sum + Buffer.byteLength(line) + 1, 0);
  expect(passed + dropped).toBe(written(mb));
  // How much passes depends on how fast the launcher reads while the task writes (about 1.3 MiB
  // of the 30 on a loaded machine, 8.2 to 8.8 MiB in a CI run), so only the sum is fixed.
  expect(dropped, 'some of a 30 MiB burst is dropped').toBeGreaterThan(0);
  expect(stdout.at(-1)).toBe(`spew done: ${mb} MiB`);
}

describe('output a child writes faster than it can be passed on', () => {
  it("keeps the end of a fresh child's output and marks what was cut", async () => {
    const attempt = await spew(pools.create(), 30);
    expect(attempt.start()!.mode).toBe('fresh');
    expectAccounted(attempt, 30);
  });

  it('does so in a spare child', async () => {
    const pool = pools.create({ concurrency: 1, spareChildren: 1 });
    pool.warm();
    await waitFor(() => pool.pids.length === 1, { what: 'a spare child' });
    const attempt = await spew(pool, 30);
    expect(attempt.start()!.mode).toBe('spare');
    expectAccounted(attempt, 30);
  });

  it('does so for stderr written without a newline, the marker on a line of its own', async () => {
    // 30 MiB, as above: a quiet machine's launcher read all of 8 MiB as it came (nothing dropped, no marker).
    const attempt = pools.run(pools.create(), await jobFor('Spew', { mb: 30, stream: 'stderr', newlines: false }));
    expect(await attempt.report).toMatchObject({ outcome: 'finished', resultText: 'spewed 30 MiB' });
    await waitFor(() => attempt.lines.includes('stderr: spew done: 30 MiB'), {
      timeoutMs: 20_000,
      what: 'the last line',
    });
    const stderr = attempt.lines
      .filter((line) => line.startsWith('stderr: '))
      .map((line) => line.slice('stderr: '.length));
    expect(stderr.filter((line) => marker.test(line))).toHaveLength(1);
    expect(stderr.at(-1)).toBe('spew done: 30 MiB');
  });

  it("does so in a reused child, and the next try's output is its own", async () => {
    const pool = pools.create({ concurrency: 1, maxTasksPerChild: Infinity });
    await spew(pool, 1);
    const reused = await spew(pool, 30);
    expect(reused.start()!.mode).toBe('reused');
    expectAccounted(reused, 30);
    const after = pools.run(pool, await jobFor('Chatty', { text: 'after' }));
    expect(await after.report).toMatchObject({ outcome: 'finished' });
    await waitFor(() => after.lines.includes('stderr: chatty warns'), {
      timeoutMs: 5_000,
      what: "the next try's output",
    });
    expect(after.lines.filter((line) => line.startsWith('stdout: '))).toEqual(['stdout: chatty says after']);
  });
});
