import { describe, expect, it } from 'vitest';
import type { AttemptReport } from '../../dist/pool/attempt.js';
import { waitFor } from '../helpers/db.js';
import { jobFor } from '../helpers/jobs.js';
import { useTestPools } from '../helpers/pools.js';
import { isAlive, waitForExit } from '../helpers/processes.js';

const pools = useTestPools();

/** Resolves once the try has printed a line starting with `prefix`; returns the rest of it. */
function lineStarting(prefix: string): {
  hooks: { onOutput(stream: string, line: string): void };
  seen: Promise<string>;
} {
  let found!: (rest: string) => void;
  const seen = new Promise<string>((resolve) => {
    found = resolve;
  });
  return { hooks: { onOutput: (_stream, line) => line.startsWith(prefix) && found(line.slice(prefix.length)) }, seen };
}

describe('ForkPool children: spares and reuse', () => {
  it('runs up to maxTasksPerChild tries in one child, then replaces it', async () => {
    const pool = pools.create({ concurrency: 1, maxTasksPerChild: 3 });
    const starts = [];
    for (let n = 0; n < 7; n++) {
      const attempt = pools.run(pool, await jobFor('Echo', { text: `try ${n}` }));
      expect(await attempt.report).toMatchObject({ outcome: 'finished', resultText: `try ${n}` });
      starts.push(attempt.start()!);
    }
    const pids = starts.map((s) => s.pid);
    expect(new Set(pids.slice(0, 3)).size).toBe(1);
    expect(new Set(pids.slice(3, 6)).size).toBe(1);
    expect(new Set([pids[0], pids[3], pids[6]]).size).toBe(3);
    expect(starts.map((s) => s.mode)).toEqual(['fresh', 'reused', 'reused', 'fresh', 'reused', 'reused', 'fresh']);
    await waitForExit(pids[0]!);
  });

  it('keeps one child for every try with maxTasksPerChild Infinity, failed tries included', async () => {
    const pool = pools.create({ concurrency: 1, maxTasksPerChild: Infinity });
    const pids = new Set<number>();
    for (const job of [
      await jobFor('Echo', { text: 'a' }),
      await jobFor('Fail'),
      await jobFor('Echo', { text: 'b' }),
    ]) {
      const attempt = pools.run(pool, job);
      await attempt.report;
      pids.add(attempt.start()!.pid);
    }
    expect(pids.size).toBe(1);
  });

  it("gives a try the output that arrives after its report, until the child's next try", async () => {
    const pool = pools.create({ concurrency: 1, maxTasksPerChild: Infinity });
    const late = pools.run(pool, await jobFor('Late'));
    expect(await late.report).toMatchObject({ outcome: 'finished', resultText: 'returned' });
    await waitFor(() => late.lines.includes('stdout: late line'), { timeoutMs: 5_000, what: 'the late line' });
  });

  it('does not reuse a child after an uncaught exception', async () => {
    const pool = pools.create({ concurrency: 1, maxTasksPerChild: Infinity });
    const failing = pools.run(pool, await jobFor('Fail', { later: true }));
    expect(await failing.report).toMatchObject({ outcome: 'failed', kind: 'task' });
    const next = pools.run(pool, await jobFor('Echo', { text: 'after' }));
    expect(await next.report).toMatchObject({ outcome: 'finished', resultText: 'after' });
    expect(next.start()!.pid).not.toBe(failing.start()!.pid);
    expect(next.start()!.mode).toBe('fresh');
  });

  it('replaces a child whose memory crossed the ceiling between tasks', async () => {
    const ceiling = 160 * 1024 * 1024;
    const pool = pools.create({ concurrency: 1, maxTasksPerChild: Infinity, maxRssBytes: ceiling });
    const runs: { pid: number; report: AttemptReport }[] = [];
    for (let n = 0; n < 5; n++) {
      const attempt = pools.run(pool, await jobFor('Leak', { mb: 40 }));
      runs.push({ report: await attempt.report, pid: attempt.start()!.pid });
    }
    const firstPid = runs[0]!.pid;
    const change = runs.findIndex((r) => r.pid !== firstPid);
    expect(change, 'a later try ran in a new child').toBeGreaterThan(1);
    // The try before the change left its child over the ceiling; none before it did.
    expect(runs[change - 1]!.report.peakMemoryBytes!).toBeGreaterThan(ceiling);
    expect(runs[0]!.report.peakMemoryBytes!).toBeLessThan(ceiling);
    await waitForExit(firstPid);
  });

  it('boots a spare ahead of need and hands it the next try', async () => {
    const pool = pools.create({ concurrency: 1, spareChildren: 1 });
    pool.warm();
    const [sparePid] = await waitFor(() => (pool.pids.length === 1 ? pool.pids : null), { what: 'a spare child' });
    pools.tracker.add(sparePid);
    const attempt = pools.run(pool, await jobFor('Echo', { text: 'warm' }));
    expect(await attempt.report).toMatchObject({ outcome: 'finished', resultText: 'warm' });
    expect(attempt.start()).toMatchObject({ pid: sparePid, mode: 'spare' });
    // The spare was used once (the default) and a new one is booted in its place.
    await waitForExit(sparePid!);
    const [next] = await waitFor(() => (pool.pids.length === 1 ? pool.pids : null), { what: 'a new spare' });
    pools.tracker.add(next);
    expect(next).not.toBe(sparePid);
  });

  it('never hands a try to a child that failed to start', async () => {
    const pool = pools.create({ concurrency: 1, execArgv: ['--require=/nonexistent/cw-preload.cjs'] });
    const attempt = pools.run(pool, await jobFor('Echo', { text: 'never' }));
    const report = await attempt.report;
    expect(report).toMatchObject({ outcome: 'crashed', pid: null });
    if (report.outcome !== 'crashed') throw new Error('unreachable');
    expect(report.text).toMatch(/child failed to start \(exit code 1\).*Cannot find module/s);
    expect(attempt.start()).toBeNull();
  });

  it('reaps idle children beyond the spares after childIdleMs', async () => {
    const pool = pools.create({ concurrency: 2, maxTasksPerChild: Infinity, idleMs: 150, spareChildren: 1 });
    const attempts = [
      pools.run(pool, await jobFor('Sleep', { ms: 100 })),
      pools.run(pool, await jobFor('Sleep', { ms: 100 })),
    ];
    await Promise.all(attempts.map((a) => a.report));
    const pids = attempts.map((a) => a.start()!.pid);
    expect(new Set(pids).size).toBe(2);
    await waitFor(() => pids.filter(isAlive).length === 1 && pool.pids.length === 1, {
      timeoutMs: 5_000,
      what: 'one idle child to be reaped',
    });
    expect(pids).toContain(pool.pids[0]);
  });
});

