import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { attemptsTableFor } from './attempts-table.js';
import { derivedName } from './derived-name.js';
import type { SqlDb } from './database.js';

/**
 * The launchers table of a request table: `<table>_launchers`, one row per running launcher,
 * written at its start, heart-beaten with its lease renewal and deleted at its stop. It is what
 * "launchers alive" reads (the dashboard, `status`): a launcher with no running row still shows.
 * A launcher that died leaves its row; readers judge it by `heartbeat_at`.
 */
export function launchersTableFor(table: TableName): TableName {
  const name = derivedName(table, 'launchers');
  return { schema: table.schema, table: name, qualified: table.schema === null ? name : `${table.schema}.${name}` };
}

async function indexExists(db: SqlDb, table: TableName, name: string): Promise<boolean> {
  const { rows } = await sql`SELECT 1 FROM pg_indexes WHERE schemaname = COALESCE(${table.schema}, current_schema())
    AND indexname = ${name}`.execute(db);
  return rows.length > 0;
}

/**
 * Indexes the inspection queries need, created only when missing: `CREATE INDEX IF NOT EXISTS`
 * would still take a SHARE lock on the table, waiting for every launcher's open statement, so
 * the catalogue is asked first (as the trigger install does). On a large existing table the
 * first creation locks writes while it builds; run `migrate` at a quiet time once.
 *
 * - `(left(task_class_name, 200), id)`: `list --task` newest first. On the first 200 characters
 *   only, because a btree entry must fit in a page: a row whose name is a megabyte long (a bad
 *   insert, which the launcher fails with a clear error) must still be insertable.
 * - `(result, id) WHERE completed_at IS NOT NULL`: `list --state failed|crashed|...` newest first
 *   without walking every finished row.
 * - attempts `(ended_at)`: throughput per minute over the last hour.
 */
export async function installOpsSupport(db: SqlDb, table: TableName): Promise<void> {
  const ref = sql.table(table.qualified);
  const attempts = attemptsTableFor(table);
  const wanted: [TableName, string, ReturnType<typeof sql>][] = [
    [table, derivedName(table, 'task_idx'), sql`ON ${ref} (left(task_class_name, 200), id)`],
    [table, derivedName(table, 'result_idx'), sql`ON ${ref} (result, id) WHERE completed_at IS NOT NULL`],
    [attempts, derivedName(attempts, 'ended_idx'), sql`ON ${sql.table(attempts.qualified)} (ended_at)`],
  ];
  for (const [owner, name, body] of wanted) {
    if (await indexExists(db, owner, name)) continue;
    await sql`CREATE INDEX IF NOT EXISTS ${sql.id(name)} ${body}`.execute(db);
  }
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(launchersTableFor(table).qualified)} (
      launcher_id text PRIMARY KEY,
      host text NOT NULL,
      pid integer NOT NULL,
      concurrency integer NOT NULL,
      queues text[],
      started_at timestamptz NOT NULL DEFAULT now(),
      heartbeat_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

export async function dropOpsSupport(db: SqlDb, table: TableName): Promise<void> {
  await sql`DROP TABLE IF EXISTS ${sql.table(launchersTableFor(table).qualified)}`.execute(db);
}
