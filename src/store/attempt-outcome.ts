import type { RequestResultValue } from './schema.js';

/** What the history row of one try records about how it ran. */
export interface AttemptRecord {
  /** The child's pid (the launcher's own in thread mode or when no child started). */
  pid: number | null;
  threadId: number | null;
  /** 'fresh', 'spare', 'reused' or 'thread'; null when unknown. */
  mode: string | null;
  /** When the try started running, by the launcher's `performance.timeOrigin + performance.now()` (stored as an age by the database's clock); null: the time its row records is kept. */
  startedAtMs: number | null;
  exitCode: number | null;
  signal: string | null;
  peakMemoryBytes: number | null;
}

/** What to write for one ended try: its row, through the launch statement's rules, and its history row. */
export interface AttemptOutcome {
  id: string;
  tries: number;
  /** This try's own result: FINISHED, FAILED, CRASHED, TIMED_OUT, CANCELLED, INTERRUPTED or RESCHEDULED. */
  result: RequestResultValue;
  resultText: string | null;
  /** End the request now whatever tries remain (FINISHED, a permanent error, a cancel). */
  endNow: boolean;
  /** Give the try back and make the row runnable at once (shutdown, a fence, a reschedule). */
  refund: boolean;
  /** The try crashed (CRASHED, TIMED_OUT): it counts against `crashLimit`. */
  crash: boolean;
  /** For the history row. */
  attempt: AttemptRecord;
}
