import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { derivedName } from './derived-name.js';
import type { SqlDb } from './database.js';

/**
 * The attempt-history table of a request table: `<table>_attempts` in the same schema (cut and
 * hashed when the name would pass 63 bytes). One row per try that ended, written in the same
 * statement as the outcome that ended it. Its DDL is in schema-ddl.ts.
 *
 * @example
 * attemptsTableFor(parseTableName('jobs.requests')).qualified; // 'jobs.requests_attempts'
 */
export function attemptsTableFor(table: TableName): TableName {
  const name = derivedName(table, 'attempts');
  return { schema: table.schema, table: name, qualified: table.schema === null ? name : `${table.schema}.${name}` };
}

/** Whether the attempts table of `table` exists. */
export async function attemptsTableExists(db: SqlDb, table: TableName): Promise<boolean> {
  const { rows } = await sql<{
    found: string | null;
  }>`SELECT to_regclass(${attemptsTableFor(table).qualified}) AS found`.execute(db);
  return rows[0]?.found != null;
}

/** The columns a statement writes into the attempts table, in this order (`ended_at` defaults to now()). */
export const attemptColumns = sql.raw(
  'request_id, try, host, launcher_id, pid, thread_id, mode, started_at, result, exit_code, signal, peak_memory_bytes, result_text',
);
