import type { Piscina } from 'piscina';
import { describeError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import {
  abortReasonOf,
  type AbortReason,
  type AttemptHooks,
  type AttemptJob,
  type AttemptReport,
  type AttemptUsage,
  type TaskPool,
} from './attempt.js';
import { batchEntry, decodeBatchResult, type BatchEntry, type ThreadBatch } from './thread-batch.js';
import { createPiscina, Recaller, type PiscinaParams } from './thread-piscina.js';
import { notStartedReport } from './reports.js';
import { answerReport, threadAbortedReport, threadCrashedReport } from './thread-report.js';
import { endProcesses, ThreadSlots } from './thread-slots.js';
import type { TryGroups } from './try-cgroup.js';

export interface ThreadPoolParams extends PiscinaParams {
  /** Reported as every thread-mode try's pid: threads live in the launcher. */
  launcherPid: number;
  launcherIdentity: string | null;
  logger: Logger;
  /** How often running tries are checked for having started, to report `onStart`. Default 20 ms. */
  startCheckMs?: number;
  /** Control groups for the processes tries start (see runtime/thread-cgroup.ts); null or omitted: none. */
  tryGroups?: TryGroups | null;
}

/**
 * Most tries one thread is handed at once. A batch costs one message and one wake-up of the
 * thread; waking a sleeping thread costs the launcher's main thread more than the rest of a no-op
 * try's dispatch.
 */
const maxBatch = 8;
/** A try waiting in a batch behind one that has run this long moves to an idle thread. */
const moveAfterMs = 10;
/** A try whose thread ends before reaching it goes back to the queue this often, then fails. */
const maxRequeues = 3;

/** Tries handed to one thread as one piscina task. */
interface Batch {
  readonly attempts: Attempt[];
  readonly recaller: Recaller;
  /** Why no thread could take the batch, when that is why it was recalled. */
  bootFailure: unknown;
}

/** One try, from `run()` to its report. */
interface Attempt {
  readonly job: AttemptJob;
  readonly hooks: AttemptHooks;
  readonly resolve: (report: AttemptReport) => void;
  readonly signal: AbortSignal | undefined;
  readonly onSignal: (() => void) | undefined;
  /** The batch holding it, while it is in one; null while queued. */
  batch: Batch | null;
  /** Its shared slot and ticket while in a batch; -1 otherwise. */
  slot: number;
  ticket: number;
  /** Why the pool was asked to stop it, once asked. */
  abortReason: AbortReason | null;
  /** Times its thread ended before reaching it. */
  requeues: number;
  threadId: number | null;
  startReported: boolean;
}

/**
 * Runs tries in worker threads of the launcher (piscina), at most `maxThreads` at once; threads
 * are reused and an idle one ends after `idleTimeoutMs`.
 *
 * Tries wait in this pool's own queue, oldest first. Once per turn of the event loop the queue is
 * dealt to the threads that have nothing to do, round robin, at most {@link maxBatch} tries each
 * (a try that finds every thread idle is dealt at once, for the pickup latency of a quiet pool):
 * a thread runs its batch in order (see runtime/thread-entry.ts), so the oldest tries start first
 * as they would one by one, and under load one message and one wake-up of a thread serve several
 * tries. Piscina only ever holds batches a thread can take now.
 *
 * A try waiting in a batch has not started: it can be aborted, or moved to a thread with nothing
 * to do when the try ahead of it has run for {@link moveAfterMs}, by taking it back through its
 * shared slot (thread-slots.ts), without disturbing the thread. A running try is stopped by
 * ending its thread (piscina's abort); the tries behind it go back to the queue, uncounted.
 *
 * Where a try runs is learnt from its shared slot, not from a message: the thread writes its id
 * and start time there when it begins the try. `onStart` is called when a check finds it there
 * (every `startCheckMs` while tries run) or just before the report, whichever comes first, so a
 * short try costs no start message at all. Each try's result comes as soon as it ends, posted by
 * its thread on its parent port (thread-batch.ts).
 *
 * What a try writes to stdout and stderr is caught in its thread (capped at 64 KiB) and passed to
 * `onOutput` when the try reports; a thread that dies takes its try's output with it.
 *
 * Uses piscina's public API only: `run` with an abort emitter, `destroy`, `threads`, and its
 * 'message' and 'error' events.
 */
export class ThreadPool implements TaskPool {
  readonly #params: ThreadPoolParams;
  readonly #piscina: Piscina;
  readonly #slots: ThreadSlots;
  readonly #freeSlots: number[];
  /** The try holding each slot. */
  readonly #bySlot: (Attempt | null)[];
  /** Tries waiting for a thread, oldest first. */
  #queued: Attempt[] = [];
  /** Batches handed to piscina and not yet answered: at most one per thread. */
  readonly #batches = new Set<Batch>();
  /** Tries in a batch and not yet reported. */
  readonly #running = new Set<Attempt>();
  readonly #byJob = new Map<AttemptJob, Attempt>();
  #dealPending = false;
  #startTimer: NodeJS.Timeout | null = null;
  #idleWaiters: (() => void)[] = [];
  #closed = false;
  #closing: Promise<void> | null = null;

  constructor(params: ThreadPoolParams) {
    this.#params = params;
    // Twice what the batches in flight can hold: tries of an answered batch keep their slots until
    // their results (on another channel) arrive.
    const slotCount = 2 * params.maxThreads * maxBatch;
    this.#slots = ThreadSlots.create(slotCount);
    this.#freeSlots = Array.from({ length: slotCount }, (_, i) => slotCount - 1 - i);
    this.#bySlot = Array.from({ length: slotCount }, () => null);
    this.#piscina = createPiscina(params, { slots: this.#slots.data, cgroup: params.tryGroups?.threadData ?? null });
    // What threads post on their parent port: each try's result as it ends.
    this.#piscina.on('message', (data: unknown) => this.#onResult(data));
    // A thread that failed while running no try: one that could not boot, or an idle one hit by
    // what an earlier try left behind. Without a listener this event would throw in the launcher.
    this.#piscina.on('error', (error: unknown) => this.#threadFailed(error));
  }

  /** Tries running or queued. */
  get busy(): number {
    return this.#running.size + this.#queued.length;
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
        resolve(threadAbortedReport(abortReasonOf(signal), this.#usage(null)));
        return;
      }
      const attempt: Attempt = {
        job,
        hooks,
        resolve,
        signal,
        onSignal: signal === undefined ? undefined : () => void this.abort(job, abortReasonOf(signal)),
        batch: null,
        slot: -1,
        ticket: 0,
        abortReason: null,
        requeues: 0,
        threadId: null,
        startReported: false,
      };
      if (signal !== undefined) signal.addEventListener('abort', attempt.onSignal!, { once: true });
      this.#byJob.set(job, attempt);
      this.#queued.push(attempt);
      // With every thread idle nothing is gained by waiting for more: the try starts now.
      if (this.#batches.size === 0 && !this.#dealPending) this.#deal();
      else this.#dealSoon();
    });
  }

  abort(job: AttemptJob, reason: AbortReason): boolean {
    const attempt = this.#byJob.get(job);
    if (attempt === undefined) return false;
    if (attempt.batch === null) {
      // Queued: ours to drop.
      this.#queued = this.#queued.filter((queued) => queued !== attempt);
      this.#settle(attempt, threadAbortedReport(reason, this.#usage(null)));
    } else if (this.#takeBack(attempt)) {
      this.#settle(attempt, threadAbortedReport(reason, this.#usage(null)));
    } else if (!this.#slots.finished(attempt.slot)) {
      // Running: piscina stops it by terminating its thread. A finished one's result is on its way.
      attempt.abortReason = reason;
      attempt.batch.recaller.recall(reason);
    }
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
    const notStarted = [...this.#queued, ...[...this.#running].filter((attempt) => this.#takeBack(attempt))];
    this.#queued = [];
    for (const attempt of notStarted) this.#settle(attempt, threadAbortedReport('shutdown', this.#usage(null)));
    // Destroying rejects the running batches (their running tries are reported aborted, reason
    // shutdown) and waits for every thread to exit; results already posted still arrive.
    await this.#piscina.destroy();
    await this.drain(5_000);
    this.#stopStartChecks();
  }

  #threadFailed(error: unknown): void {
    this.#params.logger.warn('a worker thread failed outside any task', { error: describeError(error) });
    // Batches wait in piscina only for a thread being started. If every such thread failed to
    // boot, piscina starts no other for them and they would wait for ever: they fail instead.
    if (this.#piscina.threads.length > 0) return;
    for (const batch of this.#batches) {
      if (batch.attempts.some((attempt) => attempt.batch === batch && this.#slots.started(attempt.slot) !== null))
        continue;
      batch.bootFailure = error;
      batch.recaller.recall('no thread');
    }
  }

  /** Deals the queue to idle threads once this turn of the event loop is over. */
  #dealSoon(): void {
    if (this.#dealPending || this.#closed) return;
    this.#dealPending = true;
    setImmediate(() => {
      this.#dealPending = false;
      this.#deal();
    });
  }

  #deal(): void {
    const idle = this.#params.maxThreads - this.#batches.size;
    if (this.#closed || idle <= 0 || this.#queued.length === 0) return;
    const count = Math.min(this.#queued.length, idle * maxBatch, this.#freeSlots.length);
    if (count === 0) return; // every slot waits for a result: dealt again as they come
    const parts: Attempt[][] = Array.from({ length: Math.min(idle, count) }, () => []);
    for (let i = 0; i < count; i++) parts[i % parts.length]!.push(this.#queued[i]!);
    this.#queued = this.#queued.slice(count);
    for (const part of parts) this.#send(part);
    this.#startChecks();
  }

  #send(attempts: Attempt[]): void {
    const batch: Batch = { attempts, recaller: new Recaller(), bootFailure: null };
    const entries: BatchEntry[] = [];
    for (const attempt of attempts) {
      const slot = this.#freeSlots.pop()!;
      attempt.batch = batch;
      attempt.slot = slot;
      attempt.ticket = this.#slots.assign(slot);
      this.#bySlot[slot] = attempt;
      this.#running.add(attempt);
      entries.push(batchEntry(slot, attempt.ticket, attempt.job));
    }
    this.#batches.add(batch);
    const task: ThreadBatch = { entries };
    let answer: Promise<unknown>;
    try {
      answer = this.#piscina.run(task, { signal: batch.recaller as never });
    } catch (error) {
      answer = Promise.reject(error); // run() must never reject, whatever piscina does
    }
    answer.then(
      () => this.#batchEnded(batch, null),
      (error: unknown) => this.#batchEnded(batch, error),
    );
  }

  /** A try's result, posted by its thread. */
  #onResult(data: unknown): void {
    const message = decodeBatchResult(data);
    if (message === null) return;
    const attempt = this.#bySlot[message.slot];
    if (attempt === undefined || attempt === null || attempt.ticket !== message.ticket) return;
    this.#checkStart(attempt);
    this.#settle(attempt, answerReport(message.result, this.#usage(attempt), attempt.job, attempt.hooks.onOutput));
  }

  /**
   * Piscina answered a batch (`error` null: the thread went through it) or rejected it: recalled
   * (a try aborted, or no thread could start), the pool closed, or the thread died. Tries that
   * posted their result are settled by it; the one running when the thread ended is reported;
   * those it never reached go back to the queue, or end with the pool.
   */
  #batchEnded(batch: Batch, error: unknown): void {
    this.#batches.delete(batch);
    const requeued: Attempt[] = [];
    for (const attempt of batch.attempts) {
      if (attempt.batch !== batch || this.#slots.finished(attempt.slot)) continue; // reported, taken back, or on its way
      if (this.#takeBack(attempt)) {
        if (batch.recaller.reason === 'no thread') {
          this.#settle(attempt, notStartedReport(`no worker thread could start: ${describeError(batch.bootFailure)}`));
        } else if (this.#closed) this.#settle(attempt, threadAbortedReport('shutdown', this.#usage(null)));
        else if (++attempt.requeues > maxRequeues) {
          this.#settle(
            attempt,
            notStartedReport(
              `its thread ended before starting it, ${maxRequeues + 1} times; last: ${describeError(error)}`,
            ),
          );
        } else requeued.push(attempt);
        continue;
      }
      this.#checkStart(attempt);
      const usage = this.#usage(attempt);
      let report: AttemptReport;
      if (attempt.abortReason !== null) {
        report = threadAbortedReport(attempt.abortReason, usage);
      } else if (this.#closed) {
        report = threadAbortedReport('shutdown', usage);
      } else if (error === null) {
        report = threadCrashedReport(new Error('its thread answered without reporting it'), usage);
      } else if (batch.recaller.reason !== undefined) {
        const why = `its thread was ended to stop the try before it (${batch.recaller.reason})`;
        report = threadCrashedReport(new Error(why), usage);
      } else {
        report = threadCrashedReport(error, usage);
      }
      // The thread is gone or going: what the try started goes with it.
      endProcesses(this.#slots.processes(attempt.slot));
      this.#params.tryGroups?.endThreadTry(attempt.slot, attempt.ticket);
      this.#settle(attempt, report);
    }
    this.#queued = [...requeued, ...this.#queued];
    this.#rebalance();
    this.#next();
  }

  /** Takes a try in a batch back before its thread starts it: true when it was not started. */
  #takeBack(attempt: Attempt): boolean {
    if (attempt.batch === null || !this.#slots.withdraw(attempt.slot, attempt.ticket)) return false;
    this.#release(attempt);
    return true;
  }

  /** Frees a try's slot; a thread with a stale ticket can no longer start anything in it. */
  #release(attempt: Attempt): void {
    if (attempt.slot < 0) return;
    this.#slots.clear(attempt.slot);
    this.#bySlot[attempt.slot] = null;
    this.#freeSlots.push(attempt.slot);
    this.#running.delete(attempt);
    attempt.batch = null;
    attempt.slot = -1;
  }

  /**
   * With a thread idle and nothing queued, tries waiting behind one that has run for
   * `moveAfterMs` are taken back, to be dealt to the idle thread.
   */
  #rebalance(): void {
    if (this.#closed || this.#queued.length > 0 || this.#batches.size >= this.#params.maxThreads) return;
    const now = performance.timeOrigin + performance.now();
    const moved: Attempt[] = [];
    for (const batch of this.#batches) {
      let stuck = false;
      for (const attempt of batch.attempts) {
        if (attempt.batch !== batch) continue;
        const started = this.#slots.started(attempt.slot);
        if (started !== null) stuck = !this.#slots.finished(attempt.slot) && now - started.atMs >= moveAfterMs;
        else if (stuck && this.#takeBack(attempt)) moved.push(attempt);
      }
    }
    if (moved.length === 0) return;
    this.#queued.push(...moved);
    this.#dealSoon();
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
      this.#rebalance();
      if (this.#running.size === 0) this.#stopStartChecks();
    }, this.#params.startCheckMs ?? 20);
    this.#startTimer.unref();
  }

  #stopStartChecks(): void {
    if (this.#startTimer !== null) clearInterval(this.#startTimer);
    this.#startTimer = null;
  }

  #settle(attempt: Attempt, report: AttemptReport): void {
    if (attempt.onSignal !== undefined) attempt.signal!.removeEventListener('abort', attempt.onSignal);
    this.#byJob.delete(attempt.job);
    this.#release(attempt);
    attempt.resolve(report);
    this.#next();
  }

  /** Deals queued tries to idle threads; wakes drain() once nothing is left. */
  #next(): void {
    if (this.#queued.length > 0 && this.#batches.size < this.#params.maxThreads) this.#dealSoon();
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
