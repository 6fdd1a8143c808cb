import { sql, type RawBuilder } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { TaskRunnerError } from '../errors.js';
import { attemptsOfRequest, type RequestAttempt } from './attempt-history.js';
import { nullTryLimit, requestStates, stateConditionSql, stateSql, type RequestState } from './fragments.js';
import type { SqlDb } from './database.js';
import type { MaybeNull, TaskRequestRow } from './schema.js';

/**
 * Read-only questions about requests, for `show`, `list` and the dashboard: one request in full,
 * and pages of requests newest first. Pages are keyset-paginated on the primary key (`id <
 * before`), so page 1000 costs what page 1 does on a million-row table; each state filter is a
 * condition an index serves (see `createOpsSupport` in schema-ddl.ts).
 */

/** Which requests: every field optional; all given must hold. */
export interface RequestFilter {
  state?: RequestState;
  taskClassName?: string;
  queue?: string;
  /**
   * Case-insensitive substring of `result_text`. Unindexed, so a list bounds it: each page looks
   * at a window of ids (see `textSearchWindow`) and under a statement timeout.
   */
  text?: string;
}

export interface ListRequestsParams extends RequestFilter {
  /** Rows per page, 1 to 1000. Default 50. */
  limit?: number;
  /** Keyset cursor: only ids below this one (the `nextBefore` of the previous page). */
  before?: string;
  /** Ids a text search looks at per page, below `before` (or the newest). Default `textSearchWindow`. */
  textWindow?: number;
}

/**
 * A text search reads `result_text` of every row it passes, which no index helps with: on a
 * million-row table a search for something rare would read them all in one request. So a page of
 * a text search looks at most at this many ids (newest first, through the primary key), and ends
 * its page there: `nextBefore` then continues below the window, and `searchedDownTo` says where
 * it stopped. The statement also runs under `textSearchTimeoutMs`, for rows whose texts are large.
 */
export const textSearchWindow = 100_000;
export const textSearchTimeoutMs = 5_000;

/** One request as a list shows it. */
export interface RequestSummary {
  id: string;
  /** Null where a table allows it (a Rails-made one): such a row ends FAILED, no task to run. */
  taskClassName: string | null;
  queue: string;
  priority: number;
  state: RequestState;
  result: string | null;
  tries: number;
  tryLimit: number;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  delayUntil: Date | null;
  pid: number | null;
  host: string | null;
  /** The first 200 characters of `result_text`. */
  resultPreview: string | null;
}

export interface RequestPage {
  requests: RequestSummary[];
  /** Pass as `before` for the next page; null when this page is the last. */
  nextBefore: string | null;
  /**
   * A text search only: the lowest id this page looked at. Older rows were not searched; when
   * there are any, `nextBefore` is this id and the next page searches below it. Null otherwise.
   */
  searchedDownTo: string | null;
}

/** One request in full, with its ended tries. */
export interface RequestDetail extends RequestSummary {
  options: string | null;
  resultText: string | null;
  threadId: number | null;
  launcherId: string | null;
  leaseExpiresAt: Date | null;
  crashes: number;
  timeoutMs: number | null;
  cancelRequestedAt: Date | null;
  traceparent: string | null;
  attempts: RequestAttempt[];
}

/** The columns of `summaryColumns` (an adopted table allows a NULL task). */
type SummaryRow = MaybeNull<
  Pick<
    TaskRequestRow,
    | 'id'
    | 'task_class_name'
    | 'queue'
    | 'priority'
    | 'result'
    | 'tries'
    | 'try_limit'
    | 'created_at'
    | 'started_at'
    | 'completed_at'
    | 'delay_until'
    | 'pid'
    | 'host'
  >,
  'task_class_name'
> & { state: RequestState; preview: string | null };

/**
 * `id` is selected as text (a bigint can pass 2^53), so a bare `ORDER BY id` would sort that text
 * alias ('9' after '12'): statements order by the column through the table's alias (`r.id`).
 */