describe('ForkPool aborts', () => {
  it('terminates a running try on abort and reports why', async () => {
    const pool = pools.create();
    const controller = new AbortController();
    const asleep = lineStarting('sleeping pid=');
    const attempt = pools.run(pool, await jobFor('Sleep', { ms: 60_000 }), asleep.hooks, controller.signal);
    await asleep.seen;
    controller.abort('timeout');
    expect(await attempt.report).toMatchObject({
      outcome: 'aborted',
      reason: 'timeout',
      signal: 'SIGTERM',
      pid: attempt.start()!.pid,
    });
  });

  it('SIGKILLs a task that ignores SIGTERM after killTimeoutMs', async () => {
    const pool = pools.create({ killTimeoutMs: 300 });
    const controller = new AbortController();
    const ignoring = lineStarting('ignoring SIGTERM');
    const attempt = pools.run(pool, await jobFor('IgnoreTerm'), ignoring.hooks, controller.signal);
    await ignoring.seen;
    controller.abort('cancel');
    expect(await attempt.report).toMatchObject({ outcome: 'aborted', reason: 'cancel', signal: 'SIGKILL' });
    expect(attempt.lines).toContain('stdout: SIGTERM ignored');
  });

  it('leaves no grandchild behind when a try is stopped', async () => {
    const pool = pools.create({ maxTasksPerChild: Infinity });
    const controller = new AbortController();
    const started = lineStarting('grandchild pid=');
    const attempt = pools.run(pool, await jobFor('Grandchild'), started.hooks, controller.signal);
    const grandchild = Number(await started.seen);
    pools.tracker.add(grandchild);
    expect(isAlive(grandchild)).toBe(true);
    controller.abort('timeout');
    expect(await attempt.report).toMatchObject({ outcome: 'aborted', reason: 'timeout' });
    await waitForExit(grandchild, 5_000);
  });

  it('never starts a queued try that is aborted', async () => {
    const pool = pools.create({ concurrency: 1 });
    const asleep = lineStarting('sleeping pid=');
    const first = pools.run(pool, await jobFor('Sleep', { ms: 60_000 }), asleep.hooks);
    await asleep.seen;
    const controller = new AbortController();
    const queued = pools.run(pool, await jobFor('Echo', { text: 'never' }), {}, controller.signal);
    controller.abort('cancel');
    expect(await queued.report).toMatchObject({ outcome: 'aborted', reason: 'cancel', pid: null });
    expect(queued.start()).toBeNull();
    await pool.close();
    expect(await first.report).toMatchObject({ outcome: 'crashed' });
  });
});
