import type { RunnerConfig, TaskMode } from '../config/runner-config.js';
import type {
  AbortReason,
  AttemptHooks,
  AttemptJob,
  AttemptMode,
  AttemptReport,
  AttemptStart,
  TaskPool,
} from '../pool/attempt.js';
import type { Logger } from '../shared/logger.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { AppliedOutcome, AttemptOutcome, AttemptStartRecord, ClaimedRow } from '../store/request-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { heldOutcome, reportedOutcome, unstartedOutcome, type HeldEnding } from './attempt-outcome.js';
import type { RunnerEvents } from './events.js';
import { LeaseClock } from './lease-clock.js';
import { LeaseFence, toMonotonicMs } from './lease-fence.js';
import { LocalQueue } from './local-queue.js';
import { TryPreparer, type PreparedTry, type RefusedTry, type TraitsSource } from './try-preparation.js';

/** A claimed request this launcher is working on. */
export interface RunningRequest {
  id: string;
  taskClassName: string;
  tries: number;
  /** The child's pid once it runs (the launcher's own in thread mode); null before. */
  pid: number | null;
  threadId: number | null;
  mode: AttemptMode | null;
  startedAt: Date;
}

/** Where ended and started tries are written (the launch loop). */
export interface TryRecords {
  addOutcome(outcome: AttemptOutcome): void;
  addStart(start: AttemptStartRecord): void;
  dropStart(id: string): boolean;
  /** Outcomes not yet written. */
  readonly unwritten: number;
  /** Something changed: a claim may be wanted. */
  kick(): void;
}

export interface DispatcherParams {
  /** Child processes: the default. */
  processPool: TaskPool;
  /** Worker threads, created on first use. */
  threadPool(): TaskPool;
  traits: TraitsSource;
  registry: TaskRegistry;
  config: RunnerConfig;
  events: TypedEmitter<RunnerEvents>;
  /** A try's slot was held this long (for the claim policy). */
  onTryEnded(durationMs: number): void;
  /**
   * Fenced tries whose row another launcher recovered meanwhile (so their outcome is not this
   * launcher's to write): their history row, written by that recovery, is told what happened.
   */
  onFencedElsewhere?(notes: readonly FencedNote[]): void;
}

/** A fenced try of a row this launcher no longer holds, for its history row. */
export interface FencedNote {
  id: string;
  tries: number;
  pid: number | null;
  startedAtMs: number | null;
  text: string;
}

/** One try from its claim to its written outcome. */
interface Entry {
  readonly row: ClaimedRow;
  job: AttemptJob | null;
  pool: TaskPool | null;
  start: AttemptStart | null;
  /** `performance.now()` when its slot was taken. */
  since: number;
  timeoutMs: number | null;
  timer: NodeJS.Timeout | null;
  startWritten: boolean;
  startTold: boolean;
  /** What it ended with, once it has. */
  outcome: AttemptOutcome | null;
  /** Its row was recovered elsewhere (lease lost): stopped, and nothing is written for it. */
  lost: boolean;
  /** Its lease deadline passed unconfirmed: ended by its child or by the fence (lease-fence.ts). */
  fenced: boolean;
  /** Its row's pid was cleared by hand: stopped, and written RESCHEDULED (unless it ended first). */
  wiped: boolean;
}

/** A try's entry as its slot is taken (every field set, in one order: one shape for all entries). */
function newEntry(row: ClaimedRow, startTold: boolean, outcome: AttemptOutcome | null): Entry {
  return {
    row,
    job: null,
    pool: null,
    start: null,
    since: performance.now(),
    timeoutMs: null,
    timer: null,
    startWritten: false,
    startTold,
    outcome,
    lost: false,
    wiped: false,
    fenced: false,
  };
}

/**
 * Outcomes allowed to wait for their write before no new try starts: while the database is
 * unreachable, tries go on until this many wait, then the launcher waits with them.
 */
const unwrittenPerSlot = 50;

/**
 * Carries claimed rows through their tries. Rows claimed to start at once start at once; the
 * rest wait in the local queue and start as slots free. A try's slot is held from its start until
 * it ends, and freed then: its outcome is handed to the launch loop, which writes it with the
 * next statement, so no round trip stands between one try and the next. Where a try runs (its
 * pid, or thread) is handed over the same way once it has started.
 *
 * The counts live here: tries running (at most `concurrency`), rows held in the local queue (as
 * the claim policy allows), and outcomes not yet written (at most 50 per slot; past that, nothing
 * new starts until the database takes them). Each try is stopped through the pool's `abort`: its
 * hard timeout, a cancel, shutdown and a lost lease are the one path. A held row starts only
 * while its lease is known to hold (a claim or a renewal less than `leaseMs` ago), and a renewal
 * that no longer finds a row this launcher holds stops its try (see `leaseRenewed`): a launcher
 * that wakes after its lease ran out (frozen, or cut off) stops the tries another launcher has
 * taken over and starts none of the rows it held. Events are told from what the statements
 * wrote: `task:started` once the start is in the row (or just before `task:completed`, for a try
 * that ended before its start was written), `task:completed` with the row's state as the
 * statement that wrote the outcome returned it.
 */
