/**
 * Runners for tests: small timings, a clean child environment, the fixture tasks; and a check
 * after each test that every runner created was stopped and no child it started still runs.
 */
import { afterEach, expect } from 'vitest';
import { createRunner, type CreateRunnerOptions, type Runner, type RunnerEvents } from '../../dist/index.js';
import type { TestDatabase } from './db.js';
import { childEnv, fixturesDir } from './jobs.js';
import { PidTracker } from './processes.js';

export interface TestRunners {
  /** A runner over `t` (not started), with test timings unless overridden. */
  create(t: Pick<TestDatabase, 'url'>, overrides?: Partial<CreateRunnerOptions>): Runner;
  /** Creates and starts a runner. */
  start(t: Pick<TestDatabase, 'url'>, overrides?: Partial<CreateRunnerOptions>): Promise<Runner>;
  /** Every `task:completed` payload seen by `runner`, in order. */
  completions(runner: Runner): RunnerEvents['task:completed'][];
  /**
   * The `task:started` of request `id`, whether it came before this call or comes within
   * `timeoutMs`: events are recorded from the runner's creation, so a task that starts before
   * the test gets to wait for it is not missed.
   */
  started(runner: Runner, id: string, timeoutMs?: number): Promise<RunnerEvents['task:started']>;
  /** Every `error` payload seen by `runner`. */
  errors(runner: Runner): RunnerEvents['error'][];
}

/**
 * Call once at the top of a test file. Registers an afterEach that stops forgotten runners
 * (failing the test) and fails the test if any child a runner started is still alive.
 */
export function useTestRunners(): TestRunners {
  const live = new Set<Runner>();
  const stopped = new WeakSet<Runner>();
  const completed = new WeakMap<Runner, RunnerEvents['task:completed'][]>();
  const failed = new WeakMap<Runner, RunnerEvents['error'][]>();
  const starts = new WeakMap<Runner, Map<string, RunnerEvents['task:started']>>();
  const tracker = new PidTracker();

  afterEach(async (context) => {
    const forgotten = [...live].filter((runner) => !stopped.has(runner));
    live.clear();
    await Promise.all(forgotten.map((runner) => runner.stop().catch(() => undefined)));
    await tracker.expectAllGone();
    // A test that failed midway did not reach its stop(): that is not a second failure.
    if (context.task.result?.state !== 'fail') {
      expect(forgotten.length, 'runners left running by the test').toBe(0);
    }
  });

  const create = (t: Pick<TestDatabase, 'url'>, overrides: Partial<CreateRunnerOptions> = {}): Runner => {
    const runner = createRunner({
      db: t.url,
      tasksDir: fixturesDir,
      concurrency: 2,
      pollIntervalMs: 200,
      retryBackoff: { baseMs: 20, maxMs: 200 },
      probeIntervalMs: 60_000,
      shutdownGraceMs: 300,
      killTimeoutMs: 300,
      childEnv,
      childExecArgv: [],
      ...overrides,
    });
    const stop = runner.stop.bind(runner);
    runner.stop = async () => {
      await stop();
      stopped.add(runner);
    };
    const completions: RunnerEvents['task:completed'][] = [];
    const errors: RunnerEvents['error'][] = [];
    completed.set(runner, completions);
    recordedCompletions.set(runner, completions);
    failed.set(runner, errors);
    const startedById = new Map<string, RunnerEvents['task:started']>();
    starts.set(runner, startedById);
    runner.events.on('task:started', (payload) => {
      // A thread's pid is the launcher's own: only child processes are tracked.
      if (payload.threadId === null) tracker.add(payload.pid);
      startedById.set(payload.id, payload);
    });
    runner.events.on('task:completed', (payload) => completions.push(payload));
    runner.events.on('error', (payload) => errors.push(payload));
    live.add(runner);
    return runner;
  };

  return {
    create,
    async start(t, overrides) {
      const runner = create(t, overrides);
      await runner.start();
      return runner;
    },
    completions: (runner) => completed.get(runner) ?? [],
    errors: (runner) => failed.get(runner) ?? [],
    started(runner, id, timeoutMs = 15_000) {
      const seen = starts.get(runner)?.get(id);
      return seen !== undefined
        ? Promise.resolve(seen)
        : runner.events.waitFor('task:started', (e) => e.id === id, timeoutMs);
    },
  };
}

/** Every `task:completed` of runners made by `useTestRunners`, recorded from their creation. */
const recordedCompletions = new WeakMap<Runner, RunnerEvents['task:completed'][]>();

/**
 * The last `task:completed` of request `id` (the one that ends it), whether it came before this
 * call or comes within `timeoutMs`: a `task:started` and the `task:completed` after it may come in
 * one go, before a test that waited for the first gets to wait for the second.
 */
export function finalCompletion(
  runner: Runner,
  id: string,
  timeoutMs = 20_000,
): Promise<RunnerEvents['task:completed']> {
  const seen = recordedCompletions.get(runner)?.find((e) => e.id === id && e.ended);
  return seen !== undefined
    ? Promise.resolve(seen)
    : runner.events.waitFor('task:completed', (e) => e.id === id && e.ended, timeoutMs);
}
