import type { ChildConfinement } from '../config/confinement.js';
import type { FailureKind, RunMessage, WireRequest } from './protocol.js';

/** One try to run in isolation. The pool never sees the database: this is all it gets. */
export interface AttemptJob {
  request: WireRequest;
  /** Task file resolved by the launcher's registry. */
  file: string;
  options: string | null;
  maxOptionsBytes: number;
  maxResultBytes: number;
  /**
   * The lease deadline of this try on the monotonic clock every process of the host shares
   * (`monotonicMs()`, ../pool/protocol.ts): the launcher has not confirmed its lease past it, so
   * the try must have ended by then (it is fenced). Set and moved later by the launcher only
   * after a renewal the database accepted; undefined: no fence (a pool used on its own).
   */
  fenceAtMs?: number;
  /**
   * How this try's child is confined, when that differs from the pool's own (a task override or
   * class narrowed it): it then runs in a child of its own. Processes only; threads ignore it.
   */
  confinement?: ChildConfinement;
}

/**
 * How a try was hosted: a child forked for it (`fresh`), a pre-booted child that waited for it
 * (`spare`), a child that ran earlier tasks (`reused`), or a worker thread of the launcher.
 */
export type AttemptMode = 'fresh' | 'spare' | 'reused' | 'thread';

/** Where a try runs, reported as soon as it has started. */
export interface AttemptStart {
  /** The child's pid; in thread mode the launcher's own. */
  pid: number;
  processIdentity: string | null;
  threadId: number | null;
  mode: AttemptMode;
  startedAt: Date;
  /** The same moment as epoch milliseconds with sub-millisecond precision (for latency figures). */
  startedAtMs: number;
}

/**
 * Why the launcher stopped a try: its hard timeout, a cancel, launcher shutdown, or its lease
 * deadline passed unconfirmed (`lease`: fenced, killed at once, with no grace period).
 */
export type AbortReason = 'timeout' | 'cancel' | 'shutdown' | 'lease';

/** Known at the end of every try, whatever its outcome. */
export interface AttemptUsage {
  pid: number | null;
  threadId: number | null;
  /** Peak resident memory of the child (fork), or the worker's heap size (thread); null when unknown. */
  peakMemoryBytes: number | null;
}

/** How a try's process or thread ended (built in reports.ts). */
export type AttemptReport = AttemptUsage &
  (
    | { outcome: 'finished'; resultText: string | null }
    | { outcome: 'failed'; kind: FailureKind; text: string }
    | {
        outcome: 'crashed';
        exitCode: number | null;
        signal: string | null;
        /** The last bytes the child wrote to stderr during this try. */
        stderrTail: string;
        text: string;
      }
    | {
        /** The launcher stopped it (the AbortSignal given to `run` fired). */
        outcome: 'aborted';
        reason: AbortReason;
        exitCode: number | null;
        signal: string | null;
        text: string;
      }
  );

/**
 * What a pool tells about a running try. Each hook is also given the try's job, so one hooks
 * object can serve every try (the launcher's does: a try then costs no closures).
 */
export interface AttemptHooks {
  /** Called once the try runs, before the task does (the launcher records the pid). */
  onStart?(start: AttemptStart, job: AttemptJob): void;
  /** Each line the try writes to stdout or stderr. */
  onOutput?(stream: 'stdout' | 'stderr', line: string, job: AttemptJob): void;
}

/**
 * What the dispatcher needs of a pool, whichever hosts the tries (child processes or threads).
 * `run` never rejects: every ending is a report. `abort(job, reason)` stops a try: a queued one
 * never starts, a running one is terminated (process group SIGTERM then SIGKILL, or the thread
 * terminated) and reported `aborted`. Aborting `signal`, when one is given, does the same with
 * the signal's `reason` (an {@link AbortReason}).
 */
export interface TaskPool {
  run(job: AttemptJob, hooks?: AttemptHooks, signal?: AbortSignal): Promise<AttemptReport>;
  /** Stops the try of `job` if this pool has it; false when it has not (or it ended). */
  abort(job: AttemptJob, reason: AbortReason): boolean;
  /**
   * `job.fenceAtMs` moved (a renewal confirmed the lease): tells the try's child, which ends
   * itself at the deadline it was last told. Threads have no timer of their own (they live in
   * the launcher's process): the launcher aborts them itself, so a thread pool may omit this.
   */
  extendFence?(job: AttemptJob): void;
  /** Tries running or queued. */
  readonly busy: number;
  /** Resolves true once nothing runs, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean>;
  /** Aborts everything (reason `shutdown`), ends every worker, and refuses further runs. */
  close(): Promise<void>;
}

/** The message that hands `job` to a child or a thread; `exitAfter` is for children only. */
export function runMessage(job: AttemptJob, exitAfter?: boolean): RunMessage {
  const { request, file, options, maxOptionsBytes, maxResultBytes } = job;
  const message: RunMessage = { type: 'run', request, file, options, maxOptionsBytes, maxResultBytes };
  if (exitAfter !== undefined) message.exitAfter = exitAfter;
  if (job.fenceAtMs !== undefined) message.fenceAtMs = job.fenceAtMs;
  return message;
}

/** Now, as a Date and as epoch milliseconds with sub-millisecond precision. */
export function startMoment(): { startedAt: Date; startedAtMs: number } {
  const startedAtMs = performance.timeOrigin + performance.now();
  return { startedAt: new Date(startedAtMs), startedAtMs };
}

/** The reason of an aborted signal, as an {@link AbortReason} (anything else counts as shutdown). */
export function abortReasonOf(signal: AbortSignal): AbortReason {
  const reason: unknown = signal.reason;
  return reason === 'timeout' || reason === 'cancel' || reason === 'lease' ? reason : 'shutdown';
}
