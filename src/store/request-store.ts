import { sql, type RawBuilder } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { attemptColumns, attemptsTableFor } from './attempts-table.js';
import { delayedSql, runningSql, wipedSql } from './fragments.js';
import {
  claimStatement,
  claimValues,
  launchResult,
  launchStatement,
  launchValues,
  type LaunchParams,
  type LaunchResult,
  type LaunchRow,
} from './launch-statement.js';
import { settleAssignments, type SettleRules } from './outcome-rules.js';
import type { TaskRequestRow } from './schema.js';
import { kyselyClient, type SqlClient, type Statement } from './sql-client.js';
import { storableText } from './storable-text.js';
import type { SqlDb } from './database.js';

// The shapes the launcher writes have files of their own, to keep this one to its statements;
// they are re-exported here, where the launcher meets the store.
export type { AttemptOutcome, AttemptRecord } from './attempt-outcome.js';
export type {
  AppliedOutcome,
  AttemptStartRecord,
  ClaimedRow,
  ClaimOrder,
  LaunchParams,
  LaunchResult,
} from './launch-statement.js';

/** A running row of this host, as the pid probe sees it. */
export interface OwnedRunningRow {
  id: string;
  pid: number;
  processIdentity: string | null;
  launcherId: string | null;
}

export interface RequestStoreParams {
  db: SqlDb;
  /**
   * Where the launch statement runs; default: through `db`. The runner passes its pg pool here,
   * so that a broken connection is dropped rather than pooled again.
   */
  sql?: SqlClient;
  table: TableName;
  /** Delay before a failed try's retry. */
  backoff: SettleRules['backoff'];
  /** Crashes (CRASHED, TIMED_OUT) after which a request is PARKED. */
  crashLimit: number;
}

/**
 * Columns of a locked running row that the history row of its try needs, as the recovery
 * statements select them (`old` below), before the UPDATE clears pid and thread_id.
 */
const lockedTryColumns = sql.raw('t.id, t.tries, t.host, t.launcher_id, t.pid, t.thread_id, t.started_at');

/**
 * The launcher's statements against the request table: the ones the outcome rules and the lease
 * govern (launch, probe, recovery, release, renewal), bound to one table and one set of rules.
 * Methods are named entity-first and take one params object; each is a single statement, batched
 * over many rows where there are many to write, because round trips, not rows, limit throughput.
 * Ids come back as text whatever the column's type (bigserial here, integer in a Rails-era table).
 *
 * The launcher's hot path is one statement, `requestsLaunch` (see launch-statement.ts); the rest
 * run at start or on timers. What an operator asks or does (show, list, counts, retry, cancel,
 * delete) are free functions over a table: inspection.ts, state-counts.ts, request-actions.ts,
 * cancel-request.ts.
 */
export class RequestStore {
  readonly #db: SqlDb;
  readonly #sql: SqlClient;
  readonly #table;
  readonly #attempts;
  readonly #rules: SettleRules;
  readonly #launch: Statement;
  readonly #claim: Statement;

