import { sql } from 'kysely';
import { parseTableName, type TableName } from '../config/identifiers.js';
import { defaults } from '../config/runner-config.js';
import { attemptsTableExists, attemptsTableFor } from './attempts-table.js';
import { recurringTableExists, recurringTableFor } from './recurring-table.js';
import {
  addDesignColumn,
  createAttemptsTable,
  createOpsSupport,
  createRecurringTable,
  createRequestSupport,
  createRequestTable,
  designColumns,
  dropRunnerTables,
  type ExtraColumns,
} from './schema-ddl.js';
import type { SqlDb } from './database.js';
import {
  adoptTimestamps,
  guessTableOrigin,
  readTableOrigin,
  writeTableOrigin,
  type TableOrigin,
  type TimestampAdoption,
} from './table-adoption.js';

export type { ExtraColumns } from './schema-ddl.js';

/**
 * What to run, and when: create the runner's tables, bring an older or an application's table
 * up to date, drop them. The statements themselves are in schema-ddl.ts.
 */

/** Serialises concurrent migrations of the same table (two launchers starting at once). */
async function lockMigration(db: SqlDb, table: TableName): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${'cw_task_runner_migrate:' + table.qualified}))`.execute(db);
}

/**
 * Creates the request table with every column of the Rails plugin's table, the design's columns, its indexes, its
 * notify trigger and its attempt-history table (`<table>_attempts`), in the Rails plugin's spirit
 * (`create_task_runner_request_table :name do |t| ... end`).
 *
 * @example
 * await createTaskRunnerRequestTable(db, 'report_jobs', (t) =>
 *   t.addColumn('account_id', 'bigint').addColumn('note', 'text'));
 */
export async function createTaskRunnerRequestTable(
  db: SqlDb,
  name: string = defaults.tableName,
  extraColumns?: ExtraColumns,
): Promise<void> {
  await createTable(db, name, extraColumns);
}

async function createTable(db: SqlDb, name: string, extraColumns?: ExtraColumns): Promise<TimestampAdoption> {
  const table = parseTableName(name);
  return db.transaction().execute(async (trx) => {
    await lockMigration(trx, table);
    await createRequestTable(trx, table, extraColumns);
    await createRequestSupport(trx, table);
    await createAttemptsTable(trx, table);
    // Durable: retention's default depends on it at every start (see table-adoption.ts).
    await writeTableOrigin(trx, table, 'created');
    await createOpsSupport(trx, table);
    await createRecurringTable(trx, table);
    // An `updated_at` among the extra columns is kept current as on an adopted table.
    return adoptTimestamps(trx, table);
  });
}

/** Drops the request table, its attempts table and its trigger function. */
export async function dropTaskRunnerRequestTable(db: SqlDb, name: string = defaults.tableName): Promise<void> {
  await dropRunnerTables(db, parseTableName(name));
}

export interface MigrateResult {
  /** True when the table did not exist and was created. */
  created: boolean;
  /** Design columns added to an existing (for example Rails-era) table. */
  addedColumns: string[];
  /** Tables the design adds beside an existing request table (`<table>_attempts`, `<table>_recurring`), when created now. */
  addedTables: string[];
  /**
   * Whether the runner created the table or adopted one an application made. Recorded when the
   * table is first created or migrated, and read back on every later run (see table-adoption.ts):
   * retention leaves an adopted table's rows alone unless `retention.pruneAdopted` is true.
   */
  origin: TableOrigin;
  /** `created_at` / `updated_at` columns given a default of now (UTC), which had none (Rails' `t.timestamps`). */
  addedDefaults: string[];
  /** Triggers installed now: the one that keeps `updated_at` current on the runner's updates. */
  addedTriggers: string[];
}

/**
 * Brings the request table up to date: creates it when missing; on an existing table (one the
 * Rails plugin made, say) adds the design's columns, indexes, trigger and attempts table, and
 * adopts it as an application's table (`adoptTimestamps` in table-adoption.ts: defaults for
 * `created_at`/`updated_at`, the trigger that keeps `updated_at` current), recording whether the
 * runner created it or adopted it. Safe to run repeatedly and from several processes at once.
 *
 * @example
 * await migrate(db);                       // task_runner_requests
 * await migrate(db, { tableName: 'jobs' });
 */
export async function migrate(
  db: SqlDb,
  params: { tableName?: string; extraColumns?: ExtraColumns } = {},
): Promise<MigrateResult> {
  const table = parseTableName(params.tableName ?? defaults.tableName);
  const exists = async (): Promise<boolean> => {
    const { rows } = await sql<{ found: string | null }>`SELECT to_regclass(${table.qualified}) AS found`.execute(db);
    return rows[0]?.found != null;
  };
  if (!(await exists())) {
    try {
      const adoption = await createTable(db, table.qualified, params.extraColumns);
      return { created: true, addedColumns: [], addedTables: [], origin: 'created', ...adoption };
    } catch (error) {
      // Another process created it between our check and our CREATE: fall through to upgrade.
      if (!(await exists())) throw error;
    }
  }
  const addedColumns: string[] = [];
  const addedTables: string[] = [];
  let origin: TableOrigin = 'adopted';
  let adoption: TimestampAdoption = { addedDefaults: [], addedTriggers: [] };
  await db.transaction().execute(async (trx) => {
    await lockMigration(trx, table);
    const { rows } = await sql<{ column_name: string }>`SELECT column_name FROM information_schema.columns
      WHERE table_schema = COALESCE(${table.schema}, current_schema()) AND table_name = ${table.table}`.execute(trx);
    const present = new Set(rows.map((row) => row.column_name));
    for (const [column, definition] of designColumns) {
      if (present.has(column)) continue;
      await addDesignColumn(trx, table, column, definition);
      addedColumns.push(column);
    }
    await createRequestSupport(trx, table);
    // A table without an attempts table was not made by the runner; one with an attempts table
    // but no marker was migrated before the marker existed, and its column types tell.
    const hadAttempts = await attemptsTableExists(trx, table);
    const recorded = hadAttempts ? await readTableOrigin(trx, table) : null;
    origin = recorded ?? (hadAttempts ? await guessTableOrigin(trx, table) : 'adopted');
    if (!hadAttempts) {
      await createAttemptsTable(trx, table);
      addedTables.push(attemptsTableFor(table).qualified);
    }
    if (recorded === null) await writeTableOrigin(trx, table, origin);
    adoption = await adoptTimestamps(trx, table);
    await createOpsSupport(trx, table);
    if (!(await recurringTableExists(trx, table))) {
      await createRecurringTable(trx, table);
      addedTables.push(recurringTableFor(table).qualified);
    }
  });
  return { created: false, addedColumns, addedTables, origin, ...adoption };
}
