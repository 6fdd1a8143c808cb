import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { derivedName } from './derived-name.js';
import type { SqlDb } from './database.js';

/**
 * The attempt-history table of a request table: `<table>_attempts` in the same schema (cut and
 * hashed when the name would pass 63 bytes). One row per try that ended, written in the same
 * statement as the outcome that ended it.
 *
 * @example
 * attemptsTableFor(parseTableName('jobs.requests')).qualified; // 'jobs.requests_attempts'
 */
export function attemptsTableFor(table: TableName): TableName {
  const name = derivedName(table, 'attempts');
  return { schema: table.schema, table: name, qualified: table.schema === null ? name : `${table.schema}.${name}` };
}

/**
 * Creates the attempts table and its index when missing. `request_id` has no foreign key on
 * purpose: a Rails-era request table has integer ids, and deleting old requests must never be
 * blocked (or cascade) by their history.
 */
export async function createAttemptsTable(db: SqlDb, table: TableName): Promise<void> {
  const attempts = attemptsTableFor(table);
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(attempts.qualified)} (
      id bigserial PRIMARY KEY,
      request_id bigint NOT NULL,
      try integer NOT NULL,
      host text,
      launcher_id text,
      pid integer,
      thread_id integer,
      mode text,
      started_at timestamptz,
      ended_at timestamptz NOT NULL DEFAULT now(),
      result text NOT NULL,
      exit_code integer,
      signal text,
      peak_memory_bytes bigint,
      result_text text
    )`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(derivedName(attempts, 'request_idx'))}
    ON ${sql.table(attempts.qualified)} (request_id, id)`.execute(db);
}

/** Whether the attempts table of `table` exists. */
export async function attemptsTableExists(db: SqlDb, table: TableName): Promise<boolean> {
  const { rows } = await sql<{ found: string | null }>`SELECT to_regclass(${attemptsTableFor(table).qualified}) AS found`.execute(db);
  return rows[0]?.found != null;
}

export async function dropAttemptsTable(db: SqlDb, table: TableName): Promise<void> {
  await sql`DROP TABLE IF EXISTS ${sql.table(attemptsTableFor(table).qualified)}`.execute(db);
}

/** The columns a statement writes into the attempts table, in this order (`ended_at` defaults to now()). */
export const attemptColumns = sql.raw(
  'request_id, try, host, launcher_id, pid, thread_id, mode, started_at, result, exit_code, signal, peak_memory_bytes, result_text',
);
