/**
 * Fork pools for the pool tests: small timings, a clean child environment; every pool is closed
 * after each test, and every child a try ran in must be gone by then.
 */
import { afterEach } from 'vitest';
import { silentLogger } from '../../dist/shared/logger.js';
import type { AttemptHooks, AttemptJob, AttemptReport, AttemptStart } from '../../dist/pool/attempt.js';
import { ForkPool, type ForkPoolParams } from '../../dist/pool/fork-pool.js';
import { childEnv } from './jobs.js';
import { PidTracker } from './processes.js';

export interface PoolAttempt {
  report: Promise<AttemptReport>;
  /** `stream: line` for each output line of the try. */
  lines: string[];
  start(): AttemptStart | null;
}

export interface TestPools {
  create(params?: Partial<ForkPoolParams>): ForkPool;
  /** Runs a job, tracking its pid and collecting its output lines. */
  run(pool: ForkPool, job: AttemptJob, hooks?: AttemptHooks, signal?: AbortSignal): PoolAttempt;
  tracker: PidTracker;
}

export function useTestPools(): TestPools {
  const tracker = new PidTracker();
  const pools: ForkPool[] = [];
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.close()));
    await tracker.expectAllGone();
  });
  return {
    tracker,
    create(params = {}) {
      const pool = new ForkPool({
        concurrency: 2,
        spareChildren: 0,
        maxTasksPerChild: 1,
        maxRssBytes: null,
        idleMs: 30_000,
        env: childEnv,
        execArgv: [],
        killTimeoutMs: 1_000,
        logger: silentLogger,
        ...params,
      });
      pools.push(pool);
      return pool;
    },
    run(pool, job, hooks = {}, signal = new AbortController().signal) {
      const lines: string[] = [];
      let start: AttemptStart | null = null;
      const report = pool.run(
        job,
        {
          onStart: (s, started) => {
            start = s;
            tracker.add(s.pid);
            hooks.onStart?.(s, started);
          },
          onOutput: (stream, line, from) => {
            lines.push(`${stream}: ${line}`);
            hooks.onOutput?.(stream, line, from);
          },
        },
        signal,
      );
      return { report, lines, start: () => start };
    },
  };
}
