import { describe, expect, it } from 'vitest';
import { useChaosCluster } from './helpers/cluster.js';
import { insertWork, waitAllEnded } from './helpers/ledger.js';
import { report, scale } from './helpers/summary.js';

/**
 * In every pool mode, a task that kills its own process on every try (its thread, in thread mode)
 * runs among normal tasks: it is parked after `crashLimit` crashes, the others all finish once,
 * and the launcher's resident memory afterwards is within 20% of what it was before.
 */
const cluster = useChaosCluster();
const tasks = scale(1_000, 60);
// The baseline is taken once the launcher is warm (children, threads, statement caches, JIT).
// Threads are warmed with the full count even in the quick variant: with 30 tasks not every
// thread had started and grown its heap, and a baseline taken then read 38% low.
const warmUpOf = (mode: string): number => (mode === 'thread' ? 300 : scale(300, 30));
const killers = 5;
const crashLimit = 3;

const modes: Record<string, Record<string, unknown>> = {
  fresh: { spareChildren: 0, maxTasksPerChild: 1 },
  spare: { spareChildren: 2, maxTasksPerChild: 1 },
  reused: { spareChildren: 1, maxTasksPerChild: Number.MAX_SAFE_INTEGER },
  thread: { defaultMode: 'thread', threads: { maxThreads: 4 } },
};
const results: Record<string, unknown> = {};

describe('a task that kills its own process', () => {
  for (const [mode, options] of Object.entries(modes)) {
    it(`${mode}: parked after ${crashLimit} crashes among ${tasks} tasks; the rest finish; RSS holds`, async () => {
      const { pool } = cluster.server;
      await cluster.reset();
      const launcher = cluster.launcher(`selfkill-${mode}`, { ...options, concurrency: 4, crashLimit });
      await launcher.start();
      // Warm up (children, threads, compiled code), then the baseline.
      await insertWork(pool, warmUpOf(mode));
      await waitAllEnded(pool);
      const before = await launcher.memory();
      await insertWork(pool, tasks / 2);
      await insertWork(pool, killers, { task: 'ChaosKillSelf', tryLimit: 10 });
      await insertWork(pool, tasks / 2);
      await waitAllEnded(pool);
      const after = await launcher.memory();
      expect(await launcher.stop()).toBe(0);

      const { rows: killed } = await pool.query(
        `SELECT result, tries, crashes FROM task_runner_requests WHERE task_class_name = 'ChaosKillSelf'`,
      );
      const { rows: work } = await pool.query(`SELECT count(*)::int AS n,
          count(*) FILTER (WHERE result = 'FINISHED' AND tries = 1)::int AS once
        FROM task_runner_requests WHERE task_class_name = 'ChaosWork'`);
      const { rows: ledger } = await pool.query(
        `SELECT count(*)::int AS starts, count(DISTINCT request_id)::int AS requests FROM chaos_ledger WHERE event = 'start'`,
      );
      const change = (after.rss - before.rss) / before.rss;
      const mb = (bytes: number): number => +(bytes / 1048576).toFixed(1);
      results[mode] = {
        rssBeforeMb: mb(before.rss),
        rssAfterMb: mb(after.rss),
        heapBeforeMb: mb(before.heapUsed),
        heapAfterMb: mb(after.heapUsed),
        rssChangePercent: +(change * 100).toFixed(1),
        parked: killed.filter((k) => k.result === 'PARKED').length,
        killerTries: killed.map((k) => k.tries),
        finishedOnce: work[0].once,
        of: work[0].n,
      };
      report('selfKiller', { tasks, killers, crashLimit, modes: results });

      expect(killed).toEqual(
        Array.from({ length: killers }, () => ({ result: 'PARKED', tries: crashLimit, crashes: crashLimit })),
      );
      expect(work[0]).toEqual({ n: tasks + warmUpOf(mode), once: tasks + warmUpOf(mode) });
      expect(ledger[0]).toEqual({ starts: tasks + warmUpOf(mode), requests: tasks + warmUpOf(mode) });
      // Growth is what would show a leak. Less memory after is no fault: in thread mode the killed
      // threads are replaced on demand, so fewer may be alive at the end than after the warm-up
      // (153 MB before, 89 MB after in one quick run).
      expect(change).toBeLessThanOrEqual(0.2);
    });
  }
});
