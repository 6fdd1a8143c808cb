import pLimit, { type LimitFunction } from 'p-limit';
import type { ChildConfinement } from '../config/confinement.js';
import type { Logger } from '../shared/logger.js';
import type { AbortReason, AttemptHooks, AttemptJob, AttemptMode, AttemptReport, TaskPool } from './attempt.js';
import { abortReasonOf, startMoment } from './attempt.js';
import { ChildHandle } from './child-handle.js';
import { abortedBeforeStartReport, notStartedReport } from './reports.js';
import { childRuntimeEntry } from './runtime-entry.js';
import type { TryGroups } from './try-cgroup.js';
import { settleAll } from '../shared/settle-all.js';

export interface ForkPoolParams {
  /** Tries running at once; further runs queue. */
  concurrency: number;
  /** Children kept booted and waiting beyond the busy ones. */
  spareChildren: number;
  /** Tasks one child runs before it is replaced (1: a fresh process per task; Infinity allowed). */
  maxTasksPerChild: number;
  /** A child whose resident memory is above this after a task is replaced; null: no ceiling. */
  maxRssBytes: number | null;
  /** An idle child beyond `spareChildren` is ended after this long. */
  idleMs: number;
  /** Children's environment. */
  env: Readonly<Record<string, string>>;
  /** Children's Node arguments. */
  execArgv: readonly string[];
  killTimeoutMs: number;
  /** The largest result a task may return (the channel refuses lines far beyond it). Default 1 MiB. */
  maxResultBytes?: number;
  logger: Logger;
  /**
   * User, limits and permission policy of every child (spares included); null: plain children.
   * A try whose job carries another confinement gets a child of its own, used once.
   */
  confinement?: ChildConfinement | null;
  /** What the runtime must read under a permission policy: the package and the tasks directory. */
  readable?: readonly string[];
  /** Control groups for the children (each in one of its own); null or omitted: none. */
  tryGroups?: TryGroups | null;
}

const defaultMaxResultBytes = 1024 * 1024;
/** Spares that die before they are ready are respawned after this, doubling up to the max. */
const spareRetryMs = { base: 1_000, max: 60_000 };

/**
 * Why a child was ended after a try rather than given another: it ran `maxTasksPerChild` tries
 * (with the default of 1, every try), its memory crossed `maxRssBytes`, or its try did not end
 * cleanly (crashed, killed, timed out) so the process is not trusted again.
 */
export type ChildRecycleReason = 'tasks' | 'memory' | 'ended';

type Acquired = { child: ChildHandle; mode: AttemptMode } | { failure: string };

/** A try from `run()` to its report. */
interface RunState {
  settled: boolean;
  /** The child it was given, once acquired. */
  child: ChildHandle | null;
  /** True once the child runs it: aborting is the child's business from then on. */
  running: boolean;
  /** An abort that came between acquiring the child and running the try. */
  abortReason: AbortReason | null;
  finish(report: AttemptReport): void;
}

/**
 * Runs tries in forked children, at most `concurrency` at once. By default each try gets a child
 * of its own (the Rails plugin's isolation); `spareChildren` keeps children booted ahead of need, and
 * `maxTasksPerChild` lets a child run several tries one after another, replaced when it reaches
 * the count or its memory crosses `maxRssBytes`. A child is handed a try only once it reported
 * ready. A slot is held until the try's child is idle again or has exited, so the cap counts live
 * working processes.
 */
