import { sql, type Kysely } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import type { RetryBackoffOptions } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';
import type { ClaimedRequest, RequestResultValue, TaskRequestRow } from './schema.js';

/** One running try's pid, written once its process has started. */
export interface AttemptPid {
  id: string;
  tries: number;
  pid: number;
  processIdentity: string | null;
  threadId: number | null;
}

/** How one try ended, to be written back to its row. */
export interface AttemptOutcome {
  id: string;
  tries: number;
  result: RequestResultValue;
  resultText: string | null;
  /** End the request now whatever tries remain (FINISHED, or a permanent error). */
  final: boolean;
  /** Give the try back and make the row runnable at once (launcher shutdown). */
  refund: boolean;
}

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
  /** Ended without FINISHED: tries ran out or the failure was permanent. */
  givenUp: number;
}

export interface RequestStoreParams {
  db: Kysely<any>;
  table: TableName;
  backoff: Readonly<Required<RetryBackoffOptions>>;
}

const claimedColumns = sql.raw(
  't.id::text AS id, t.task_class_name, t.options, t.tries, t.try_limit, t.queue, t.priority, t.created_at, t.started_at',
);

/**
 * Every statement the launcher runs against the request table. Methods are named entity-first
 * and take one params object; each is a single statement, batched over many rows where the
 * launcher has many to write, because round trips, not rows, limit throughput. Ids come back as
 * text whatever the column's type (bigserial here, integer in a Rails-era table).
 */
export class RequestStore {
  readonly #db: Kysely<any>;
  readonly #table;
  readonly #backoff: Readonly<Required<RetryBackoffOptions>>;

  constructor(params: RequestStoreParams) {
    this.#db = params.db;
    this.#table = sql.table(params.table.qualified);
    this.#backoff = params.backoff;
  }

