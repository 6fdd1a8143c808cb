import type { Generated, Selectable } from 'kysely';

/**
 * The tables the runner makes, as Kysely table interfaces: the one place their columns are typed.
 * Statements type what they select from these (`Pick<RequestRow, ...>`, `Selectable<...>`)
 * rather than spelling the columns again; the DDL that makes the tables is in schema-ddl.ts and
 * what it makes is in schema.sql. A `bigint` id is typed `string`: statements select it as text
 * (`id::text`), because it can pass 2^53. `Generated` marks a column the database fills.
 */

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
 * Clearing `pid` by hand reschedules a row (the Rails plugin's way): a held row is given back at once; a
 * running try is first stopped by its launcher (found by its lease, on whatever host), which then
 * records it RESCHEDULED and clears the lease, and only then may any launcher claim the row. A cancel ends a
 * waiting row at once; on a running row it sets `cancel_requested_at`, and the outcome its
 * launcher writes next ends the row CANCELLED (unless the try FINISHED first).
 */
export interface RequestTable {
  /** bigserial, returned as a string because it can exceed 2^53. */
  id: Generated<string>;
  created_at: Generated<Date>;
  task_class_name: string;
  pid: number | null;
  started_at: Date | null;
  completed_at: Date | null;
  result: string | null;
  tries: Generated<number>;
  try_limit: Generated<number>;
  /** YAML text. */
  options: string | null;
  delay_until: Date | null;
  result_text: string | null;
  queue: Generated<string>;
  priority: Generated<number>;
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
  crashes: Generated<number>;
  /**
   * Hard timeout of each try in milliseconds; null: the request sets none (the task class's or
   * the runner's default applies).
   */
  timeout_ms: number | null;
  /** When a cancel of the running try was asked for; its launcher kills it and ends the row CANCELLED. */
  cancel_requested_at: Date | null;
  /** W3C `traceparent` of the span that scheduled it (only when @opentelemetry/api was loaded); null otherwise. */
  traceparent: string | null;
  /** The `uniqueKey` the request was scheduled with (see unique-requests.ts); null without one. */
  unique_key: string | null;
}

/** A whole row of the request table, as `find` returns it. */
export type TaskRequestRow = Selectable<RequestTable>;

/** The attempt-history table, `<table>_attempts`: one row per try that ended (attempts-table.ts). */
export interface AttemptTable {
  id: Generated<string>;
  request_id: string;
  /** The try's number (1 for the first). */
  try: number;
  host: string | null;
  launcher_id: string | null;
  pid: number | null;
  thread_id: number | null;
  /** 'fresh', 'spare', 'reused' or 'thread'; null when unknown (probe, lease). */
  mode: string | null;
  started_at: Date | null;
  ended_at: Generated<Date>;
  result: RequestResultValue;
  exit_code: number | null;
  signal: string | null;
  /** bigint, selected as text. */
  peak_memory_bytes: string | null;
  result_text: string | null;
}
export type AttemptRow = Selectable<AttemptTable>;

/** The recurring table, `<table>_recurring`: one row per recurring entry (recurring-table.ts). */
export interface RecurringTable {
  name: string;
  task_class_name: string;
  cron: string;
  timezone: string;
  /** YAML text. */
  options: string | null;
  queue: string;
  priority: number;
  try_limit: number;
  backfill: Generated<number>;
  last_due_at: Date;
  /** bigint, selected as text. */
  last_request_id: string | null;
  registered_at: Generated<Date>;
}
export type RecurringTableRow = Selectable<RecurringTable>;

/** The launchers table, `<table>_launchers`: one row per running launcher (launchers-table.ts). */
export interface LauncherTable {
  launcher_id: string;
  host: string;
  pid: number;
  concurrency: number;
  queues: string[] | null;
  started_at: Generated<Date>;
  heartbeat_at: Generated<Date>;
}
export type LauncherRow = Selectable<LauncherTable>;

/**
 * A row of an adopted table (one an application made, a Rails migration's) may hold NULL where
 * the runner's own table does not: statements that read such columns widen them with this.
 */
export type MaybeNull<Row, Column extends keyof Row> = Omit<Row, Column> & { [K in Column]: Row[K] | null };

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