export class ForkPool implements TaskPool {
  readonly #p: ForkPoolParams;
  /** The child runtime's script, chosen once per pool. */
  readonly #entry = childRuntimeEntry();
  readonly #limit: LimitFunction;
  readonly #children = new Set<ChildHandle>();
  /** Ready children with no task, most recently used last. */
  readonly #idle: ChildHandle[] = [];
  /** Spares still booting, not yet taken by a try. */
  readonly #booting = new Set<ChildHandle>();
  readonly #idleTimers = new Map<ChildHandle, NodeJS.Timeout>();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #runs = new Map<AttemptJob, RunState>();
  #startFailures = 0;
  readonly #recycles: Record<ChildRecycleReason, number> = { tasks: 0, memory: 0, ended: 0 };
  #sparesPausedUntil = 0;
  #spareTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(params: ForkPoolParams) {
    this.#p = params;
    this.#limit = pLimit(params.concurrency);
  }

  get busy(): number {
    return this.#limit.activeCount + this.#limit.pendingCount;
  }

  get freeSlots(): number {
    return Math.max(0, this.#p.concurrency - this.busy);
  }

  /** Pids of the children alive now, busy or idle. */
  get pids(): number[] {
    return [...this.#children].map((child) => child.pid).filter((pid): pid is number => pid !== null);
  }

  /** Children ended after a try instead of being reused, by reason, since the pool was made. */
  get recycles(): Readonly<Record<ChildRecycleReason, number>> {
    return { ...this.#recycles };
  }

  /** Boots the spare children now instead of at the first try. */
  warm(): void {
    this.#topUpSpares();
  }

  run(job: AttemptJob, hooks: AttemptHooks = {}, signal?: AbortSignal): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => {
      const onAbort = (): void => void this.abort(job, abortReasonOf(signal!));
      const state: RunState = {
        settled: false,
        child: null,
        running: false,
        abortReason: null,
        finish: (report) => {
          if (state.settled) return;
          state.settled = true;
          this.#runs.delete(job);
          signal?.removeEventListener('abort', onAbort);
          resolve(report);
        },
      };
      this.#runs.set(job, state);
      if (signal !== undefined) {
        signal.addEventListener('abort', onAbort);
        if (signal.aborted) onAbort();
      }
      const work = this.#limit(async () => {
        if (state.settled) return;
        if (this.#closed) {
          state.finish(notStartedReport('pool closed before the task started'));
          return;
        }
        const acquired = await this.#acquire(job.confinement);
        if ('failure' in acquired) {
          state.finish(notStartedReport(acquired.failure));
          return;
        }
        const { child, mode } = acquired;
        if (state.settled) {
          this.#release(child);
          return;
        }
        state.child = child;
        const identity = await child.identity;
        if (state.abortReason !== null) {
          state.finish(abortedBeforeStartReport(state.abortReason));
          this.#release(child);
          return;
        }
        hooks.onStart?.({ pid: child.pid!, processIdentity: identity, threadId: null, mode, ...startMoment() }, job);
        const exitAfter = child.tasksRun + 1 >= this.#p.maxTasksPerChild || this.#dedicated(child.confinement);
        const running = child.run(job, hooks, exitAfter);
        state.running = true;
        const report = await running;
        state.finish(report);
        if (this.#reusable(child, report, exitAfter)) this.#release(child);
        else await this.#retire(child);
      });
      const tracked = work.finally(() => {
        this.#inFlight.delete(tracked);
      });
      this.#inFlight.add(tracked);
    });
  }

  abort(job: AttemptJob, reason: AbortReason): boolean {
    const state = this.#runs.get(job);
    if (state === undefined || state.settled) return false;
    if (state.running) state.child!.abort(reason);
    else if (state.child !== null) state.abortReason ??= reason;
    // Not in a child yet: it never starts.
    else state.finish(abortedBeforeStartReport(reason));
    return true;
  }

  extendFence(job: AttemptJob): void {
    const state = this.#runs.get(job);
    // Not running yet: the run message will carry `job.fenceAtMs` as it is then.
    if (state?.running === true && job.fenceAtMs !== undefined) state.child!.extendFence(job.fenceAtMs);
  }

  /** Resolves true once no try runs (idle spares may live on), or false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    return settleAll(this.#inFlight, timeoutMs);
  }

  /** Stops starting children and terminates every live one (SIGTERM, then SIGKILL). */
  async close(): Promise<void> {
    // Queued runs still start, see the pool closed and resolve: none is left hanging.
    this.#closed = true;
    if (this.#spareTimer !== null) clearTimeout(this.#spareTimer);
    for (const timer of this.#idleTimers.values()) clearTimeout(timer);
    this.#idleTimers.clear();
    await Promise.all([...this.#children].map((child) => child.terminate(this.#p.killTimeoutMs)));
  }

  /** True when `confinement` is not the pool's own: such a try gets a child of its own. */
  #dedicated(confinement: ChildConfinement | null | undefined): confinement is ChildConfinement {
    return confinement != null && confinement.key !== (this.#p.confinement?.key ?? null);
  }

  async #acquire(confinement: ChildConfinement | null | undefined): Promise<Acquired> {
    if (this.#dedicated(confinement)) return this.#fresh(confinement);
    const idle = this.#idle.pop();
    if (idle !== undefined) {
      this.#clearIdleTimer(idle);
      this.#topUpSpares();
      return { child: idle, mode: idle.tasksRun > 0 ? 'reused' : 'spare' };
    }
    const [booting] = this.#booting;
    if (booting !== undefined) {
      this.#booting.delete(booting);
      this.#topUpSpares();
      if (await booting.ready) return { child: booting, mode: 'spare' };
    }
    return this.#fresh(this.#p.confinement ?? null);
  }

  async #fresh(confinement: ChildConfinement | null): Promise<Acquired> {
    let failure = '';
    // A child that failed to start gets no task; the next one is given one chance more.
    for (let attempt = 0; attempt < 2; attempt += 1) {
      if (this.#closed) return { failure: 'pool closed before the task started' };
      const child = this.#spawn(confinement);
      if (await child.ready) {
        this.#startFailures = 0;
        return { child, mode: 'fresh' };
      }
      // Ended by close() while it booted: the stop, not a failure.
      if (this.#closed) return { failure: 'pool closed before the task started' };
      failure = child.startFailure();
      this.#p.logger.error('child failed to start', { pid: child.pid ?? '', text: failure });
    }
    return { failure };
  }

  #reusable(child: ChildHandle, report: AttemptReport, exitAfter: boolean): boolean {
    if (this.#closed) return false;
    if (report.outcome !== 'finished' && report.outcome !== 'failed') return this.#recycled('ended');
    if (exitAfter) return this.#recycled('tasks');
    if (child.leaving) return this.#recycled('ended');
    if (this.#dedicated(child.confinement)) return this.#recycled('tasks');
    const rss = child.memory?.rss ?? 0;
    if (this.#p.maxRssBytes !== null && rss > this.#p.maxRssBytes) {
      this.#p.logger.info('child replaced: memory over the ceiling', {
        pid: child.pid ?? '',
        rss,
        ceiling: this.#p.maxRssBytes,
      });
      return this.#recycled('memory');
    }
    return true;
  }

  /** Counts a child ended after its try instead of being reused; false (not reusable). */
  #recycled(reason: ChildRecycleReason): false {
    this.#recycles[reason] += 1;
    return false;
  }

  /**
   * Ends a child after its last try; the slot stays held until it has exited. What its tries
   * started and left in its process group is ended with it.
   */
  async #retire(child: ChildHandle): Promise<void> {
    if (child.alive) {
      child.retire();
      const timer = setTimeout(() => void child.terminate(this.#p.killTimeoutMs), this.#p.killTimeoutMs);
      timer.unref();
      await child.exited;
      clearTimeout(timer);
    }
    child.killGroup();
  }

  /** Puts a ready child back to wait for the next try; extra idle ones are reaped later. */
  #release(child: ChildHandle): void {
    if (this.#closed || !child.alive) {
      void this.#retire(child);
      return;
    }
    this.#idle.push(child);
    this.#armIdleTimer(child);
  }

  #armIdleTimer(child: ChildHandle): void {
    this.#clearIdleTimer(child);
    const timer = setTimeout(() => {
      this.#idleTimers.delete(child);
      const at = this.#idle.indexOf(child);
      if (at < 0) return;
      if (this.#idle.length + this.#booting.size <= this.#p.spareChildren) {
        this.#armIdleTimer(child);
        return;
      }
      this.#idle.splice(at, 1);
      void this.#retire(child);
    }, this.#p.idleMs);
    timer.unref();
    this.#idleTimers.set(child, timer);
  }

  #clearIdleTimer(child: ChildHandle): void {
    const timer = this.#idleTimers.get(child);
    if (timer !== undefined) clearTimeout(timer);
    this.#idleTimers.delete(child);
  }

  #spawn(confinement: ChildConfinement | null): ChildHandle {
    const child = ChildHandle.spawn({
      tryGroups: this.#p.tryGroups ?? null,
      confinement,
      readable: this.#p.readable ?? [],
      entry: this.#entry,
      env: { ...this.#p.env },
      execArgv: this.#p.execArgv,
      killTimeoutMs: this.#p.killTimeoutMs,
      reuse: this.#p.maxTasksPerChild > 1,
      reportRss: this.#p.maxRssBytes !== null,
      // A result is JSON-escaped on the channel: a control character takes six.
      maxMessageChars: 6 * (this.#p.maxResultBytes ?? defaultMaxResultBytes) + 64 * 1024,
      onIdleOutput: (stream, line) => this.#p.logger.info(`[child ${child.pid ?? '?'} ${stream}] ${line}`),
    });
    this.#children.add(child);
    void child.exited.then(() => {
      // A booting spare is left to its `ready` handler, which counts the failed start.
      this.#children.delete(child);
      this.#clearIdleTimer(child);
      const at = this.#idle.indexOf(child);
      if (at >= 0) {
        this.#idle.splice(at, 1);
        this.#topUpSpares();
      }
    });
    return child;
  }

  /** Keeps `spareChildren` children booted or booting; pauses after spares fail to start. */
  #topUpSpares(): void {
    if (this.#closed || this.#p.spareChildren === 0 || this.#spareTimer !== null) return;
    const wait = this.#sparesPausedUntil - Date.now();
    if (wait > 0) {
      this.#spareTimer = setTimeout(() => {
        this.#spareTimer = null;
        this.#topUpSpares();
      }, wait);
      this.#spareTimer.unref();
      return;
    }
    while (this.#idle.length + this.#booting.size < this.#p.spareChildren) {
      const child = this.#spawn(this.#p.confinement ?? null);
      this.#booting.add(child);
      void child.ready.then((ready) => {
        if (!this.#booting.delete(child)) return; // taken by a try meanwhile
        if (ready) {
          this.#startFailures = 0;
          this.#release(child);
          return;
        }
        if (this.#closed) {
          // close() ended it while it booted: that is the stop, not a failed start.
          this.#p.logger.debug('spare child ended by the pool closing while it booted', { pid: child.pid ?? '' });
          return;
        }
        this.#startFailures += 1;
        const delay = Math.min(spareRetryMs.base * 2 ** (this.#startFailures - 1), spareRetryMs.max);
        this.#sparesPausedUntil = Date.now() + delay;
        this.#p.logger.error('spare child failed to start', { text: child.startFailure(), retryInMs: delay });
        this.#topUpSpares();
      });
    }
  }
}
