import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { attemptsTableFor } from './attempts-table.js';
import { delayedSql, endedSql, heldSql, runnableSql, runningSql, startedSql, waitingSql } from './fragments.js';
import { launchersTableFor } from './launchers-table.js';
import type { SqlDb } from './database.js';
import type { LauncherRow, MaybeNull, TaskRequestRow } from './schema.js';

/**
 * What the table says about the work going on: depth per queue and task, the oldest wait,
 * throughput and pickup per minute, running tries and live launchers. Read by `status`, the
 * dashboard and the metrics scrape, never by the launch path. Each statement reads only open
 * rows (through the partial indexes of the claim and the probe), the last hour of the attempts
 * table (by its `ended_at` index), or the ended rows by the `(result, id)` index: none walks a
 * million finished rows.
 */

/** Open requests of one queue and task. */
export interface QueueDepth {
  queue: string;
  /** Null for rows without one (a Rails-made table allows it); they end FAILED when claimed. */
  taskClassName: string | null;
  /** Runnable now. */
  waiting: number;
  /** Waiting for `delay_until`. */
  delayed: number;
  /** Claimed and started. */
  running: number;
  /** Claimed by a launcher ahead of a free slot, not started. */
  held: number;
}

export interface OpenActivity {
  depth: QueueDepth[];
  /** How long the longest-waiting runnable request has waited since it became runnable, ms; null when none waits. */
  oldestWaitingMs: number | null;
}

/** One minute of ended tries. */
export interface MinuteActivity {
  /** Start of the minute. */
  minute: Date;
  finished: number;
  failed: number;
  /** CRASHED or TIMED_OUT. */
  crashed: number;
  /** Every other result (CANCELLED, INTERRUPTED, ...). */
  other: number;
  /** Median and largest time from creation to the first try's start, of first tries ending this minute; null without any. */
  pickupP50Ms: number | null;
  pickupMaxMs: number | null;
}

/** A try running now, as its row says. */
export interface RunningTry {
  id: string;
  taskClassName: string | null;
  queue: string;
  tries: number;
  pid: number | null;
  threadId: number | null;
  host: string | null;
  launcherId: string | null;
  startedAt: Date | null;
  /** Claimed but not started (in its launcher's local queue; `pid` is the launcher's). */
  held: boolean;
  cancelRequested: boolean;
}

/** A launcher that heart-beat within the staleness limit. */
export interface LauncherAlive {
  launcherId: string;
  host: string;
  pid: number;
  concurrency: number;
  queues: string[] | null;
  startedAt: Date;
  /** Milliseconds since its last heartbeat. */
  heartbeatAgeMs: number;
  /** Its tries running now (started), from the request table. */
  running: number;
  /** Rows it claimed ahead and holds, not started. */
  held: number;
}

export async function activityOpen(db: SqlDb, table: TableName): Promise<OpenActivity> {
  const ref = sql.table(table.qualified);
  // Two scans, each of one partial index's rows (runnable_idx, running_idx), rather than one
  // scan of the whole table for `completed_at IS NULL`; the counts apply the states' own
  // conditions to the columns they read.
  const open = sql.raw('queue, task_class_name, completed_at, pid, tries, try_limit, delay_until, started_at');
  const { rows } = await sql<
    MaybeNull<Pick<TaskRequestRow, 'queue' | 'task_class_name'>, 'task_class_name'> &
      Record<'waiting' | 'delayed' | 'running' | 'held', string>
  >`
    SELECT queue, task_class_name,
           count(*) FILTER (WHERE ${sql.raw(runnableSql())}) AS waiting,
           count(*) FILTER (WHERE ${sql.raw(delayedSql())}) AS delayed,
           count(*) FILTER (WHERE ${sql.raw(startedSql())}) AS running,
           count(*) FILTER (WHERE ${sql.raw(heldSql())}) AS held
    FROM (
      SELECT ${open} FROM ${ref} WHERE ${sql.raw(waitingSql())}
      UNION ALL
      SELECT ${open} FROM ${ref} WHERE ${sql.raw(runningSql())}
    ) open
    GROUP BY queue, task_class_name ORDER BY queue, task_class_name`.execute(db);
  const { rows: oldest } = await sql<{ ms: number | null }>`
    SELECT (extract(epoch FROM now() - min(greatest(created_at, delay_until))) * 1000)::float8 AS ms FROM ${ref}
    WHERE ${sql.raw(runnableSql())}`.execute(db);
  const ms = oldest[0]?.ms ?? null;
  return {
    depth: rows.map((row) => ({
      queue: row.queue,
      taskClassName: row.task_class_name,
      waiting: Number(row.waiting),
      delayed: Number(row.delayed),
      running: Number(row.running),
      held: Number(row.held),
    })),
    oldestWaitingMs: ms === null ? null : Math.max(0, Math.round(ms)),
  };
}

