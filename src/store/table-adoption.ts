import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { attemptsTableFor } from './attempts-table.js';
import type { SqlDb } from './database.js';
import { createTouchTrigger, setColumnDefault } from './schema-ddl.js';

/**
 * What the runner needs to know and do about a request table an application made (a Rails
 * migration's, say) and still writes: whose table it is, durably; the timestamp columns the
 * application's framework fills itself and the runner's inserts would leave NULL; and the
 * session time zone its columns without a time zone are read in.
 */

/** `created`: `createTaskRunnerRequestTable` made the table; `adopted`: an application did. */
export type TableOrigin = 'created' | 'adopted';

/**
 * The marker is the comment of the attempts table (`<table>_attempts`), which is always the
 * runner's own, so the application's table (and any comment of its own) is left as it is.
 */
const markerText: Record<TableOrigin, string> = {
  created: 'cw-task-runner: attempt history; the runner created the request table',
  adopted:
    'cw-task-runner: attempt history; the runner adopted the request table (an application made it): retention leaves its rows alone unless retention.pruneAdopted is true',
};

export async function writeTableOrigin(db: SqlDb, table: TableName, origin: TableOrigin): Promise<void> {
  await sql`COMMENT ON TABLE ${sql.table(attemptsTableFor(table).qualified)} IS ${sql.lit(markerText[origin])}`.execute(
    db,
  );
}

/** The recorded origin; null when there is no marker (no attempts table, or one made before the marker). */
export async function readTableOrigin(db: SqlDb, table: TableName): Promise<TableOrigin | null> {
  const { rows } = await sql<{ comment: string | null }>`
    SELECT obj_description(to_regclass(${attemptsTableFor(table).qualified}), 'pg_class') AS comment`.execute(db);
  const match = /the runner (created|adopted) the request table/.exec(rows[0]?.comment ?? '');
  return match === null ? null : (match[1] as TableOrigin);
}

interface ColumnFacts {
  column_name: string;
  data_type: string;
  is_nullable: 'YES' | 'NO';
  column_default: string | null;
}

async function columnsOf(db: SqlDb, table: TableName): Promise<Map<string, ColumnFacts>> {
  const { rows } =
    await sql<ColumnFacts>`SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
    WHERE table_schema = COALESCE(${table.schema}, current_schema()) AND table_name = ${table.table}`.execute(db);
  return new Map(rows.map((row) => [row.column_name, row]));
}

/**
 * For a table with an attempts table but no marker (one migrated before the marker existed): it
 * counts as the runner's own when its columns have the types `createTaskRunnerRequestTable`
 * gives them (`created_at timestamptz` defaulting to now(), `task_class_name text NOT NULL`),
 * which no Rails migration makes (`timestamp without time zone`, `character varying`).
 */
export async function guessTableOrigin(db: SqlDb, table: TableName): Promise<TableOrigin> {
  const columns = await columnsOf(db, table);
  const created = columns.get('created_at');
  const name = columns.get('task_class_name');
  const ours =
    created?.data_type === 'timestamp with time zone' &&
    /now\(\)/.test(created.column_default ?? '') &&
    name?.data_type === 'text' &&
    name.is_nullable === 'NO';
  return ours ? 'created' : 'adopted';
}

const timestampTypes = new Set(['timestamp without time zone', 'timestamp with time zone']);

/** Now, as a value of the column's type: UTC wall time for a column without a time zone, whatever the session's zone. */
function nowFor(column: ColumnFacts): string {
  return column.data_type === 'timestamp without time zone' ? "(now() AT TIME ZONE 'UTC')" : 'now()';
}

/** What `adoptTimestamps` changed. */
export interface TimestampAdoption {
  /** Columns given a default of now (created_at, updated_at), which had none. */
  addedDefaults: string[];
  /** Triggers installed (the one that keeps updated_at current). */
  addedTriggers: string[];
}

/**
 * Makes the runner's own writes keep an application's timestamps as its framework would:
 *
 * - `created_at` and `updated_at` without a default get one (now, in UTC for columns without a
 *   time zone, as Rails writes them). Rails' `t.timestamps` makes them NOT NULL with no default
 *   and fills them itself, so every insert of the runner's (schedule, recurring, psql) failed on
 *   such a table; a default fixes them all, and Rails, which always gives both values, never uses it.
 * - `updated_at`, where the table has one, is kept current by a row trigger on every update
 *   that leaves it unchanged. A trigger rather than `updated_at = now()` in each statement: the
 *   runner's statements (launch, release, recovery, cancel, retry) are shared by every table,
 *   and most tables (every one the runner creates) have no such column, so they would need two
 *   texts each; installed only where the column exists, the trigger costs nothing elsewhere.
 *   Its WHEN clause is evaluated without calling the function, and an update that sets
 *   `updated_at` itself (ActiveRecord's `save`) keeps the value it gives. Its cost where it is
 *   installed: a few microseconds per updated row, and a try updates its row two or three times.
 */
export async function adoptTimestamps(db: SqlDb, table: TableName): Promise<TimestampAdoption> {
  const result: TimestampAdoption = { addedDefaults: [], addedTriggers: [] };
  const columns = await columnsOf(db, table);
  for (const name of ['created_at', 'updated_at']) {
    const column = columns.get(name);
    if (column === undefined || !timestampTypes.has(column.data_type) || column.column_default !== null) continue;
    await setColumnDefault(db, table, name, nowFor(column));
    result.addedDefaults.push(name);
  }
  const updated = columns.get('updated_at');
  if (updated === undefined || !timestampTypes.has(updated.data_type)) return result;
  const installed = await createTouchTrigger(db, table, nowFor(updated));
  if (installed !== null) result.addedTriggers.push(installed);
  return result;
}

const utcNames = /^(Etc\/)?(UTC|UCT|GMT|GMT0|Universal|Zulu|Greenwich)$/i;

/**
 * The session's time zone, when it is not UTC and the table has columns without a time zone
 * (which the session then reads and writes in that zone); null when nothing is shifted. For a
 * pool of the caller's own, whose sessions the runner leaves as they are.
 */
export async function shiftedTimeZone(
  db: SqlDb,
  table: TableName,
): Promise<{ timeZone: string; columns: string[] } | null> {
  const { rows } = await sql<{ tz: string }>`SELECT current_setting('TimeZone') AS tz`.execute(db);
  const timeZone = rows[0]?.tz ?? 'UTC';
  if (utcNames.test(timeZone)) return null;
  const columns = [...(await columnsOf(db, table)).values()]
    .filter((column) => column.data_type === 'timestamp without time zone')
    .map((column) => column.column_name)
    .sort();
  return columns.length === 0 ? null : { timeZone, columns };
}