const summaryColumns = sql.raw(`id::text AS id, task_class_name, queue, priority, ${stateSql()} AS state, result,
  COALESCE(tries, 0) AS tries, COALESCE(try_limit, ${nullTryLimit}) AS try_limit,
  created_at, started_at, completed_at, delay_until, pid, host, left(result_text, 200) AS preview`);

function summaryOf(row: SummaryRow): RequestSummary {
  return {
    id: row.id,
    taskClassName: row.task_class_name,
    queue: row.queue,
    priority: row.priority,
    state: row.state,
    result: row.result,
    tries: row.tries,
    tryLimit: row.try_limit,
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    delayUntil: row.delay_until,
    pid: row.pid,
    host: row.host,
    resultPreview: row.preview,
  };
}

/** Checks a filter from outside (CLI flags, query strings); errors name the field. */
export function checkFilter(filter: RequestFilter): void {
  if (filter.state !== undefined && !requestStates.includes(filter.state)) {
    throw new TaskRunnerError(
      'CONFIG_INVALID',
      `state must be one of ${requestStates.join(', ')}; got ${JSON.stringify(filter.state)}`,
    );
  }
  for (const key of ['taskClassName', 'queue', 'text'] as const) {
    const value = filter[key];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0 || value.length > 1000)) {
      throw new TaskRunnerError('CONFIG_INVALID', `${key} must be a non-empty string of at most 1000 characters`);
    }
  }
}

/** The WHERE conditions of a filter (always at least `true`). */
export function filterConditions(filter: RequestFilter): RawBuilder<unknown> {
  checkFilter(filter);
  const parts: RawBuilder<unknown>[] = [sql`true`];
  if (filter.state !== undefined) parts.push(sql.raw(`(${stateConditionSql(filter.state)})`));
  if (filter.taskClassName !== undefined) {
    // The first condition is the one the (left(task_class_name, 200), id) index serves.
    parts.push(
      sql`left(task_class_name, 200) = left(${filter.taskClassName}, 200) AND task_class_name = ${filter.taskClassName}`,
    );
  }
  if (filter.queue !== undefined) parts.push(sql`queue = ${filter.queue}`);
  if (filter.text !== undefined) parts.push(sql`strpos(lower(result_text), lower(${filter.text})) > 0`);
  return sql.join(parts, sql` AND `);
}

/** A page of requests, newest first. */
export async function requestsList(db: SqlDb, table: TableName, params: ListRequestsParams = {}): Promise<RequestPage> {
  const limit = params.limit ?? 50;
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new TaskRunnerError(
      'CONFIG_INVALID',
      `limit must be a whole number from 1 to 1000, got ${JSON.stringify(params.limit)}`,
    );
  }
  if (params.before !== undefined && !/^\d{1,19}$/.test(params.before)) {
    throw new TaskRunnerError('CONFIG_INVALID', `before must be a request id, got ${JSON.stringify(params.before)}`);
  }
  const window = params.textWindow ?? textSearchWindow;
  if (!Number.isInteger(window) || window < 1) {
    throw new TaskRunnerError(
      'CONFIG_INVALID',
      `textWindow must be a whole number above 0, got ${JSON.stringify(params.textWindow)}`,
    );
  }
  if (params.text !== undefined) return textSearch(db, table, params, limit, window);
  const before = params.before === undefined ? sql`` : sql`AND id < ${params.before}::bigint`;
  const { rows } = await sql<SummaryRow>`
    SELECT ${summaryColumns} FROM ${sql.table(table.qualified)} AS r
    WHERE ${filterConditions(params)} ${before}
    ORDER BY r.id DESC LIMIT ${limit + 1}`.execute(db);
  const more = rows.length > limit;
  const requests = rows.slice(0, limit).map(summaryOf);
  return { requests, nextBefore: more ? requests[requests.length - 1]!.id : null, searchedDownTo: null };
}

