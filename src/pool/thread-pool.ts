import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { describeError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import {
  abortReasonOf, notStartedReport, type AbortReason, type AttemptHooks, type AttemptJob, type AttemptReport, type AttemptUsage, type TaskPool,
} from './attempt.js';
import type { RunMessage } from './protocol.js';
import { abortedReport, answerReport, crashedReport } from './thread-report.js';
import { endProcesses, ThreadSlots } from './thread-slots.js';

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
  /** How often running tries are checked for having started, to report `onStart`. Default 20 ms. */
  startCheckMs?: number;
}

const threadEntry = fileURLToPath(new URL('./runtime/thread-entry.js', import.meta.url));

/** Why a try handed to piscina was taken back. */
type Recall = AbortReason | 'no thread';

/**
 * The abort handle piscina is given for one try. Piscina accepts an AbortSignal or an
 * EventEmitter; this is the smallest emitter it can use (it calls `once` and `removeListener`),
 * much cheaper per try than an AbortController.
 */
class Recaller {
  aborted = false;
  reason: Recall | undefined;
  #listener: (() => void) | null = null;

  once(_event: 'abort', listener: () => void): void {
    this.#listener = listener;
  }

  removeListener(): void {
    this.#listener = null;
  }

  recall(reason: Recall): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.#listener;
    this.#listener = null;
    listener?.();
  }
}

/** One try, from `run()` to its report. */
interface Attempt {
  readonly job: AttemptJob;
  readonly hooks: AttemptHooks;
  readonly resolve: (report: AttemptReport) => void;
  readonly signal: AbortSignal | undefined;
  readonly onSignal: (() => void) | undefined;
  /** Its shared slot once handed to piscina; -1 while queued. */
  slot: number;
  recaller: Recaller | null;
  /** Why no thread could take the try, when that is why it was recalled. */
  bootFailure: unknown;
  threadId: number | null;
  startReported: boolean;
}

/**
 * Runs tries in worker threads of the launcher (piscina), at most `maxThreads` at once; threads
 * are reused and an idle one ends after `idleTimeoutMs`.
 *
 * Tries wait in this pool's own queue rather than piscina's, so `busy` is exact, a queued try is
 * aborted without touching piscina, and piscina only holds tries a thread can take now.
 *
 * Where a try runs is learnt from its shared slot (thread-slots.ts), not from a message: the
 * thread writes its id and start time there when it begins the try. `onStart` is called when a
 * check finds it there (every `startCheckMs` while tries run) or just before the report,
 * whichever comes first, so a short try costs no start message at all.
 *
 * What a try writes to stdout and stderr is caught in its thread (capped at 64 KiB) and passed to
 * `onOutput` when the try reports; a thread that dies takes its try's output with it.
 *
 * Uses piscina's public API only: `run` with an abort emitter, `destroy`, `threads`, and its
 * 'error' event.
 */
