import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { TaskRunnerError } from '../errors.js';
import { attemptsTableFor } from './attempts-table.js';
import { endedSql, spentSql } from './fragments.js';
import { filterConditions, type RequestFilter } from './inspection.js';
import type { SqlDb } from './database.js';
import type { TaskRequestRow } from './schema.js';

/**
 * What an operator does to requests (the CLI, the dashboard, the library's `retry`): retry one,
 * delete one, retry many. Cancel has a file of its own (cancel-request.ts). None of these is the
 * launcher's: each locks the row it changes and leaves a claimed row (one with a pid) alone.
 */

/** What a retry sets: runnable now, at least one more try, crash count and cancel request cleared. */
const retryAssignments = sql.raw(
  'completed_at = NULL, delay_until = NULL, try_limit = GREATEST(t.try_limit, t.tries + 1), crashes = 0, ' +
    'cancel_requested_at = NULL',
);

/**
 * Makes an ended or waiting request runnable now, with at least one more try, whatever ended it
 * (a CANCELLED or PARKED one too): its crash count and any cancel request are cleared. One
 * statement; a claimed request (held or running) is refused with ALREADY_RUNNING.
 */
export async function requestRetry(db: SqlDb, table: TableName, id: string): Promise<void> {
  const ref = sql.table(table.qualified);
  const { rows } = await sql<Pick<TaskRequestRow, 'pid'> & { retried: boolean }>`
    WITH target AS MATERIALIZED (SELECT id, pid FROM ${ref} WHERE id = ${id}::bigint FOR UPDATE),
    changed AS (
      UPDATE ${ref} AS t SET ${retryAssignments}
      FROM target WHERE t.id = target.id AND target.pid IS NULL
      RETURNING t.id
    )
    SELECT EXISTS (SELECT 1 FROM changed) AS retried, target.pid FROM target`.execute(db);
  const row = rows[0];
  if (row === undefined) throw new TaskRunnerError('REQUEST_NOT_FOUND', `request ${id} does not exist`);
  if (!row.retried) {
    throw new TaskRunnerError('ALREADY_RUNNING', `request ${id} is running (pid ${row.pid}); it cannot be retried now`);
  }
}

/**
 * Deletes a request that is not running, with its attempt history, in one statement. A running
 * one is refused (cancel it first): its launcher would write an outcome to a row that is gone.
 */
export async function requestDelete(db: SqlDb, table: TableName, id: string): Promise<void> {
  const { rows } = await sql<Pick<TaskRequestRow, 'pid'> & { deleted: boolean }>`
    WITH target AS MATERIALIZED (SELECT id, pid FROM ${sql.table(table.qualified)} WHERE id = ${id}::bigint FOR UPDATE),
    gone AS (
      DELETE FROM ${sql.table(table.qualified)} t USING target WHERE t.id = target.id AND target.pid IS NULL RETURNING t.id
    ),
    history AS (
      DELETE FROM ${sql.table(attemptsTableFor(table).qualified)} a USING gone WHERE a.request_id = gone.id
    )
    SELECT EXISTS (SELECT 1 FROM gone) AS deleted, target.pid FROM target`.execute(db);
  const row = rows[0];
  if (row === undefined) throw new TaskRunnerError('REQUEST_NOT_FOUND', `request ${id} does not exist`);
  if (!row.deleted)
    throw new TaskRunnerError(
      'ALREADY_RUNNING',
      `request ${id} is running (pid ${row.pid}); cancel it before deleting it`,
    );
}

/**
 * Makes every given-up request that matches `filter` runnable now, as `retry` does one (crash
 * count and cancel cleared, one more try at least): the ended ones, and those that never ended
 * with no try left (which `list` calls failed); running and waiting rows are left alone. At most
 * `limit` rows, oldest first, so a careless filter cannot rewrite a million rows in one lock.
 * Returns the ids retried.
 */
export async function requestsRetryMatching(
  db: SqlDb,
  table: TableName,
  filter: RequestFilter,
  limit = 10_000,
): Promise<string[]> {
  if (filter.text === undefined) return retryMatching(db, table, filter, limit);
  // Matching on result_text reads rows no index selects: bounded in time (not by an id window, a
  // bulk retry must see every match), and refused with a clear error past it.
  return db.transaction().execute(async (trx) => {
    await sql.raw(`SET LOCAL statement_timeout = ${bulkTextTimeoutMs}`).execute(trx);
    return retryMatching(trx, table, filter, limit).catch((error: { code?: string }) => {
      if (error.code !== '57014') throw error;
      throw new TaskRunnerError(
        'CONFIG_INVALID',
        `retrying the requests whose result holds the text stopped after ${bulkTextTimeoutMs} ms; ` +
          'narrow it by state, task or queue',
      );
    });
  });
}

/** A bulk retry reading result_text stops after this long. */
const bulkTextTimeoutMs = 30_000;

async function retryMatching(db: SqlDb, table: TableName, filter: RequestFilter, limit: number): Promise<string[]> {
  const ref = sql.table(table.qualified);
  const { rows } = await sql<Pick<TaskRequestRow, 'id'>>`
    WITH target AS (
      SELECT id FROM ${ref}
      WHERE ${filterConditions(filter)} AND (${sql.raw(endedSql())} OR ${sql.raw(spentSql())}) AND pid IS NULL
      ORDER BY id LIMIT ${limit} FOR UPDATE SKIP LOCKED
    )
    UPDATE ${ref} AS t SET ${retryAssignments}
    FROM target WHERE t.id = target.id
    RETURNING t.id::text AS id`.execute(db);
  return rows.map((row) => row.id).sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
}
