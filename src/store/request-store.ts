import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import type { RetryBackoffOptions } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';
import { attemptsOfRequest, type RequestAttempt } from './attempt-history.js';
import { attemptColumns, attemptsTableFor } from './attempts-table.js';
import type { AttemptOutcome, AttemptPid } from './attempt-outcome.js';
import { cancelRequest, type CancelResult } from './cancel-request.js';
import { settleAssignments, type EndedTryTerms } from './outcome-rules.js';
import type { ClaimedRequest, RequestResultValue, TaskRequestRow } from './schema.js';

// The shapes the launcher writes have a file of their own, to keep this one to its statements;
// they are re-exported here, where the launcher meets the store.
export type { AttemptOutcome, AttemptPid, AttemptRecord } from './attempt-outcome.js';
export type { CancelResult } from './cancel-request.js';
export type { RequestAttempt } from './attempt-history.js';

/** A running row of this host, as the pid probe sees it. */
export interface OwnedRunningRow {
  id: string;
  pid: number;
  processIdentity: string | null;
  launcherId: string | null;
}

export interface StatusCounts {
  waiting: number;
  delayed: number;
  running: number;
  finished: number;
  /** Ended without FINISHED: tries ran out, the failure was permanent, or it was cancelled or parked. */
  givenUp: number;
  /** Of `givenUp`: ended CANCELLED. */
  cancelled: number;
  /** Of `givenUp`: ended PARKED (too many crashes). */
  parked: number;
}

export interface RequestStoreParams {
  db: Kysely<any>;
  table: TableName;
  backoff: Readonly<Required<RetryBackoffOptions>>;
  /** Crashes (CRASHED, TIMED_OUT) after which a request is PARKED. */
  crashLimit: number;
}

const claimedColumns = sql.raw(
  't.id::text AS id, t.task_class_name, t.options, t.tries, t.try_limit, t.queue, t.priority, t.created_at, t.started_at, ' +
    't.timeout_ms, t.crashes',
);

/**
 * Columns of a locked running row that the history row of its try needs, as the recovery
 * statements select them (`old` below), before the UPDATE clears pid and thread_id.
 */
const lockedTryColumns = sql.raw('t.id, t.tries, t.host, t.launcher_id, t.pid, t.thread_id, t.started_at');

/**
 * Every statement the launcher runs against the request table. Methods are named entity-first
 * and take one params object; each is a single statement, batched over many rows where the
 * launcher has many to write, because round trips, not rows, limit throughput. Ids come back as
 * text whatever the column's type (bigserial here, integer in a Rails-era table).
 */
export class RequestStore {
  readonly #db: Kysely<any>;
  readonly #table;
  readonly #attempts;
  readonly #tableName: TableName;
  readonly #backoff: Readonly<Required<RetryBackoffOptions>>;
  readonly #crashLimit: number;

  constructor(params: RequestStoreParams) {
    this.#db = params.db;
    this.#tableName = params.table;
    this.#table = sql.table(params.table.qualified);
    this.#attempts = sql.table(attemptsTableFor(params.table).qualified);
    this.#backoff = params.backoff;
    this.#crashLimit = params.crashLimit;
  }