export class Dispatcher {
  readonly #p: DispatcherParams;
  readonly #logger: Logger;
  readonly #queue = new LocalQueue();
  readonly #running = new Map<string, Entry>();
  readonly #byJob = new Map<AttemptJob, Entry>();
  /** Ended tries whose outcome is being written, by request id. */
  readonly #writing = new Map<string, Entry>();
  readonly #hooks: AttemptHooks;
  /**
   * Set when shutdown gives the held rows back: rows that a claim still in flight then brings are
   * given back as they come, never started (the statement carrying the claim may have waited
   * behind a lock, or a slow commit, past the moment the held rows were released).
   */
  #releasing = false;
  #records: TryRecords | null = null;
  #threadPool: TaskPool | null = null;
  #idleWaiters: (() => void)[] = [];
  readonly #lease: LeaseClock;
  readonly #fence: LeaseFence;
  readonly #preparer: TryPreparer;

  constructor(params: DispatcherParams) {
    this.#p = params;
    this.#logger = params.config.logger;
    this.#lease = new LeaseClock(params.config.leaseMs);
    this.#fence = new LeaseFence({
      clock: this.#lease,
      logger: this.#logger,
      running: () => this.#running.values(),
      fence: (tries) => this.#fenceTries(tries as Entry[]),
    });
    this.#preparer = new TryPreparer({ config: params.config, registry: params.registry, traits: params.traits });
    // One hooks object for every try: a try costs no closures.
    this.#hooks = {
      onStart: (start, job) => this.#started(job, start),
      onOutput: (stream, line, job) => this.#output(job, stream, line),
    };
  }

  /** Where outcomes and starts go; set once, before the first row is accepted. */
  set records(records: TryRecords) {
    this.#records = records;
  }

  /** Tries running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Rows held in the local queue. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Outcomes of ended tries not yet written. */
  get unwritten(): number {
    return this.#records?.unwritten ?? 0;
  }

  /** True while so many outcomes wait for their write that no new try may start. */
  get blocked(): boolean {
    return this.unwritten >= unwrittenPerSlot * this.#p.config.concurrency;
  }

  /** Tries queued or running in the pools. */
  get poolBusy(): number {
    return this.#p.processPool.busy + (this.#threadPool?.busy ?? 0);
  }

  list(): RunningRequest[] {
    return [...this.#running.values()].map((entry) => ({
      id: entry.row.id,
      taskClassName: entry.row.taskClassName ?? '',
      tries: entry.row.tries,
      pid: entry.start?.pid ?? null,
      threadId: entry.start?.threadId ?? null,
      mode: entry.start?.mode ?? null,
      startedAt: entry.start?.startedAt ?? new Date(performance.timeOrigin + entry.since),
    }));
  }

  /** Rows a claim brought: those claimed to start now start, the rest are queued. */
  accept(rows: readonly ClaimedRow[]): void {
    if (rows.length === 0) return;
    this.#p.events.emit('task:claimed', { ids: rows.map((row) => row.id) });
    if (this.#releasing) {
      for (const row of rows) this.#release(row);
      return;
    }
    const now = performance.now();
    for (const row of rows) {
      // A claim whose answer came late (after a cut healed) may bring rows whose lease lapsed:
      // they wait for a renewal to say whether they are still ours, like held rows.
      if (row.startNow && this.#lease.holds(row, now)) this.#start(row);
      else this.#queue.push(row);
    }
    this.#fill();
  }

  /**
   * Stops the try of request `id` if it is here: a queued one ends CANCELLED without starting, a
   * running one is stopped and recorded CANCELLED. True if it was here.
   */
  cancel(id: string): boolean {
    const held = this.#queue.remove(id);
    if (held !== undefined) {
      this.#notRun(held, 'cancelled');
      return true;
    }
    const entry = this.#running.get(id);
    if (entry === undefined) return false;
    this.#logger.warn('cancelling a running task', { id, pid: entry.start?.pid ?? '' });
    this.#abort(entry, 'cancel');
    return true;
  }

  /**
   * A lease renewal sent at `sentAt` extended the rows in `renewed`. A row claimed before then
   * that is missing was taken from this launcher: its lease ran out (the process was frozen, or
   * cut off from the database, for longer than `leaseMs`) and another launcher recovered it, and
   * may be running it. A held one is dropped unstarted; a running one is stopped at once, so the
   * work does not go on under two launchers. Nothing is written for either: the row is not ours.
   * Returns the ids of both.
   */
  leaseRenewed(renewed: readonly string[], sentAt: number): { stopped: string[]; dropped: string[] } {
    // Deadlines that passed before this answer came stay passed: those tries were fenced.
    this.#fence.fenceDue();
    this.#lease.renewed(sentAt);
    const ours = new Set(renewed);
    const claimedBefore = (row: ClaimedRow): boolean => this.#lease.claimedBefore(row, sentAt);
    const dropped: string[] = [];
    for (const row of this.#queue.drain()) {
      if (!ours.has(row.id) && claimedBefore(row)) dropped.push(row.id);
      else this.#queue.push(row);
    }
    const stopped: string[] = [];
    for (const entry of [...this.#running.values()]) {
      if (ours.has(entry.row.id) || !claimedBefore(entry.row)) continue;
      stopped.push(entry.row.id);
      entry.lost = true;
      if (entry.job !== null) this.#abort(entry, 'shutdown');
      else this.#endedUnstarted(entry, 'lease lost before it started');
    }
    if (dropped.length + stopped.length > 0) {
      this.#logger.warn(
        "lease lost: these rows are no longer this launcher's (recovered elsewhere after its lease ran out); " +
          'their tries are stopped and nothing is written for them',
        { running: stopped.join(','), held: dropped.join(',') },
      );
    }
    // The tries still ours get their new deadline: their children keep their own timers.
    for (const entry of this.#running.values()) {
      if (entry.lost || entry.fenced || entry.job === null) continue;
      entry.job.fenceAtMs = toMonotonicMs(this.#lease.fenceAt(entry.row));
      entry.pool?.extendFence?.(entry.job);
    }
    this.#fence.renewed();
    this.#fill();
    return { stopped, dropped };
  }

  /** A lease renewal failed: said once per streak; the fence does the rest at each deadline. */
  leaseRenewalFailed(error: Error): void {
    this.#fence.failed(error);
  }

  /**
   * A lease renewal found these rows of this launcher with their pid cleared by hand (the Rails plugin's
   * way to reschedule). The row's lease keeps every other launcher from claiming it until this one
   * has finished with it: a held row is dropped from the local queue and given back
   * (RESCHEDULED, the try refunded); a running try is stopped (its process group ended, or its
   * thread) and written RESCHEDULED once it has stopped, which releases the row. A try whose
   * outcome is already on its way keeps it. Returns the ids this launcher has nothing for (no
   * try, no outcome): the caller releases those rows.
   */
  rescheduled(ids: readonly string[]): string[] {
    const unknown: string[] = [];
    const held: string[] = [];
    const stopping: string[] = [];
    for (const id of ids) {
      const row = this.#queue.remove(id);
      if (row !== undefined) {
        held.push(id);
        this.#notRun(row, 'rescheduled');
        continue;
      }
      const entry = this.#running.get(id);
      if (entry !== undefined) {
        if (entry.wiped || entry.lost) continue;
        entry.wiped = true;
        stopping.push(id);
        if (entry.job !== null) this.#abort(entry, 'shutdown');
        else this.#endedUnstarted(entry, 'stopped before it started');
        continue;
      }
      if (!this.#writing.has(id)) unknown.push(id);
    }
    if (held.length + stopping.length > 0) {
      this.#logger.warn('pid cleared by hand: rescheduling these rows, stopping their tries first', {
        running: stopping.join(','),
        held: held.join(','),
      });
    }
    this.#fill();
    return unknown;
  }

  /**
   * Gives every queued row back (shutdown): released untried, runnable at once; so are the rows
   * of any claim that returns from now on.
   */
  releaseQueued(): number {
    this.#releasing = true;
    const rows = this.#queue.drain();
    for (const row of rows) this.#release(row);
    return rows.length;
  }

  #release(row: ClaimedRow): void {
    this.#notRun(row, 'released');
  }

  /** Resolves true once no try runs, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.#running.size === 0) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Stops every running try; their rows are released as INTERRUPTED with the try given back. */
  async interrupt(): Promise<void> {
    for (const entry of this.#running.values()) this.#abort(entry, 'shutdown');
    await this.drain(60_000);
  }

  /** Ends the pools (after `drain` or `interrupt`). */
  async close(): Promise<void> {
    this.#fence.close();
    await Promise.all([this.#p.processPool.close(), this.#threadPool?.close()]);
  }

  /** The launch loop wrote these outcomes (`stale`: not written, the row is no longer ours). */
  recorded(applied: readonly AppliedOutcome[], stale: readonly AttemptOutcome[]): void {
    // Fewer outcomes wait now: if that many had stopped new tries, held rows start again here, as
    // nothing else would start them (no try is running to end, and a claim waits for the queue).
    this.#fill();
    for (const written of applied) {
      const entry = this.#writing.get(written.id);
      if (entry === undefined) continue;
      this.#writing.delete(written.id);
      this.#tellStarted(entry);
      this.#completed(entry, written);
    }
    const notes: FencedNote[] = [];
    for (const outcome of stale) {
      const entry = this.#writing.get(outcome.id);
      if (entry?.fenced === true) notes.push(this.#fencedNote(entry));
      this.#writing.delete(outcome.id);
      this.#logger.warn(
        "outcome not recorded: the row is no longer this launcher's (recovered by another launcher or the probe)",
        {
          id: outcome.id,
          try: outcome.tries,
          result: outcome.result,
        },
      );
    }
    if (notes.length > 0) this.#p.onFencedElsewhere?.(notes);
  }

  /** The launch loop wrote the starts of these tries. */
  startsRecorded(ids: ReadonlySet<string>): void {
    for (const id of ids) {
      const entry = this.#running.get(id);
      if (entry === undefined) continue;
      entry.startWritten = true;
      this.#tellStarted(entry);
    }
  }

  /** An outcome that could not be stored at all: its row keeps its pid until shutdown or a probe. */
  gaveUp(outcome: AttemptOutcome, error: Error): void {
    this.#writing.delete(outcome.id);
    this.#logger.error('outcome could not be stored; the row stays claimed until this launcher stops', {
      id: outcome.id,
      try: outcome.tries,
      result: outcome.result,
      error: error.message,
    });
  }

  #pool(mode: TaskMode): TaskPool {
    if (mode === 'process') return this.#p.processPool;
    this.#threadPool ??= this.#p.threadPool();
    return this.#threadPool;
  }

  /** Starts queued rows while slots are free and outcomes are not piling up. */
  #fill(): void {
    const { concurrency } = this.#p.config;
    while (this.#running.size < concurrency && !this.blocked) {
      const row = this.#queue.peek();
      if (row === undefined) break;
      // A held row whose lease may have run out (no renewal confirmed it within leaseMs) may be
      // another launcher's by now: it waits for the next renewal to say (see leaseRenewed).
      if (!this.#lease.holds(row, performance.now())) break;
      this.#queue.shift();
      this.#start(row);
    }
  }

  #start(row: ClaimedRow): void {
    const entry = newEntry(row, false, null);
    this.#running.set(row.id, entry);
    this.#fence.started(row);
    const prepared = this.#preparer.prepare(row);
    if (prepared instanceof Promise) void prepared.then((ready) => this.#run(entry, ready));
    else this.#run(entry, prepared);
  }

  #run(entry: Entry, prepared: PreparedTry | RefusedTry): void {
    if (this.#running.get(entry.row.id) !== entry) return;
    if ('refused' in prepared) {
      this.#ended(entry, prepared.refused);
      return;
    }
    if (entry.fenced) {
      this.#endedUnstarted(entry, 'its lease deadline passed before the try started');
      return;
    }
    const { job } = prepared;
    job.fenceAtMs = toMonotonicMs(this.#lease.fenceAt(entry.row));
    const pool = this.#pool(prepared.mode);
    entry.timeoutMs = prepared.timeoutMs;
    entry.job = job;
    entry.pool = pool;
    this.#byJob.set(job, entry);
    void pool.run(job, this.#hooks).then((report) => {
      this.#byJob.delete(job);
      this.#reported(entry, report);
    });
  }

  #started(job: AttemptJob, start: AttemptStart): void {
    const entry = this.#byJob.get(job);
    if (entry === undefined) return;
    entry.start = start;
    const { timeoutMs } = entry;
    if (timeoutMs !== null) {
      entry.timer = setTimeout(() => {
        this.#logger.warn('hard timeout reached: stopping the task', { id: entry.row.id, timeoutMs });
        this.#abort(entry, 'timeout');
      }, timeoutMs);
    }
    this.#records!.addStart({
      id: entry.row.id,
      tries: entry.row.tries,
      pid: start.pid,
      processIdentity: start.processIdentity,
      threadId: start.threadId,
      startedAtMs: start.startedAtMs,
    });
  }

  #output(job: AttemptJob, stream: 'stdout' | 'stderr', line: string): void {
    const id = job.request.id;
    this.#logger[this.#p.config.taskLogLevel](`[task ${id} ${stream}] ${line}`);
    this.#p.events.emit('task:output', { id, stream, line });
  }

  #abort(entry: Entry, reason: AbortReason): void {
    if (entry.job !== null && entry.pool !== null) entry.pool.abort(entry.job, reason);
  }

  /** A try's pool reported how it ended. */
  #reported(entry: Entry, report: AttemptReport): void {
    // A child that ended itself at its deadline reports as killed: that was the fence.
    if (!entry.fenced && (report.outcome === 'crashed' || report.outcome === 'aborted') && this.#pastFence(entry)) {
      entry.fenced = true;
    }
    this.#ended(entry, reportedOutcome(entry, report));
  }

  /** A try stopped before any pool had it (still being prepared): `text` says what stopped it. */
  #endedUnstarted(entry: Entry, text: string): void {
    if (!entry.fenced && this.#pastFence(entry)) entry.fenced = true;
    this.#ended(entry, unstartedOutcome(entry, text));
  }

  #pastFence(entry: Entry): boolean {
    return performance.now() >= this.#lease.fenceAt(entry.row);
  }

  /**
   * A try ended (or could not start): its slot is free, its outcome goes to be written; a lost
   * try's is not (its row is another launcher's), and names only its fence, if it was fenced.
   */
  #ended(entry: Entry, outcome: AttemptOutcome): void {
    const { row } = entry;
    if (entry.timer !== null) clearTimeout(entry.timer);
    if (this.#running.get(row.id) === entry) this.#running.delete(row.id);
    this.#p.onTryEnded(performance.now() - entry.since);
    const records = this.#records!;
    if (!entry.startWritten) records.dropStart(row.id);
    entry.outcome = outcome;
    if (entry.lost) {
      if (entry.fenced) this.#p.onFencedElsewhere?.([this.#fencedNote(entry)]);
      this.#fill();
      records.kick();
      this.#wakeIdleWaiters();
      return;
    }
    if (outcome.result !== 'FINISHED') {
      const log =
        outcome.result === 'INTERRUPTED' || outcome.result === 'RESCHEDULED' ? this.#logger.warn : this.#logger.error;
      log(`task ${row.taskClassName ?? '(no task)'} ${outcome.result}`, {
        id: row.id,
        try: row.tries,
        text: outcome.resultText ?? '',
      });
    }
    this.#writing.set(row.id, entry);
    records.addOutcome(outcome);
    this.#fill();
    records.kick();
    this.#wakeIdleWaiters();
  }

  /** Ends tries whose lease deadline passed (their children end themselves too). */
  #fenceTries(entries: readonly Entry[]): void {
    for (const entry of entries) {
      entry.fenced = true;
      // One still being prepared is ended when it would start (see #run).
      if (entry.job !== null) this.#abort(entry, 'lease');
    }
  }

  #fencedNote(entry: Entry): FencedNote {
    const text = entry.outcome?.resultText ?? 'lease lost: fenced by its launcher: ';
    return {
      id: entry.row.id,
      tries: entry.row.tries,
      pid: entry.start?.pid ?? null,
      startedAtMs: entry.start?.startedAtMs ?? null,
      text,
    };
  }

  #wakeIdleWaiters(): void {
    if (this.#running.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  /** A claimed row that ends without a try (cancelled while queued, released at shutdown, rescheduled). */
  #notRun(row: ClaimedRow, why: HeldEnding): void {
    const entry = newEntry(row, true, heldOutcome(row, why));
    this.#writing.set(row.id, entry);
    this.#records!.addOutcome(entry.outcome!);
  }

  #tellStarted(entry: Entry): void {
    if (entry.startTold || entry.start === null) return;
    entry.startTold = true;
    const { row, start } = entry;
    this.#p.events.emit('task:started', {
      id: row.id,
      taskClassName: row.taskClassName ?? '',
      tries: row.tries,
      pid: start.pid,
      threadId: start.threadId,
      mode: start.mode,
      startedAtMs: start.startedAtMs,
      runnableAtMs: row.runnableAtMs,
      traceparent: row.traceparent,
    });
  }

  #completed(entry: Entry, written: AppliedOutcome): void {
    const { row } = entry;
    const outcome = entry.outcome!;
    this.#p.events.emit('task:completed', {
      id: row.id,
      taskClassName: row.taskClassName ?? '',
      tries: row.tries,
      result: outcome.result,
      resultText: outcome.resultText,
      ended: written.ended,
      parked: written.result === 'PARKED',
      requestResult: written.ended ? written.result : null,
    });
  }
}
