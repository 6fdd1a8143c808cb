/**
 * The request table: the Rails plugin's columns with their names and meanings unchanged (see
 * docs/request-table.md, "Tables written by the Rails plugin"), plus the columns added since. Rows pass through these states (derived, never stored):
 *
 *   waiting   completed_at IS NULL AND pid IS NULL AND tries < try_limit
 *             (runnable once delay_until IS NULL OR delay_until <= now())
 *   running   pid IS NOT NULL: claimed by launcher `launcher_id` on `host`; pid is the launcher's
 *             own until the child has started, then the child's
 *   done      completed_at IS NOT NULL: `result` says how (FINISHED; the last failure when
 *             tries ran out or the failure was permanent; CANCELLED; PARKED)
 *
 * Clearing `pid` by hand reschedules a row (the seed's way): a held row is given back at once; a
 * running try is first stopped by its launcher (found by its lease, on whatever host), which then
 * records it RESCHEDULED and clears the lease, and only then may any launcher claim the row. A cancel ends a
 * waiting row at once; on a running row it sets `cancel_requested_at`, and the outcome its
 * launcher writes next ends the row CANCELLED (unless the try FINISHED first).
 */
export interface TaskRequestRow {
  /** bigserial, returned as a string because it can exceed 2^53. */
  id: string;
  created_at: Date;
  task_class_name: string;
  pid: number | null;
  started_at: Date | null;
  completed_at: Date | null;
  result: string | null;
  tries: number;
  try_limit: number;
  /** YAML text. */
  options: string | null;
  delay_until: Date | null;
  result_text: string | null;
  queue: string;
  priority: number;
  /** Host that owns `pid`. */
  host: string | null;
  /** The launcher that claimed the row (random id per launcher start). */
  launcher_id: string | null;
  /** Boot id and start time of `pid`, so a reused pid is not mistaken for the task's process. */
  process_identity: string | null;
  /** Worker thread id in thread mode; null for child processes. */
  thread_id: number | null;
  /** The owning launcher renews this; past it, any launcher may recover the row. */
  lease_expires_at: Date | null;
  /** Tries that crashed (CRASHED or TIMED_OUT), counted apart from exceptions; at `crashLimit` the row is PARKED. */
  crashes: number;
  /**
   * Hard timeout of each try in milliseconds; null: the request sets none (the task class's or
   * the runner's default applies).
   */
  timeout_ms: number | null;
  /** When a cancel of the running try was asked for; its launcher kills it and ends the row CANCELLED. */
  cancel_requested_at: Date | null;
  /** W3C `traceparent` of the span that scheduled it (only when @opentelemetry/api was loaded); null otherwise. */
  traceparent: string | null;
}

/**
 * Values of `result`.
 * - FINISHED: `run()` returned; `result_text` holds its value.
 * - FAILED: `run()` threw, the task could not be loaded, or its options were invalid;
 *   `result_text` holds the error and stack. Retried after a backoff while tries remain
 *   (invalid options are permanent and end the request at once).
 * - CRASHED: the process ended without reporting (exit, signal, OOM), or the probe found it
 *   gone, or its launcher's lease expired. Retried like FAILED.
 * - TIMED_OUT: the try ran past its hard timeout and was killed (process group SIGTERM, then
 *   SIGKILL; or its thread terminated). Retried like CRASHED, and counted as a crash.
 * - CANCELLED: cancelled by `cancel()` or the CLI; a waiting request never starts, a running one
 *   is killed. Never retried.
 * - PARKED: crashed (CRASHED or TIMED_OUT) `crashLimit` times; ended so that a poison task does
 *   not retry forever. `retry` makes it runnable again.
 * - INTERRUPTED: the launcher shut down while the task ran; the try is given back and the
 *   request runs again at once.
 * - RESCHEDULED: its `pid` was cleared by hand while the try was held or running; the launcher
 *   stopped the try (its process group ended) before anyone could start the next one. The try is
 *   given back and the request runs again at once. A try that ended before its launcher saw the
 *   cleared pid keeps its own result.
 */
export const RequestResult = Object.freeze({
  FINISHED: 'FINISHED',
  FAILED: 'FAILED',
  CRASHED: 'CRASHED',
  TIMED_OUT: 'TIMED_OUT',
  CANCELLED: 'CANCELLED',
  PARKED: 'PARKED',
  INTERRUPTED: 'INTERRUPTED',
  RESCHEDULED: 'RESCHEDULED',
} as const);
export type RequestResultValue = (typeof RequestResult)[keyof typeof RequestResult];
