import type { RequestResultValue } from './schema.js';

/** One running try's pid, written once its process has started. */
export interface AttemptPid {
  id: string;
  tries: number;
  pid: number;
  processIdentity: string | null;
  threadId: number | null;
}

/** What the history row of one try records about how it ran. */
export interface AttemptRecord {
  /** The child's pid (the launcher's own in thread mode or when no child started). */
  pid: number | null;
  threadId: number | null;
  /** 'fresh', 'spare', 'reused' or 'thread'; null when unknown. */
  mode: string | null;
  /** When the try started running; null: the claim time is recorded instead. */
  startedAt: Date | null;
  exitCode: number | null;
  signal: string | null;
  peakMemoryBytes: number | null;
}

/** How one try ended, to be written back to its row and recorded in the attempts table. */
export interface AttemptOutcome {
  id: string;
  tries: number;
  /** This try's own result: FINISHED, FAILED, CRASHED, TIMED_OUT, CANCELLED or INTERRUPTED. */
  result: RequestResultValue;
  resultText: string | null;
  /** End the request now whatever tries remain (FINISHED, a permanent error, a cancel). */
  final: boolean;
  /** Give the try back and make the row runnable at once (launcher shutdown). */
  refund: boolean;
  /** The try crashed (CRASHED, TIMED_OUT): it counts against `crashLimit`. */
  crash: boolean;
  /** For the history row. */
  attempt: AttemptRecord;
}