/** A page of a text search: within one window of ids, under a statement timeout (see `textSearchWindow`). */
async function textSearch(
  db: SqlDb,
  table: TableName,
  params: ListRequestsParams,
  limit: number,
  window: number,
): Promise<RequestPage> {
  const ref = sql.table(table.qualified);
  return db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL statement_timeout = ${textSearchTimeoutMs}`).execute(trx);
    // The window's top: below `before`, else above the newest row (max(id) reads the index's end).
    const top =
      params.before === undefined
        ? ((await sql<{ top: string | null }>`SELECT (max(id) + 1)::text AS top FROM ${ref}`.execute(trx)).rows[0]!
            .top ?? '1')
        : params.before;
    const floor = (BigInt(top) - BigInt(window)).toString();
    let rows: SummaryRow[];
    try {
      ({ rows } = await sql<SummaryRow>`
        SELECT ${summaryColumns} FROM ${ref} AS r
        WHERE ${filterConditions(params)} AND r.id < ${top}::bigint AND r.id >= ${floor}::bigint
        ORDER BY r.id DESC LIMIT ${limit + 1}`.execute(trx));
    } catch (error) {
      if ((error as { code?: string }).code === '57014') {
        throw new TaskRunnerError(
          'CONFIG_INVALID',
          `text search stopped after ${textSearchTimeoutMs} ms in ids ${floor} to ${top}; ` +
            'narrow it by state, task or queue',
        );
      }
      throw error;
    }
    const requests = rows.slice(0, limit).map(summaryOf);
    if (rows.length > limit)
      return {
        requests,
        nextBefore: requests[requests.length - 1]!.id,
        searchedDownTo: requests[requests.length - 1]!.id,
      };
    // The window is searched through: older rows, if any, are the next page's.
    const older = (
      await sql<{ older: boolean }>`SELECT EXISTS (SELECT 1 FROM ${ref} WHERE id < ${floor}::bigint) AS older`.execute(
        trx,
      )
    ).rows[0]!;
    return { requests, nextBefore: older.older ? floor : null, searchedDownTo: floor };
  });
}

/** One request with everything known about it, or null. */
export async function requestShow(db: SqlDb, table: TableName, id: string): Promise<RequestDetail | null> {
  const { rows } = await sql<
    SummaryRow &
      Pick<
        TaskRequestRow,
        | 'options'
        | 'result_text'
        | 'thread_id'
        | 'launcher_id'
        | 'lease_expires_at'
        | 'crashes'
        | 'timeout_ms'
        | 'cancel_requested_at'
        | 'traceparent'
      >
  >`
    SELECT ${summaryColumns}, options, result_text, thread_id, launcher_id, lease_expires_at, crashes, timeout_ms,
           cancel_requested_at, traceparent
    FROM ${sql.table(table.qualified)} WHERE id = ${id}::bigint`.execute(db);
  const row = rows[0];
  if (row === undefined) return null;
  return {
    ...summaryOf(row),
    options: row.options,
    resultText: row.result_text,
    threadId: row.thread_id,
    launcherId: row.launcher_id,
    leaseExpiresAt: row.lease_expires_at,
    crashes: row.crashes,
    timeoutMs: row.timeout_ms,
    cancelRequestedAt: row.cancel_requested_at,
    traceparent: row.traceparent,
    attempts: await attemptsOfRequest(db, table, id),
  };
}

/** One whole row as stored, or null (what `runner.find` and the client's `find` return). */
export async function requestFind(db: SqlDb, table: TableName, id: string): Promise<TaskRequestRow | null> {
  const { rows } = await sql<TaskRequestRow>`
    SELECT * FROM ${sql.table(table.qualified)} WHERE id = ${id}::bigint`.execute(db);
  const row = rows[0];
  // A Rails-era table has integer ids, which pg returns as numbers: ids are text throughout.
  return row === undefined ? null : { ...row, id: String(row.id) };
}