/**
 * Ended tries per minute over the last `minutes` (every minute present, zero when idle), oldest
 * first, with the pickup of first tries: creation to start, which includes a delay the request
 * was scheduled with. The exact pickup (from when the row became runnable) is in the metrics.
 */
export async function activityPerMinute(db: SqlDb, table: TableName, minutes = 60): Promise<MinuteActivity[]> {
  const attempts = sql.table(attemptsTableFor(table).qualified);
  const { rows } = await sql<{
    minute: Date;
    finished: string;
    failed: string;
    crashed: string;
    other: string;
    p50: number | null;
    max: number | null;
  }>`
    WITH span AS (
      SELECT generate_series(date_trunc('minute', now()) - (${minutes - 1} * interval '1 minute'), date_trunc('minute', now()),
                             interval '1 minute') AS minute
    ),
    ended AS (
      SELECT date_trunc('minute', a.ended_at) AS minute, a.result, a.try, a.started_at, a.request_id
      FROM ${attempts} AS a WHERE a.ended_at >= date_trunc('minute', now()) - (${minutes - 1} * interval '1 minute')
    ),
    pickup AS (
      SELECT e.minute, extract(epoch FROM e.started_at - r.created_at) * 1000 AS ms
      FROM ended e JOIN ${sql.table(table.qualified)} r ON r.id = e.request_id
      WHERE e.try = 1 AND e.started_at IS NOT NULL AND e.started_at >= r.created_at
    )
    SELECT span.minute,
      (SELECT count(*) FROM ended WHERE ended.minute = span.minute AND result = 'FINISHED') AS finished,
      (SELECT count(*) FROM ended WHERE ended.minute = span.minute AND result = 'FAILED') AS failed,
      (SELECT count(*) FROM ended WHERE ended.minute = span.minute AND result IN ('CRASHED', 'TIMED_OUT')) AS crashed,
      (SELECT count(*) FROM ended WHERE ended.minute = span.minute
         AND result NOT IN ('FINISHED', 'FAILED', 'CRASHED', 'TIMED_OUT')) AS other,
      (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM pickup WHERE pickup.minute = span.minute)::float8 AS p50,
      (SELECT max(ms) FROM pickup WHERE pickup.minute = span.minute)::float8 AS max
    FROM span ORDER BY span.minute`.execute(db);
  return rows.map((row) => ({
    minute: row.minute,
    finished: Number(row.finished),
    failed: Number(row.failed),
    crashed: Number(row.crashed),
    other: Number(row.other),
    pickupP50Ms: row.p50 === null ? null : Math.round(row.p50),
    pickupMaxMs: row.max === null ? null : Math.round(row.max),
  }));
}

/** Tries running now and rows held (rows with a pid), oldest start first, held ones last; at most `limit`. */
export async function activityRunning(db: SqlDb, table: TableName, limit = 200): Promise<RunningTry[]> {
  const { rows } = await sql<
    MaybeNull<
      Pick<
        TaskRequestRow,
        'id' | 'task_class_name' | 'queue' | 'tries' | 'pid' | 'thread_id' | 'host' | 'launcher_id' | 'started_at'
      >,
      'task_class_name'
    > & { cancel: boolean }
  >`
    SELECT id::text AS id, task_class_name, queue, tries, pid, thread_id, host, launcher_id, started_at,
           cancel_requested_at IS NOT NULL AS cancel
    FROM ${sql.table(table.qualified)} AS r WHERE ${sql.raw(runningSql('r'))}
    ORDER BY r.started_at NULLS LAST, r.id LIMIT ${limit}`.execute(db);
  return rows.map((row) => ({
    id: row.id,
    taskClassName: row.task_class_name,
    queue: row.queue,
    tries: row.tries,
    pid: row.pid,
    threadId: row.thread_id,
    host: row.host,
    launcherId: row.launcher_id,
    startedAt: row.started_at,
    held: row.started_at === null,
    cancelRequested: row.cancel,
  }));
}

