import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { derivedName } from './derived-name.js';
import type { SqlDb } from './database.js';

/**
 * The recurring table of a request table, `<table>_recurring`: one row per recurring entry, as
 * the launchers that declare it last registered it, with the latest due time enqueued for it.
 *
 * `last_due_at` is what makes each due time enqueue once, however many launchers tick: a launcher
 * enqueues due times only in the statement that moves `last_due_at` forward past them, and only
 * while it is still behind the first of them (the row lock orders launchers that race; the
 * loser re-reads the moved row and finds nothing left to do). Since it only ever moves forward,
 * no due time can be enqueued twice, even by launchers whose configurations disagree, and even
 * after retention has pruned the requests of past runs. Its DDL is in schema-ddl.ts.
 */
export function recurringTableFor(table: TableName): TableName {
  const name = derivedName(table, 'recurring');
  return { schema: table.schema, table: name, qualified: table.schema === null ? name : `${table.schema}.${name}` };
}

export async function recurringTableExists(db: SqlDb, table: TableName): Promise<boolean> {
  const { rows } = await sql<{
    found: string | null;
  }>`SELECT to_regclass(${recurringTableFor(table).qualified}) AS found`.execute(db);
  return rows[0]?.found != null;
}