  /** Delay of the next try in SQL, from the row's `tries`: min(base * 2^(tries-1), max) ms. */
  #retryAt() {
    return sql`now() + LEAST(${this.#backoff.baseMs}::float8 * power(2, LEAST(GREATEST(t.tries - 1, 0), 30)),
      ${this.#backoff.maxMs}::float8) * interval '1 millisecond'`;
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
      queue: string; priority: number; created_at: Date; started_at: Date;
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
   * Writes the outcomes of finished tries in one statement. A row ends (`completed_at` set) when
   * it FINISHED, when the outcome is final, or when its tries are used up; otherwise it becomes
   * runnable again after the backoff (at once for a refunded try). The guard on launcher and try
   * number means a row recovered by someone else meanwhile is not overwritten; the ids written
   * are returned so the caller can tell.
   */
  async requestsComplete(params: { launcherId: string; outcomes: readonly AttemptOutcome[] }): Promise<Set<string>> {
    if (params.outcomes.length === 0) return new Set();
    const o = params.outcomes;
    const { rows } = await sql<{ id: string }>`
      UPDATE ${this.#table} AS t
      SET pid = NULL, process_identity = NULL, thread_id = NULL, lease_expires_at = NULL,
          result = v.result, result_text = v.result_text,
          tries = t.tries - CASE WHEN v.refund THEN 1 ELSE 0 END,
          completed_at = CASE WHEN v.final OR (NOT v.refund AND t.tries >= t.try_limit) THEN now() END,
          delay_until = CASE
            WHEN v.final OR (NOT v.refund AND t.tries >= t.try_limit) THEN t.delay_until
            WHEN v.refund THEN NULL
            ELSE ${this.#retryAt()} END
      FROM unnest(${o.map((x) => x.id)}::bigint[], ${o.map((x) => x.tries)}::int[], ${o.map((x) => x.result)}::text[],
                  ${o.map((x) => x.resultText)}::text[], ${o.map((x) => x.final)}::bool[], ${o.map((x) => x.refund)}::bool[])
           AS v(id, tries, result, result_text, final, refund)
      WHERE t.id = v.id AND t.tries = v.tries AND t.launcher_id = ${params.launcherId} AND t.pid IS NOT NULL
      RETURNING t.id::text AS id`.execute(this.#db);
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
   * Marks rows whose process is gone as CRASHED and makes them runnable after the backoff (or
   * ends them when tries are used up). Guarded on pid and identity: a row that moved on since the
   * probe read it is untouched.
   */
  async requestsMarkCrashed(params: {
    host: string;
    rows: readonly { id: string; pid: number; processIdentity: string | null; text: string }[];
  }): Promise<string[]> {
    if (params.rows.length === 0) return [];
    const r = params.rows;
    const { rows } = await sql<{ id: string }>`
      UPDATE ${this.#table} AS t
      SET pid = NULL, process_identity = NULL, thread_id = NULL, lease_expires_at = NULL,
          result = 'CRASHED', result_text = v.text,
          completed_at = CASE WHEN t.tries >= t.try_limit THEN now() END,
          delay_until = CASE WHEN t.tries >= t.try_limit THEN t.delay_until ELSE ${this.#retryAt()} END
      FROM unnest(${r.map((x) => x.id)}::bigint[], ${r.map((x) => x.pid)}::int[],
                  ${r.map((x) => x.processIdentity)}::text[], ${r.map((x) => x.text)}::text[])
           AS v(id, pid, identity, text)
      WHERE t.id = v.id AND t.pid = v.pid AND t.process_identity IS NOT DISTINCT FROM v.identity
        AND t.host = ${params.host} AND t.completed_at IS NULL
      RETURNING t.id::text AS id`.execute(this.#db);
    return rows.map((row) => row.id);
  }

  /**
   * Releases every row this launcher still holds (shutdown's last step): the try is given back
   * and the row is runnable at once. Normally none is left; this covers writes that failed.
   */
  async requestsReleaseByLauncher(params: { launcherId: string; text: string }): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      UPDATE ${this.#table} AS t
      SET pid = NULL, process_identity = NULL, thread_id = NULL, lease_expires_at = NULL,
          result = 'INTERRUPTED', result_text = ${params.text}, tries = GREATEST(t.tries - 1, 0), delay_until = NULL
      WHERE t.launcher_id = ${params.launcherId} AND t.pid IS NOT NULL AND t.completed_at IS NULL
      RETURNING t.id::text AS id`.execute(this.#db);
    return rows.map((row) => row.id);
  }

  /** Extends the lease of every row this launcher runs. */
  async requestsRenewLeases(params: { launcherId: string; leaseMs: number }): Promise<number> {
    const result = await sql`
      UPDATE ${this.#table} SET lease_expires_at = now() + ${params.leaseMs} * interval '1 millisecond'
      WHERE launcher_id = ${params.launcherId} AND pid IS NOT NULL AND completed_at IS NULL`.execute(this.#db);
    return Number(result.numAffectedRows ?? 0n);
  }

  /**
   * Recovers rows of other hosts whose launcher stopped renewing its lease: the pid probe cannot
   * see another host's processes, so an expired lease is the only sign that they are gone.
   */
  async requestsRecoverExpired(params: { host: string }): Promise<string[]> {
    const { rows } = await sql<{ id: string }>`
      UPDATE ${this.#table} AS t
      SET pid = NULL, process_identity = NULL, thread_id = NULL, lease_expires_at = NULL, result = 'CRASHED',
          result_text = 'lease expired: launcher ' || COALESCE(t.launcher_id, '?') || ' on host ' || COALESCE(t.host, '?')
            || ' stopped renewing it (pid ' || t.pid || ')',
          completed_at = CASE WHEN t.tries >= t.try_limit THEN now() END,
          delay_until = CASE WHEN t.tries >= t.try_limit THEN t.delay_until ELSE ${this.#retryAt()} END
      WHERE t.pid IS NOT NULL AND t.completed_at IS NULL AND t.lease_expires_at < now()
        AND t.host IS DISTINCT FROM ${params.host}
      RETURNING t.id::text AS id`.execute(this.#db);
    return rows.map((row) => row.id);
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

  /** Makes an ended or waiting request runnable now, with at least one more try. */
  async requestsRetry(params: { id: string }): Promise<void> {
    const { rows } = await sql<{ id: string; pid: number | null }>`
      WITH target AS (SELECT id, pid FROM ${this.#table} WHERE id = ${params.id}::bigint FOR UPDATE)
      UPDATE ${this.#table} AS t
      SET completed_at = NULL, delay_until = NULL, try_limit = GREATEST(t.try_limit, t.tries + 1)
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
                           OR (completed_at IS NULL AND pid IS NULL AND tries >= try_limit)) AS "givenUp"
      FROM ${this.#table}`.execute(this.#db);
    const row = rows[0]!;
    return {
      waiting: Number(row.waiting), delayed: Number(row.delayed), running: Number(row.running),
      finished: Number(row.finished), givenUp: Number(row.givenUp),
    };
  }
}
