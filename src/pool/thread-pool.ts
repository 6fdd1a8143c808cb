import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { describeError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import {
  abortReasonOf, notStartedReport, type AttemptHooks, type AttemptJob, type AttemptReport, type AttemptUsage, type TaskPool,
} from './attempt.js';
import type { RunMessage } from './protocol.js';
import { abortedReport, answerReport, crashedReport } from './thread-report.js';

export interface ThreadPoolParams {
  /** Threads alive at once; further runs queue. */
  maxThreads: number;
  /** An idle thread is ended after this long. */
  idleTimeoutMs: number;
  /** V8 limits of each thread, MiB; null leaves V8's own. */
  resourceLimits: {
    maxOldGenerationSizeMb: number | null;
    maxYoungGenerationSizeMb: number | null;
    stackSizeMb: number | null;
  };
  /** The threads' `process.env` (never the launcher's). */
  env: Readonly<Record<string, string>>;
  /** Reported as every thread-mode try's pid: threads live in the launcher. */
  launcherPid: number;
  launcherIdentity: string | null;
  logger: Logger;
}

/** After a thread died or was terminated, how long to wait for its exit before reporting anyway. */
const threadExitWaitMs = 5_000;

const threadEntry = fileURLToPath(new URL('./runtime/thread-entry.js', import.meta.url));

/**
 * The key under which a task object carries its {@link Attempt} to the load balancer. Piscina
 * hands the balancer this one property of a task (it is meant for custom queues); structured
 * cloning drops symbol keys, so the attempt never travels to the thread.
 */
const attemptKey: symbol = Piscina.queueOptionsSymbol;

type Balancer = NonNullable<NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']>;

/** One try, from `run()` to its report. */
interface Attempt {
  readonly job: AttemptJob;
  readonly hooks: AttemptHooks;
  readonly signal: AbortSignal;
  readonly resolve: (report: AttemptReport) => void;
  readonly onAbort: () => void;
  /** Piscina's signal for the try: follows `signal`, and fires alone when no thread can start. */
  controller: AbortController | null;
  /** Why no thread could take the try, when that is why it was aborted. */
  bootFailure: { error: unknown } | null;
  /** Set when piscina hands the try to a thread. */
  threadId: number | null;
  startedAt: Date | null;
  startReported: boolean;
  /** The thread's exit code once it has exited under this try; undefined while it runs. */
  exitCode: number | undefined;
  /** What the thread threw outside the task (its 'error' event), if it did. */
  uncaught: { error: unknown } | null;
  onExit: (() => void) | null;
}

/**
 * Runs tries in worker threads of the launcher (piscina), at most `maxThreads` at once; threads
 * are reused and an idle one ends after `idleTimeoutMs`.
 *
 * Tries wait in this pool's own queue rather than piscina's, so `busy` is exact, a queued try is
 * aborted without touching piscina, and piscina only ever holds tries a thread can take now.
 *
 * Which thread took a try is learnt from piscina's load balancer: it is asked to pick a thread
 * for each try and is given the try's attempt (see {@link attemptKey}), so `onStart` costs no
 * message at all. It fires as the try is posted to its thread, just before the thread runs it.
 *
 * What a try writes to stdout and stderr is caught in its thread (capped at 64 KiB) and passed to
 * `onOutput` when the try reports; a thread that dies takes its try's output with it, so crash
 * reports carry an empty `stderrTail`.
 *
 * @example
 * const pool = new ThreadPool({ maxThreads: 4, idleTimeoutMs: 30_000, env: {}, ... });
 * const report = await pool.run(job, { onStart: (s) => record(s.threadId) }, AbortSignal.timeout(5_000));
 */
export class ThreadPool implements TaskPool {
  readonly #params: ThreadPoolParams;
  readonly #piscina: Piscina;
  /** Tries waiting for a thread, oldest first. */
  readonly #queued = new Set<Attempt>();
  /** Tries handed to piscina and not yet reported. */
  readonly #running = new Set<Attempt>();
  /** The try each thread runs now, by thread id. */
  readonly #onThread = new Map<number, Attempt>();
  /** Threads whose exit is listened for. */
  readonly #watched = new Set<number>();
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(params: ThreadPoolParams) {
    this.#params = params;
    this.#piscina = new Piscina({
      filename: threadEntry,
      minThreads: 0,
      maxThreads: params.maxThreads,
      idleTimeout: params.idleTimeoutMs,
      concurrentTasksPerWorker: 1,
      resourceLimits: resourceLimitsOf(params.resourceLimits),
      env: { ...params.env },
      loadBalancer: this.#pickThread,
      recordTiming: false,
      // Between tries a thread waits on its event loop, not blocked in Atomics.wait: what a try
      // left running (a timer, a promise) then settles or fails while the thread is idle, instead
      // of waking inside the next try and being blamed on it. Throughput was the same either way
      // in a no-op benchmark on two threads (run-to-run noise was larger than any difference).
      atomics: 'disabled',
    });
    // A thread that failed while running no try: one that could not boot, or an idle one hit by
    // what an earlier try left behind. Without a listener this event would throw in the launcher.
    this.#piscina.on('error', (error: unknown) => this.#threadFailed(error));
  }

  /** Tries running or queued. */
  get busy(): number {
    return this.#running.size + this.#queued.size;
  }

  /** Ids of the threads alive now. */
  get threadIds(): number[] {
    return this.#piscina.threads.map((worker) => worker.threadId).filter((id) => id >= 0);
  }

  run(job: AttemptJob, hooks: AttemptHooks, signal: AbortSignal): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => {
      if (this.#closed) {
        resolve(notStartedReport('pool closed: the try was not started'));
        return;
      }
      if (signal.aborted) {
        resolve(abortedReport(abortReasonOf(signal), this.#usage(null)));
        return;
      }
      const attempt: Attempt = {
        job,
        hooks,
        signal,
        resolve,
        onAbort: () => {
          // A queued try is ours to drop; a running one is piscina's to stop (it terminates the thread).
          if (this.#queued.delete(attempt)) this.#dequeued(attempt, abortReasonOf(signal));
          else attempt.controller?.abort(signal.reason);
        },
        controller: null,
        bootFailure: null,
        threadId: null,
        startedAt: null,
        startReported: false,
        exitCode: undefined,
        uncaught: null,
        onExit: null,
      };
      signal.addEventListener('abort', attempt.onAbort, { once: true });
      if (this.#running.size < this.#params.maxThreads) this.#start(attempt);
      else this.#queued.add(attempt);
    });
  }

  /** Resolves true once nothing runs or waits, or false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.busy === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Aborts every try (reason `shutdown`), ends every thread; later runs report crashed. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    for (const attempt of [...this.#queued]) {
      this.#queued.delete(attempt);
      this.#dequeued(attempt, 'shutdown');
    }
    // Destroying rejects the running tries (reported aborted, reason shutdown) and waits for
    // every thread to exit.
    await this.#piscina.destroy();
    await this.drain(threadExitWaitMs);
  }

  #threadFailed(error: unknown): void {
    this.#params.logger.warn('a worker thread failed outside any task', { error: describeError(error) });
    // Tries wait in piscina only for a thread being started. If every such thread failed to boot,
    // piscina starts no other for them and they would wait for ever: they fail instead.
    if (this.#piscina.threads.length > 0) return;
    for (const attempt of this.#running) {
      if (attempt.threadId !== null || attempt.controller === null) continue;
      attempt.bootFailure = { error };
      attempt.controller.abort('no thread could start');
    }
  }

  #start(attempt: Attempt): void {
    this.#running.add(attempt);
    attempt.controller = new AbortController();
    const { job } = attempt;
    const task: RunMessage & { [attemptKey]: Attempt } = {
      type: 'run',
      request: job.request,
      file: job.file,
      options: job.options,
      maxOptionsBytes: job.maxOptionsBytes,
      maxResultBytes: job.maxResultBytes,
      [attemptKey]: attempt,
    };
    let answer: Promise<unknown>;
    try {
      answer = this.#piscina.run(task, { signal: attempt.controller.signal });
    } catch (error) {
      answer = Promise.reject(error); // run() must never reject, whatever piscina does
    }
    answer.then(
      (value: unknown) => this.#settle(attempt, answerReport(value, this.#usage(attempt), attempt.hooks.onOutput)),
      (error: unknown) => void this.#failed(attempt, error),
    );
  }

  /** Piscina's load balancer: the first thread with nothing to do takes the try. */
  readonly #pickThread: Balancer = (task, workers) => {
    for (const worker of workers) {
      if (worker.currentUsage !== 0 || worker.terminating || worker.destroyed) continue;
      const attempt = (task as unknown as Record<symbol, Attempt | undefined>)[attemptKey];
      if (attempt !== undefined) this.#placed(attempt, worker.id);
      return worker;
    }
    return null;
  };

  #placed(attempt: Attempt, threadId: number): void {
    attempt.threadId = threadId;
    attempt.startedAt = new Date();
    this.#onThread.set(threadId, attempt);
    this.#watchThread(threadId);
    // Never call out from inside piscina's dispatch: the hook runs once it has returned.
    queueMicrotask(() => this.#reportStart(attempt));
  }

  /**
   * Listens once per thread for its death, so a try that dies with its thread learns how. These
   * listeners run after piscina's, in the same emit, so they are recorded by the time the try's
   * rejection is handled (a microtask later). An 'error' and the 'exit' after it can arrive in
   * one go, which is why the cause is told by the 'error' event, not by which came first.
   */
  #watchThread(threadId: number): void {
    if (this.#watched.has(threadId)) return;
    const worker: Worker | undefined = this.#piscina.threads.find((w) => w.threadId === threadId);
    if (worker === undefined) return;
    this.#watched.add(threadId);
    worker.on('error', (error: unknown) => {
      const attempt = this.#onThread.get(threadId);
      if (attempt !== undefined) attempt.uncaught ??= { error };
    });
    worker.once('exit', (code: number) => {
      this.#watched.delete(threadId);
      const attempt = this.#onThread.get(threadId);
      if (attempt === undefined) return;
      attempt.exitCode = code;
      attempt.onExit?.();
    });
  }

  #reportStart(attempt: Attempt): void {
    if (attempt.startReported || attempt.threadId === null) return;
    attempt.startReported = true;
    try {
      attempt.hooks.onStart?.({
        pid: this.#params.launcherPid,
        processIdentity: this.#params.launcherIdentity,
        threadId: attempt.threadId,
        mode: 'thread',
        startedAt: attempt.startedAt ?? new Date(),
      });
    } catch (error) {
      this.#params.logger.error('onStart hook threw', { error: describeError(error) });
    }
  }

  /** Piscina rejected the try: aborted, the pool closed, or the thread died. */
  async #failed(attempt: Attempt, error: unknown): Promise<void> {
    // A thread that died or is being terminated is waited for (its exit code, and a slot held
    // until it is gone, so `busy` never undercounts live threads). Any other rejection leaves
    // the thread as it was.
    const ending = attempt.uncaught !== null || attempt.controller?.signal.aborted === true || this.#closed;
    if (ending && attempt.threadId !== null && this.#watched.has(attempt.threadId)) await this.#threadExit(attempt);
    const usage = this.#usage(attempt);
    let report: AttemptReport;
    if (attempt.signal.aborted) report = abortedReport(abortReasonOf(attempt.signal), usage);
    else if (this.#closed) report = abortedReport('shutdown', usage);
    else if (attempt.bootFailure !== null) report = notStartedReport(`no worker thread could start: ${describeError(attempt.bootFailure.error)}`);
    else report = crashedReport({ uncaught: attempt.uncaught, exitCode: attempt.exitCode ?? null, rejection: error }, usage);
    this.#settle(attempt, report);
  }

  #threadExit(attempt: Attempt): Promise<void> {
    if (attempt.exitCode !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, threadExitWaitMs);
      attempt.onExit = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  #settle(attempt: Attempt, report: AttemptReport): void {
    attempt.signal.removeEventListener('abort', attempt.onAbort);
    if (attempt.threadId !== null && this.#onThread.get(attempt.threadId) === attempt) this.#onThread.delete(attempt.threadId);
    // onStart always precedes the report, even when the answer beat the start microtask.
    this.#reportStart(attempt);
    this.#running.delete(attempt);
    attempt.resolve(report);
    this.#next();
  }

  /** A queued try leaves the queue without running. */
  #dequeued(attempt: Attempt, reason: 'timeout' | 'cancel' | 'shutdown'): void {
    attempt.signal.removeEventListener('abort', attempt.onAbort);
    attempt.resolve(abortedReport(reason, this.#usage(null)));
    this.#next();
  }

  /** Starts queued tries while threads are free; wakes drain() once nothing is left. */
  #next(): void {
    while (!this.#closed && this.#running.size < this.#params.maxThreads && this.#queued.size > 0) {
      const attempt = this.#queued.values().next().value as Attempt;
      this.#queued.delete(attempt);
      this.#start(attempt);
    }
    if (this.busy === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #usage(attempt: Attempt | null): AttemptUsage {
    const threadId = attempt?.threadId ?? null;
    return { pid: threadId === null ? null : this.#params.launcherPid, threadId, peakMemoryBytes: null };
  }
}

function resourceLimitsOf(limits: ThreadPoolParams['resourceLimits']): NonNullable<ConstructorParameters<typeof Piscina>[0]>['resourceLimits'] {
  const result: Record<string, number> = {};
  if (limits.maxOldGenerationSizeMb !== null) result.maxOldGenerationSizeMb = limits.maxOldGenerationSizeMb;
  if (limits.maxYoungGenerationSizeMb !== null) result.maxYoungGenerationSizeMb = limits.maxYoungGenerationSizeMb;
  if (limits.stackSizeMb !== null) result.stackSizeMb = limits.stackSizeMb;
  return result;
}
