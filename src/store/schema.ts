/**
 * The request table: the seed's columns with their names and meanings unchanged, plus the
 * columns the design needs. Rows pass through these states (derived, never stored):
 *
 *   waiting   completed_at IS NULL AND pid IS NULL AND tries < try_limit
 *             (runnable once delay_until IS NULL OR delay_until <= now())
 *   running   pid IS NOT NULL: claimed by launcher `launcher_id` on `host`; pid is the launcher's
 *             own until the child has started, then the child's
 *   done      completed_at IS NOT NULL: `result` says how (FINISHED, or the last failure when
 *             tries ran out or the failure was permanent)
 *
 * Clearing `pid` by hand makes a running row waiting again, as in the seed.
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
}

/**
 * Values of `result`.
 * - FINISHED: `run()` returned; `result_text` holds its value.
 * - FAILED: `run()` threw, the task could not be loaded, or its options were invalid;
 *   `result_text` holds the error and stack. Retried after a backoff while tries remain
 *   (invalid options are permanent and end the request at once).
 * - CRASHED: the process ended without reporting (exit, signal, OOM), or the probe found it
 *   gone, or its launcher's lease expired. Retried like FAILED.
 * - INTERRUPTED: the launcher shut down while the task ran; the try is given back and the
 *   request runs again at once.
 */
export const RequestResult = Object.freeze({
  FINISHED: 'FINISHED',
  FAILED: 'FAILED',
  CRASHED: 'CRASHED',
  INTERRUPTED: 'INTERRUPTED',
} as const);
export type RequestResultValue = (typeof RequestResult)[keyof typeof RequestResult];

/** A claimed request: what the launcher needs to run one try. */
export interface ClaimedRequest {
  id: string;
  taskClassName: string;
  options: string | null;
  /** This try's number (1 for the first); with `id` and the launcher id it names the attempt. */
  tries: number;
  tryLimit: number;
  queue: string;
  priority: number;
  createdAt: Date;
  startedAt: Date;
}