export class ThreadPool implements TaskPool {
  readonly #params: ThreadPoolParams;
  readonly #piscina: Piscina;
  readonly #slots: ThreadSlots;
  readonly #freeSlots: number[];
  /** Tries waiting for a thread, oldest first. */
  readonly #queued = new Set<Attempt>();
  /** Tries handed to piscina and not yet reported. */
  readonly #running = new Set<Attempt>();
  readonly #byJob = new Map<AttemptJob, Attempt>();
  #startTimer: NodeJS.Timeout | null = null;
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(params: ThreadPoolParams) {
    this.#params = params;
    this.#slots = ThreadSlots.create(params.maxThreads);
    this.#freeSlots = Array.from({ length: params.maxThreads }, (_, i) => params.maxThreads - 1 - i);
    this.#piscina = new Piscina({
      filename: threadEntry,
      minThreads: 0,
      maxThreads: params.maxThreads,
      idleTimeout: params.idleTimeoutMs,
      concurrentTasksPerWorker: 1,
      resourceLimits: resourceLimitsOf(params.resourceLimits),
      env: { ...params.env },
      workerData: { slots: this.#slots.data },
      recordTiming: false,
      // Between tries a thread waits on its event loop, not blocked in Atomics.wait: what a try
      // left running (a timer, a promise) then settles or fails while the thread is idle, instead
      // of waking inside the next try and being blamed on it.
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

  run(job: AttemptJob, hooks: AttemptHooks = {}, signal?: AbortSignal): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => {
      if (this.#closed) {
        resolve(notStartedReport('pool closed: the try was not started'));
        return;
      }
      if (signal?.aborted === true) {
        resolve(abortedReport(abortReasonOf(signal), this.#usage(null)));
        return;
      }
      const attempt: Attempt = {
        job,
        hooks,
        resolve,
        signal,
        onSignal: signal === undefined ? undefined : () => void this.abort(job, abortReasonOf(signal)),
        slot: -1,
        recaller: null,
        bootFailure: null,
        threadId: null,
        startReported: false,
      };
      if (signal !== undefined) signal.addEventListener('abort', attempt.onSignal!, { once: true });
      this.#byJob.set(job, attempt);
      if (this.#running.size < this.#params.maxThreads) this.#start(attempt);
      else this.#queued.add(attempt);
    });
  }

  abort(job: AttemptJob, reason: AbortReason): boolean {
    const attempt = this.#byJob.get(job);
    if (attempt === undefined) return false;
    // A queued try is ours to drop; a running one is piscina's to stop (it terminates the thread).
    if (this.#queued.delete(attempt)) this.#dequeued(attempt, reason);
    else attempt.recaller?.recall(reason);
    return true;
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
    await this.drain(5_000);
    this.#stopStartChecks();
  }

  #threadFailed(error: unknown): void {
    this.#params.logger.warn('a worker thread failed outside any task', { error: describeError(error) });
    // Tries wait in piscina only for a thread being started. If every such thread failed to boot,
    // piscina starts no other for them and they would wait for ever: they fail instead.
    if (this.#piscina.threads.length > 0) return;
    for (const attempt of this.#running) {
      if (attempt.recaller === null || this.#slots.started(attempt.slot) !== null) continue;
      attempt.bootFailure = error;
      attempt.recaller.recall('no thread');
    }
  }

  #start(attempt: Attempt): void {
    this.#running.add(attempt);
    attempt.slot = this.#freeSlots.pop()!;
    attempt.recaller = new Recaller();
    const { job } = attempt;
    const run: RunMessage = {
      type: 'run',
      request: job.request,
      file: job.file,
      options: job.options,
      maxOptionsBytes: job.maxOptionsBytes,
      maxResultBytes: job.maxResultBytes,
    };
    let answer: Promise<unknown>;
    try {
      answer = this.#piscina.run({ slot: attempt.slot, run }, { signal: attempt.recaller as never });
    } catch (error) {
      answer = Promise.reject(error); // run() must never reject, whatever piscina does
    }
    answer.then(
      (value: unknown) => {
        this.#checkStart(attempt);
        this.#settle(attempt, answerReport(value, this.#usage(attempt), job, attempt.hooks.onOutput));
      },
      (error: unknown) => this.#failed(attempt, error),
    );
    this.#startChecks();
  }

  /** Reports `onStart` for a try its thread has begun, once. */
  #checkStart(attempt: Attempt): void {
    if (attempt.startReported || attempt.slot < 0) return;
    const started = this.#slots.started(attempt.slot);
    if (started === null) return;
    attempt.startReported = true;
    attempt.threadId = started.threadId;
    try {
      attempt.hooks.onStart?.(
        {
          pid: this.#params.launcherPid,
          processIdentity: this.#params.launcherIdentity,
          threadId: started.threadId,
          mode: 'thread',
          startedAt: new Date(started.atMs),
          startedAtMs: started.atMs,
        },
        attempt.job,
      );
    } catch (error) {
      this.#params.logger.error('onStart hook threw', { error: describeError(error) });
    }
  }

  #startChecks(): void {
    if (this.#startTimer !== null) return;
    this.#startTimer = setInterval(() => {
      for (const attempt of this.#running) this.#checkStart(attempt);
      if (this.#running.size === 0) this.#stopStartChecks();
    }, this.#params.startCheckMs ?? 20);
    this.#startTimer.unref();
  }

  #stopStartChecks(): void {
    if (this.#startTimer !== null) clearInterval(this.#startTimer);
    this.#startTimer = null;
  }

  /** Piscina rejected the try: recalled (aborted, or no thread could start), the pool closed, or the thread died. */
  #failed(attempt: Attempt, error: unknown): void {
    this.#checkStart(attempt);
    const usage = this.#usage(attempt);
    const recalled = attempt.recaller?.reason;
    let report: AttemptReport;
    if (recalled === 'no thread') report = notStartedReport(`no worker thread could start: ${describeError(attempt.bootFailure)}`);
    else if (recalled !== undefined) report = abortedReport(recalled, usage);
    else if (this.#closed) report = abortedReport('shutdown', usage);
    else report = crashedReport(error, usage);
    // The thread is gone or going: what the try started goes with it.
    endProcesses(this.#slots.processes(attempt.slot));
    this.#settle(attempt, report);
  }

  #settle(attempt: Attempt, report: AttemptReport): void {
    if (attempt.onSignal !== undefined) attempt.signal!.removeEventListener('abort', attempt.onSignal);
    this.#byJob.delete(attempt.job);
    this.#slots.clear(attempt.slot);
    this.#freeSlots.push(attempt.slot);
    attempt.slot = -1;
    this.#running.delete(attempt);
    attempt.resolve(report);
    this.#next();
  }

  /** A queued try leaves the queue without running. */
  #dequeued(attempt: Attempt, reason: AbortReason): void {
    if (attempt.onSignal !== undefined) attempt.signal!.removeEventListener('abort', attempt.onSignal);
    this.#byJob.delete(attempt.job);
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