  /** Delay of the next try in SQL, from the row's `tries`: min(base * 2^(tries-1), max) ms. */
  #retryAt() {
    return sql`now() + LEAST(${this.#backoff.baseMs}::float8 * power(2, LEAST(GREATEST(t.tries - 1, 0), 30)),
      ${this.#backoff.maxMs}::float8) * interval '1 millisecond'`;
  }

  #settle(terms: EndedTryTerms): RawBuilder<unknown> {
    return settleAssignments(terms, { crashLimit: this.#crashLimit, retryAt: this.#retryAt() });
  }

  /**
   * Ends the tries of rows that nobody will report on (process gone, lease expired, launcher
   * shutting down) in one statement: `picked` selects and locks them (with `lockedTryColumns`
   * and a `text` column); each gets the crash and cancel rules and one history row, pid and
   * thread taken from the locked row before the UPDATE clears them.
   */
  async #endUnreportedTries(
    picked: RawBuilder<unknown>,
    how: { result: RequestResultValue; crash: boolean; refund: boolean },
  ): Promise<string[]> {
    const result = sql.lit(how.result);
    const { rows } = await sql<{ id: string }>`
      WITH old AS MATERIALIZED (${picked}),
      done AS (
        UPDATE ${this.#table} AS t
        SET ${this.#settle({ result, text: sql`old.text`, crash: sql.lit(how.crash), final: sql.lit(false), refund: sql.lit(how.refund) })}
        FROM old WHERE t.id = old.id
        RETURNING t.id
      ),
      history AS (
        INSERT INTO ${this.#attempts} (${attemptColumns})
        SELECT old.id, old.tries, old.host, old.launcher_id, old.pid, old.thread_id, NULL, old.started_at, ${result},
               NULL, NULL, NULL, old.text
        FROM done JOIN old ON old.id = done.id
      )
      SELECT id::text AS id FROM done ORDER BY id`.execute(this.#db);
    return rows.map((row) => row.id);
  }

  /**
   * Claims up to `limit` runnable rows for this launcher in one statement. The inner SELECT locks
   * the rows it picks and skips rows another launcher has locked, so concurrent launchers never
   * pick the same row and never wait on each other; the UPDATE marks them running (pid set to the
   * launcher's own until the child's is known) in the same statement, so no window exists in
   * which a picked row is still runnable. `limit` is the launcher's free slots, never more.
   * MATERIALIZED keeps the planner from inlining the pick into the UPDATE, where it could be
   * evaluated more than once and lock more rows than `limit`.
   */
  async requestsClaim(params: {
    limit: number;
    launcherId: string;
    host: string;
    launcherPid: number;
    processIdentity: string | null;
    queues: readonly string[] | null;
    leaseMs: number;
  }): Promise<ClaimedRequest[]> {
    if (params.limit <= 0) return [];
    const queueFilter = params.queues === null ? sql`` : sql`AND queue = ANY(${[...params.queues]}::text[])`;
    const { rows } = await sql<{
      id: string; task_class_name: string; options: string | null; tries: number; try_limit: number;
      queue: string; priority: number; created_at: Date; started_at: Date; timeout_ms: number | null; crashes: number;
    }>`
      WITH picked AS MATERIALIZED (
        SELECT id FROM ${this.#table}
        WHERE completed_at IS NULL AND pid IS NULL AND tries < try_limit
          AND (delay_until IS NULL OR delay_until <= now()) ${queueFilter}
        ORDER BY priority DESC, id
        LIMIT ${params.limit}
        FOR UPDATE SKIP LOCKED
      )
      UPDATE ${this.#table} AS t
      SET pid = ${params.launcherPid}, process_identity = ${params.processIdentity}, host = ${params.host},
          launcher_id = ${params.launcherId}, thread_id = NULL, tries = t.tries + 1, started_at = now(),
          lease_expires_at = now() + ${params.leaseMs} * interval '1 millisecond'
      FROM picked WHERE t.id = picked.id
      RETURNING ${claimedColumns}`.execute(this.#db);
    return rows
      .map((row) => ({
        id: row.id,
        taskClassName: row.task_class_name,
        options: row.options,
        tries: row.tries,
        tryLimit: row.try_limit,
        queue: row.queue,
        priority: row.priority,
        createdAt: row.created_at,
        startedAt: row.started_at,
        timeoutMs: row.timeout_ms,
        crashes: row.crashes,
      }))
      .sort((a, b) => b.priority - a.priority || Number(BigInt(a.id) - BigInt(b.id)));
  }

  /** Records the pids of started tries; rows this launcher no longer owns are left alone. */
  async requestsSetPid(params: { launcherId: string; attempts: readonly AttemptPid[] }): Promise<Set<string>> {
    if (params.attempts.length === 0) return new Set();
    const a = params.attempts;
    const { rows } = await sql<{ id: string }>`
      UPDATE ${this.#table} AS t
      SET pid = v.pid, process_identity = v.identity, thread_id = v.thread_id
      FROM unnest(${a.map((x) => x.id)}::bigint[], ${a.map((x) => x.tries)}::int[], ${a.map((x) => x.pid)}::int[],
                  ${a.map((x) => x.processIdentity)}::text[], ${a.map((x) => x.threadId)}::int[])
           AS v(id, tries, pid, identity, thread_id)
      WHERE t.id = v.id AND t.tries = v.tries AND t.launcher_id = ${params.launcherId}
        AND t.pid IS NOT NULL AND t.completed_at IS NULL
      RETURNING t.id::text AS id`.execute(this.#db);
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Writes the outcomes of ended tries, and their history rows, in one statement. The crash and
   * cancel rules come first (see `settleAssignments`): a try of a row whose cancel was asked for
   * ends it CANCELLED unless it FINISHED; a crash that reaches `crashLimit` ends it PARKED.
   * Otherwise the row ends when the try FINISHED, when the outcome is final, or when its tries are
   * used up, and else becomes runnable again after the backoff (at once for a refunded try). The
   * guard on launcher and try number means a row recovered by someone else meanwhile is not
   * overwritten, and gets no history row from here; the ids written are returned so the caller
   * can tell. An id given twice counts once (the last outcome given).
   */
  async requestsComplete(params: { launcherId: string; outcomes: readonly AttemptOutcome[] }): Promise<Set<string>> {
    if (params.outcomes.length === 0) return new Set();
    const o = params.outcomes;
    const a = o.map((x) => x.attempt);
    const fromV = { result: sql`v.result`, text: sql`v.result_text`, crash: sql`v.crash`, final: sql`v.final`, refund: sql`v.refund` };
    const { rows } = await sql<{ id: string }>`
      WITH v AS (
        SELECT DISTINCT ON (id) * FROM unnest(
          ${o.map((x) => x.id)}::bigint[], ${o.map((x) => x.tries)}::int[], ${o.map((x) => x.result)}::text[],
          ${o.map((x) => x.resultText)}::text[], ${o.map((x) => x.final)}::bool[], ${o.map((x) => x.refund)}::bool[],
          ${o.map((x) => x.crash)}::bool[], ${a.map((x) => x.pid)}::int[], ${a.map((x) => x.threadId)}::int[],
          ${a.map((x) => x.mode)}::text[], ${a.map((x) => x.startedAt?.toISOString() ?? null)}::timestamptz[],
          ${a.map((x) => x.exitCode)}::int[], ${a.map((x) => x.signal)}::text[], ${a.map((x) => x.peakMemoryBytes)}::bigint[]
        ) WITH ORDINALITY AS u(id, tries, result, result_text, final, refund, crash, pid, thread_id, mode, started_at,
                               exit_code, signal, peak_memory_bytes, n)
        ORDER BY id, n DESC
      ),
      done AS (
        UPDATE ${this.#table} AS t
        SET ${this.#settle(fromV)}
        FROM v
        WHERE t.id = v.id AND t.tries = v.tries AND t.launcher_id = ${params.launcherId} AND t.pid IS NOT NULL
        RETURNING t.id, t.host, t.launcher_id, t.started_at
      ),
      history AS (
        INSERT INTO ${this.#attempts} (${attemptColumns})
        SELECT done.id, v.tries, done.host, done.launcher_id, v.pid, v.thread_id, v.mode, COALESCE(v.started_at, done.started_at),
               v.result, v.exit_code, v.signal, v.peak_memory_bytes, CASE WHEN v.result = 'FINISHED' THEN NULL ELSE v.result_text END
        FROM done JOIN v ON v.id = done.id
      )
      SELECT id::text AS id FROM done`.execute(this.#db);
    return new Set(rows.map((row) => row.id));
  }

  /** Running rows whose pid lives on `host`: the pid probe's input. */
  async requestsListRunningOnHost(params: { host: string }): Promise<OwnedRunningRow[]> {
    const { rows } = await sql<{ id: string; pid: number; process_identity: string | null; launcher_id: string | null }>`
      SELECT id::text AS id, pid, process_identity, launcher_id FROM ${this.#table}
      WHERE host = ${params.host} AND pid IS NOT NULL AND completed_at IS NULL`.execute(this.#db);
    return rows.map((row) => ({
      id: row.id, pid: row.pid, processIdentity: row.process_identity, launcherId: row.launcher_id,
    }));
  }

  /**
   * Marks rows whose process is gone as CRASHED, with the crash and cancel rules of
   * `requestsComplete` (a crash counts; PARKED at the limit; CANCELLED when a cancel was asked
   * for) and a history row each; otherwise the row is runnable after the backoff, or ends when its
   * tries are used up. Guarded on pid and identity: a row that moved on since the probe read it
   * is untouched.
   */
  async requestsMarkCrashed(params: {
    host: string;
    rows: readonly { id: string; pid: number; processIdentity: string | null; text: string }[];
  }): Promise<string[]> {
    if (params.rows.length === 0) return [];
    const r = params.rows;
    return this.#endUnreportedTries(sql`
      SELECT ${lockedTryColumns}, v.text FROM ${this.#table} AS t
      JOIN unnest(${r.map((x) => x.id)}::bigint[], ${r.map((x) => x.pid)}::int[],
                  ${r.map((x) => x.processIdentity)}::text[], ${r.map((x) => x.text)}::text[])
           AS v(id, pid, identity, text) ON t.id = v.id
      WHERE t.pid = v.pid AND t.process_identity IS NOT DISTINCT FROM v.identity
        AND t.host = ${params.host} AND t.completed_at IS NULL
      FOR UPDATE OF t`, { result: 'CRASHED', crash: true, refund: false });
  }

  /**
   * Releases every row this launcher still holds (shutdown's last step): the try is given back
   * and the row is runnable at once, or ends CANCELLED when a cancel was asked for. Normally none
   * is left; this covers writes that failed. Each gets an INTERRUPTED history row.
   */
  async requestsReleaseByLauncher(params: { launcherId: string; text: string }): Promise<string[]> {
    return this.#endUnreportedTries(sql`
      SELECT ${lockedTryColumns}, ${params.text}::text AS text FROM ${this.#table} AS t
      WHERE t.launcher_id = ${params.launcherId} AND t.pid IS NOT NULL AND t.completed_at IS NULL
      FOR UPDATE OF t`, { result: 'INTERRUPTED', crash: false, refund: true });
  }

  /**
   * Extends the lease of every row this launcher runs, and returns the ids of those whose cancel
   * was asked for: the launcher kills them, which covers a cancel NOTIFY it missed (reconnecting).
   */
  async requestsRenewLeases(params: { launcherId: string; leaseMs: number }): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      WITH renewed AS (
        UPDATE ${this.#table} SET lease_expires_at = now() + ${params.leaseMs} * interval '1 millisecond'
        WHERE launcher_id = ${params.launcherId} AND pid IS NOT NULL AND completed_at IS NULL
        RETURNING id, cancel_requested_at
      )
      SELECT id::text AS id FROM renewed WHERE cancel_requested_at IS NOT NULL ORDER BY id`.execute(this.#db);
    return rows.map((row) => row.id);
  }

  /**
   * Recovers rows of other hosts whose launcher stopped renewing its lease: the pid probe cannot
   * see another host's processes, so an expired lease is the only sign that they are gone. Same
   * rules and history as `requestsMarkCrashed`. Rows locked at the moment (their launcher writing
   * an outcome after all) are skipped, not waited for.
   */
  async requestsRecoverExpired(params: { host: string }): Promise<string[]> {
    return this.#endUnreportedTries(sql`
      SELECT ${lockedTryColumns},
             'lease expired: launcher ' || COALESCE(t.launcher_id, '?') || ' on host ' || COALESCE(t.host, '?')
               || ' stopped renewing it (pid ' || t.pid || ')' AS text
      FROM ${this.#table} AS t
      WHERE t.pid IS NOT NULL AND t.completed_at IS NULL AND t.lease_expires_at < now()
        AND t.host IS DISTINCT FROM ${params.host}
      FOR UPDATE OF t SKIP LOCKED`, { result: 'CRASHED', crash: true, refund: false });
  }

  /** Milliseconds until the nearest future `delay_until` of a waiting row, or null. */
  async requestsNextDelayMs(params: { queues: readonly string[] | null }): Promise<number | null> {
    const queueFilter = params.queues === null ? sql`` : sql`AND queue = ANY(${[...params.queues]}::text[])`;
    const { rows } = await sql<{ ms: number | null }>`
      SELECT (extract(epoch FROM min(delay_until) - now()) * 1000)::float8 AS ms FROM ${this.#table}
      WHERE completed_at IS NULL AND pid IS NULL AND tries < try_limit AND delay_until > now() ${queueFilter}`.execute(this.#db);
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? null : Math.max(0, Math.ceil(ms));
  }

  /**
   * Makes an ended or waiting request runnable now, with at least one more try, whatever ended it
   * (a CANCELLED or PARKED one too): its crash count and any cancel request are cleared.
   */
  async requestsRetry(params: { id: string }): Promise<void> {
    const { rows } = await sql<{ id: string; pid: number | null }>`
      WITH target AS (SELECT id, pid FROM ${this.#table} WHERE id = ${params.id}::bigint FOR UPDATE)
      UPDATE ${this.#table} AS t
      SET completed_at = NULL, delay_until = NULL, try_limit = GREATEST(t.try_limit, t.tries + 1),
          crashes = 0, cancel_requested_at = NULL
      FROM target WHERE t.id = target.id AND target.pid IS NULL
      RETURNING t.id::text AS id, target.pid`.execute(this.#db);
    if (rows.length === 1) return;
    const found = await this.requestsFind({ id: params.id });
    if (found === null) throw new TaskRunnerError('REQUEST_NOT_FOUND', `request ${params.id} does not exist`);
    throw new TaskRunnerError('ALREADY_RUNNING', `request ${params.id} is running (pid ${found.pid}); it cannot be retried now`);
  }

  /** One whole row, or null. */
  async requestsFind(params: { id: string }): Promise<TaskRequestRow | null> {
    const { rows } = await sql<TaskRequestRow>`SELECT * FROM ${this.#table} WHERE id = ${params.id}::bigint`.execute(this.#db);
    const row = rows[0];
    // A Rails-era table has integer ids, which pg returns as numbers: ids are text throughout.
    return row === undefined ? null : { ...row, id: String(row.id) };
  }

  /** Counts of rows per derived state, for `status`. */
  async requestsCountByState(): Promise<StatusCounts> {
    const { rows } = await sql<Record<keyof StatusCounts, string>>`
      SELECT
        count(*) FILTER (WHERE completed_at IS NULL AND pid IS NULL AND tries < try_limit
                           AND (delay_until IS NULL OR delay_until <= now())) AS waiting,
        count(*) FILTER (WHERE completed_at IS NULL AND pid IS NULL AND tries < try_limit
                           AND delay_until > now()) AS delayed,
        count(*) FILTER (WHERE pid IS NOT NULL AND completed_at IS NULL) AS running,
        count(*) FILTER (WHERE completed_at IS NOT NULL AND result = 'FINISHED') AS finished,
        count(*) FILTER (WHERE (completed_at IS NOT NULL AND result IS DISTINCT FROM 'FINISHED')
                           OR (completed_at IS NULL AND pid IS NULL AND tries >= try_limit)) AS "givenUp",
        count(*) FILTER (WHERE completed_at IS NOT NULL AND result = 'CANCELLED') AS cancelled,
        count(*) FILTER (WHERE completed_at IS NOT NULL AND result = 'PARKED') AS parked
      FROM ${this.#table}`.execute(this.#db);
    const row = rows[0]!;
    return {
      waiting: Number(row.waiting), delayed: Number(row.delayed), running: Number(row.running),
      finished: Number(row.finished), givenUp: Number(row.givenUp), cancelled: Number(row.cancelled), parked: Number(row.parked),
    };
  }

  /**
   * Cancels a request: a waiting one ends CANCELLED at once and never runs; a running one gets
   * `cancel_requested_at` and a NOTIFY on `cancelChannelFor(table)` naming it, and its launcher's
   * next outcome for it ends it CANCELLED; an ended one is left as it is. One statement.
   * Throws REQUEST_NOT_FOUND for an id with no row.
   */
  requestsCancel(params: { id: string }): Promise<CancelResult> {
    return cancelRequest(this.#db, this.#tableName, params.id);
  }

  /** The history rows of one request's ended tries, oldest first. */
  attemptsList(params: { requestId: string }): Promise<RequestAttempt[]> {
    return attemptsOfRequest(this.#db, this.#tableName, params.requestId);
  }
}