  constructor(params: RequestStoreParams) {
    this.#db = params.db;
    this.#sql = params.sql ?? kyselyClient(params.db);
    this.#table = sql.table(params.table.qualified);
    this.#attempts = sql.table(attemptsTableFor(params.table).qualified);
    this.#rules = {
      crashLimit: params.crashLimit,
      backoff: { baseMs: params.backoff.baseMs, maxMs: params.backoff.maxMs },
    };
    this.#launch = launchStatement(params.table, this.#rules);
    this.#claim = claimStatement(params.table);
  }

  /**
   * Records ended tries and started ones, and claims rows, in one statement (see
   * launch-statement.ts for what each part guarantees). A claim with nothing else to write goes
   * as the claim statement alone, which PostgreSQL parses and plans in a third of the time.
   */
  async requestsLaunch(params: LaunchParams): Promise<LaunchResult> {
    const claimOnly = params.outcomes.length === 0 && params.starts.length === 0 && params.claim !== null;
    const rows = claimOnly
      ? await this.#sql.query<LaunchRow>(this.#claim, claimValues(params.launcherId, params.claim!))
      : await this.#sql.query<LaunchRow>(this.#launch, launchValues(params));
    return launchResult(rows);
  }

  /**
   * Ends the tries of rows that nobody will report on (process gone, lease expired, launcher
   * shutting down) in one statement: `picked` selects and locks them (with `lockedTryColumns`
   * and a `text` column); each gets the crash and cancel rules and one history row, pid and
   * thread taken from the locked row before the UPDATE clears them.
   *
   * Rows of a launcher that died are told apart by `started_at`: a try that started counts as a
   * crash; a row the launcher held in its local queue and never started keeps the try its claim
   * counted (as a claim counts one) but counts no crash, so a launcher's death costs its queued
   * neighbours no crash, while a task that kills its launcher is charged one each time.
   */
  async #endUnreportedTries(picked: RawBuilder<unknown>, how: { result: string; refund: boolean }): Promise<string[]> {
    const result = `'${how.result}'`;
    const crash = how.refund ? 'false' : '(old.started_at IS NOT NULL)';
    const text = how.refund
      ? 'old.text'
      : `CASE WHEN old.started_at IS NULL THEN 'never started: ' || old.text ELSE old.text END`;
    const settle = settleAssignments({ result, text, crash, endNow: 'false', refund: String(how.refund) }, this.#rules);
    const { rows } = await sql<Pick<TaskRequestRow, 'id'>>`
      WITH old AS MATERIALIZED (${picked}),
      done AS (
        UPDATE ${this.#table} AS t
        SET ${sql.raw(settle)}
        FROM old WHERE t.id = old.id
        RETURNING t.id
      ),
      history AS (
        INSERT INTO ${this.#attempts} (${attemptColumns})
        SELECT old.id, old.tries, old.host, old.launcher_id, old.pid, old.thread_id, NULL, old.started_at, ${sql.raw(result)},
               NULL, NULL, NULL, ${sql.raw(text)}
        FROM done JOIN old ON old.id = done.id
      )
      SELECT id::text AS id FROM done ORDER BY done.id`.execute(this.#db);
    return rows.map((row) => row.id);
  }

  /** Running rows whose pid lives on `host`: the pid probe's input. */
  async requestsListRunningOnHost(params: { host: string }): Promise<OwnedRunningRow[]> {
    const { rows } = await sql<Pick<TaskRequestRow, 'id' | 'process_identity' | 'launcher_id'> & { pid: number }>`
      SELECT id::text AS id, pid, process_identity, launcher_id FROM ${this.#table}
      WHERE host = ${params.host} AND ${sql.raw(runningSql())}`.execute(this.#db);
    return rows.map((row) => ({
      id: row.id,
      pid: row.pid,
      processIdentity: row.process_identity,
      launcherId: row.launcher_id,
    }));
  }

  /**
   * Marks rows whose process is gone as CRASHED, with the crash and cancel rules of the launch
   * statement (PARKED at the limit; CANCELLED when a cancel was asked for) and a history row
   * each; otherwise the row is runnable after the backoff, or ends when its tries are used up.
   * Guarded on pid and identity: a row that moved on since the probe read it is untouched.
   */
  async requestsMarkCrashed(params: {
    host: string;
    rows: readonly { id: string; pid: number; processIdentity: string | null; text: string }[];
  }): Promise<string[]> {
    if (params.rows.length === 0) return [];
    const r = params.rows;
    return this.#endUnreportedTries(
      sql`
      SELECT ${lockedTryColumns}, v.text FROM ${this.#table} AS t
      JOIN unnest(${r.map((x) => x.id)}::bigint[], ${r.map((x) => x.pid)}::int[],
                  ${r.map((x) => x.processIdentity)}::text[], ${r.map((x) => storableText(x.text))}::text[])
           AS v(id, pid, identity, text) ON t.id = v.id
      WHERE t.pid = v.pid AND t.process_identity IS NOT DISTINCT FROM v.identity
        AND t.host = ${params.host} AND t.completed_at IS NULL
      FOR UPDATE OF t`,
      { result: 'CRASHED', refund: false },
    );
  }

  /**
   * Releases rows of this launcher that no outcome will end (shutdown's last step), given by id or
   * all of them: the try is given back and the row is runnable at once, or ends CANCELLED when a
   * cancel was asked for. Rows it held but never started, and rows whose outcome could not be
   * written, are what this normally finds. Each gets an INTERRUPTED history row.
   */
  async requestsReleaseByLauncher(params: {
    launcherId: string;
    text: string;
    ids?: readonly string[];
  }): Promise<string[]> {
    const only = params.ids === undefined ? sql`` : sql`AND t.id = ANY(${[...params.ids]}::bigint[])`;
    return this.#endUnreportedTries(
      sql`
      SELECT ${lockedTryColumns}, ${storableText(params.text)}::text AS text FROM ${this.#table} AS t
      WHERE t.launcher_id = ${params.launcherId} AND ${sql.raw(runningSql('t'))} ${only}
      FOR UPDATE OF t`,
      { result: 'INTERRUPTED', refund: true },
    );
  }

  /**
   * Extends the lease of every row this launcher holds. Returns the ids renewed, so the launcher
   * learns which rows are still its own (one that is missing was recovered elsewhere after its
   * lease ran out, while this launcher was frozen or cut off), and those whose cancel was asked
   * for: the launcher kills them, which covers a cancel NOTIFY it missed (reconnecting).
   *
   * A row whose pid was cleared by hand while the lease held (a reschedule) is still this
   * launcher's until it has stopped the try: it is returned in `renewed` and `wiped`, and the
   * launcher stops its try and writes it RESCHEDULED, which clears the lease (or releases it with
   * `requestsReleaseWiped`). Its lease is renewed once a quarter of it has gone, so on every
   * periodic renewal (a third of the lease apart) and it cannot run out under a try being
   * stopped, but not on the renewal that follows at once: renewing a row without a pid wakes its
   * launcher through the notify trigger, which renews again, and renewing every time would make
   * the two call each other in a loop.
   * Both arms have a partial index (`running_idx`, `wiped_idx`): PostgreSQL ORs two bitmap scans.
   */
  async requestsRenewLeases(params: {
    launcherId: string;
    leaseMs: number;
  }): Promise<{ renewed: string[]; cancelled: string[]; wiped: string[] }> {
    const lease = sql`${params.leaseMs} * interval '1 millisecond'`;
    const { rows } = await sql<Pick<TaskRequestRow, 'id'> & { cancel: boolean; wiped: boolean }>`
      WITH wiped AS (
        SELECT id FROM ${this.#table}
        WHERE launcher_id = ${params.launcherId} AND ${sql.raw(wipedSql())} AND lease_expires_at > now()
      ),
      renewed AS (
        UPDATE ${this.#table} SET lease_expires_at = now() + ${lease}
        WHERE launcher_id = ${params.launcherId} AND completed_at IS NULL
          AND (pid IS NOT NULL OR (pid IS NULL AND lease_expires_at IS NOT NULL AND lease_expires_at > now()
                                   AND lease_expires_at < now() + ${lease} * 0.75))
        RETURNING id, cancel_requested_at IS NOT NULL AS cancel, pid IS NULL AS wiped
      )
      SELECT id::text AS id, cancel, false AS wiped FROM renewed WHERE NOT wiped
      UNION ALL
      SELECT id::text, false, true FROM wiped`.execute(this.#db);
    const byId = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
    return {
      renewed: rows.map((row) => row.id).sort(byId),
      cancelled: rows
        .filter((row) => row.cancel)
        .map((row) => row.id)
        .sort(byId),
      wiped: rows
        .filter((row) => row.wiped)
        .map((row) => row.id)
        .sort(byId),
    };
  }

  /**
   * Clears the lease of rows of this launcher whose pid was cleared by hand and for which it has
   * no try (none left to stop, no outcome to write): the claim may take them at once. No history
   * row: no try of this launcher's ran for them.
   */
  async requestsReleaseWiped(params: { launcherId: string; ids: readonly string[] }): Promise<string[]> {
    if (params.ids.length === 0) return [];
    const { rows } = await sql<Pick<TaskRequestRow, 'id'>>`
      UPDATE ${this.#table} SET lease_expires_at = NULL
      WHERE id = ANY(${[...params.ids]}::bigint[]) AND launcher_id = ${params.launcherId}
        AND ${sql.raw(wipedSql())}
      RETURNING id::text AS id`.execute(this.#db);
    return rows.map((row) => row.id);
  }

  /**
   * Recovers rows of other hosts whose launcher stopped renewing its lease: the pid probe cannot
   * see another host's processes, so an expired lease is the only sign that they are gone. Same
   * rules and history as `requestsMarkCrashed`. Rows locked at the moment (their launcher writing
   * an outcome after all) are skipped, not waited for.
   */
  async requestsRecoverExpired(params: { host: string }): Promise<string[]> {
    return this.#endUnreportedTries(
      sql`
      SELECT ${lockedTryColumns},
             'lease expired: launcher ' || COALESCE(t.launcher_id, '?') || ' on host ' || COALESCE(t.host, '?')
               || ' stopped renewing it (pid ' || t.pid || ')' AS text
      FROM ${this.#table} AS t
      WHERE ${sql.raw(runningSql('t'))} AND t.lease_expires_at < now()
        AND t.host IS DISTINCT FROM ${params.host}
      FOR UPDATE OF t SKIP LOCKED`,
      { result: 'CRASHED', refund: false },
    );
  }

  /**
   * Gives back rows whose pid was cleared by hand and whose launcher then stopped renewing their
   * lease before it had stopped the try (it died, or was cut off): RESCHEDULED, the try refunded,
   * runnable at once; the statement's wake-up tells every launcher. Any host's: a launcher alive
   * keeps the lease of such a row renewed until it has written it. Reads `wiped_idx` only.
   */
  async requestsRecoverWiped(): Promise<string[]> {
    return this.#endUnreportedTries(
      sql`
      SELECT ${lockedTryColumns},
             'pid cleared by hand; launcher ' || COALESCE(t.launcher_id, '?') || ' on host ' || COALESCE(t.host, '?')
               || ' stopped renewing its lease before it had stopped the try' AS text
      FROM ${this.#table} AS t
      WHERE ${sql.raw(wipedSql('t'))} AND t.lease_expires_at < now()
      FOR UPDATE OF t SKIP LOCKED`,
      { result: 'RESCHEDULED', refund: true },
    );
  }

  /**
   * Ends, FAILED with the reason, waiting rows whose `try_limit` leaves no try at all (0 or less,
   * as a careless INSERT can write): they would otherwise never run and never end.
   */
  async requestsEndHopeless(): Promise<string[]> {
    const { rows } = await sql<Pick<TaskRequestRow, 'id'>>`
      UPDATE ${this.#table}
      SET completed_at = now(), result = 'FAILED',
          result_text = 'no try left: try_limit is ' || try_limit || ' and tries is ' || COALESCE(tries, 0)
      WHERE completed_at IS NULL AND pid IS NULL AND try_limit <= 0
      RETURNING id::text AS id`.execute(this.#db);
    return rows.map((row) => row.id).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
  }

  /** Milliseconds until the nearest future `delay_until` of a waiting row, or null (an infinite delay never comes). */
  async requestsNextDelayMs(params: { queues: readonly string[] | null }): Promise<number | null> {
    const queueFilter = params.queues === null ? sql`` : sql`AND queue = ANY(${[...params.queues]}::text[])`;
    const { rows } = await sql<{ ms: number | null }>`
      SELECT (extract(epoch FROM min(delay_until) - now()) * 1000)::float8 AS ms FROM ${this.#table}
      WHERE ${sql.raw(delayedSql())} AND delay_until < 'infinity' ${queueFilter}`.execute(this.#db);
    const ms = rows[0]?.ms;
    return ms === null || ms === undefined ? null : Math.max(0, Math.ceil(ms));
  }
}