/** Launchers whose heartbeat is younger than `staleMs`. */
export async function launchersAlive(db: SqlDb, table: TableName, staleMs: number): Promise<LauncherAlive[]> {
  const { rows } = await sql<Omit<LauncherRow, 'heartbeat_at'> & { age: number; running: string; held: string }>`
    SELECT l.launcher_id, l.host, l.pid, l.concurrency, l.queues, l.started_at,
           (extract(epoch FROM now() - l.heartbeat_at) * 1000)::float8 AS age,
           (SELECT count(*) FROM ${sql.table(table.qualified)} r WHERE r.launcher_id = l.launcher_id AND ${sql.raw(startedSql('r'))}) AS running,
           (SELECT count(*) FROM ${sql.table(table.qualified)} r WHERE r.launcher_id = l.launcher_id AND ${sql.raw(heldSql('r'))}) AS held
    FROM ${sql.table(launchersTableFor(table).qualified)} l
    WHERE l.heartbeat_at > now() - ${staleMs} * interval '1 millisecond'
    ORDER BY l.host, l.started_at`.execute(db);
  return rows.map((row) => ({
    launcherId: row.launcher_id,
    host: row.host,
    pid: row.pid,
    concurrency: row.concurrency,
    queues: row.queues,
    startedAt: row.started_at,
    heartbeatAgeMs: Math.max(0, Math.round(row.age)),
    running: Number(row.running),
    held: Number(row.held),
  }));
}

/**
 * The launcher that exports the table's own figures (see createMetrics): of the launchers alive
 * (heartbeat within `staleMs`), the one with the smallest id. Null when none is alive. Every
 * launcher answers the same from the same table, so the figures are exported once, and another
 * launcher takes over when that one stops (its row goes) or stops heart-beating.
 */
export async function launcherTableExporter(db: SqlDb, table: TableName, staleMs: number): Promise<string | null> {
  const { rows } = await sql<Pick<LauncherRow, 'launcher_id'>>`
    SELECT launcher_id FROM ${sql.table(launchersTableFor(table).qualified)}
    WHERE heartbeat_at > now() - ${staleMs} * interval '1 millisecond'
    ORDER BY launcher_id LIMIT 1`.execute(db);
  return rows[0]?.launcher_id ?? null;
}

/** Ended requests per result (the `(result, id)` index answers it without the heap when vacuumed). */
export async function endedByResult(db: SqlDb, table: TableName): Promise<Record<string, number>> {
  const { rows } = await sql<Pick<TaskRequestRow, 'result'> & { n: string }>`
    SELECT result, count(*) AS n FROM ${sql.table(table.qualified)}
    WHERE ${sql.raw(endedSql())} GROUP BY result`.execute(db);
  return Object.fromEntries(rows.map((row) => [row.result ?? 'NULL', Number(row.n)]));
}

/** Registers or refreshes a launcher's row (its start and every lease renewal). */
export async function launcherHeartbeat(
  db: SqlDb,
  table: TableName,
  launcher: { launcherId: string; host: string; pid: number; concurrency: number; queues: readonly string[] | null },
): Promise<void> {
  await sql`
    INSERT INTO ${sql.table(launchersTableFor(table).qualified)} (launcher_id, host, pid, concurrency, queues)
    VALUES (${launcher.launcherId}, ${launcher.host}, ${launcher.pid}, ${launcher.concurrency},
            ${launcher.queues === null ? null : [...launcher.queues]}::text[])
    ON CONFLICT (launcher_id) DO UPDATE SET heartbeat_at = now()`.execute(db);
}

/** Removes a launcher's row at its stop; rows of launchers that died go when older than a day. */
export async function launcherRemove(db: SqlDb, table: TableName, launcherId: string): Promise<void> {
  await sql`DELETE FROM ${sql.table(launchersTableFor(table).qualified)}
    WHERE launcher_id = ${launcherId} OR heartbeat_at < now() - interval '1 day'`.execute(db);
}
