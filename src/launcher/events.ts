import type { AttemptMode } from '../pool/attempt.js';
import type { LaunchStatementTiming } from './launch-loop.js';
import type { RequestResultValue } from '../store/schema.js';

/**
 * What a runner reports as it works. Tests wait on these instead of sleeping; hosts use them for
 * metrics and logs.
 */
export interface RunnerEvents {
  /** The launcher is claiming (after `start()`). */
  'runner:started': { launcherId: string; host: string; pid: number };
  /** `stop()` finished: no child alive, every row released or finished. */
  'runner:stopped': { launcherId: string; interrupted: number };
  /**
   * The launcher's statement (outcomes, starts and a claim in one round trip) returned or failed,
   * with its duration: the claim statement latency, and the batch writes that failed.
   */
  'launch:statement': LaunchStatementTiming;
  /** Rows claimed in one statement. */
  'task:claimed': { ids: string[] };
  /**
   * A try's process runs and its pid is recorded in the row. A try that ended before its start
   * was written is told just before its `task:completed`; `startedAtMs` is when it really started
   * (epoch milliseconds, sub-millisecond precision). `runnableAtMs` is when the row became
   * runnable (created, or its `delay_until` passed, by the database's clock): `startedAtMs -
   * runnableAtMs` is the pickup latency.
   */
  'task:started': {
    id: string;
    taskClassName: string;
    tries: number;
    pid: number;
    threadId: number | null;
    mode: AttemptMode;
    startedAtMs: number;
    runnableAtMs: number;
    /** W3C traceparent stored at `schedule()`, or null: the try's span links to it (see tracing). */
    traceparent: string | null;
  };
  /** A try ended and its outcome is written to the row; `ended`, `parked` and `requestResult` are what the row says. */
  'task:completed': {
    id: string;
    /** '' for a row whose task_class_name is NULL (it ends FAILED, no try having run). */
    taskClassName: string;
    tries: number;
    /** This try's own result; the request may have ended PARKED (see `parked`) or CANCELLED. */
    result: RequestResultValue;
    resultText: string | null;
    /** True when the request is over: it ended with this try (`completed_at` is set), no more tries. */
    ended: boolean;
    /** True when this crash reached `crashLimit`: the request is PARKED. */
    parked: boolean;
    /** The request's `result` when it ended (FINISHED, FAILED, CANCELLED, PARKED, ...); null while it may run again. */
    requestResult: RequestResultValue | null;
  };
  /** A line the task's process wrote. */
  'task:output': { id: string; stream: 'stdout' | 'stderr'; line: string };
  /** The pid probe or lease recovery marked rows crashed. */
  'probe:recovered': { ids: string[]; reason: 'probe' | 'lease' };
  /** The claim loop went idle: nothing runnable, free slots left. */
  'runner:idle': { running: number };
  /** This launcher enqueued due times of a recurring entry (another launcher may have enqueued others). */
  'recurring:enqueued': { name: string; ids: string[]; dueTimes: Date[] };
  /** A retention run ended; `ran` is false when another launcher was pruning. */
  'retention:pruned': { requests: Record<string, number>; attempts: number; ran: boolean; more: boolean };
  /** Something failed inside the runner (database down, a write lost); the runner goes on. */
  error: { error: Error; during: string };
}
