import { sql, type CreateTableBuilder } from 'kysely';
import { channelFor, parseTableName, type TableName } from '../config/identifiers.js';
import { defaults } from '../config/runner-config.js';
import { attemptsTableExists, attemptsTableFor, createAttemptsTable, dropAttemptsTable } from './attempts-table.js';
import { derivedName } from './derived-name.js';
import { dropOpsSupport, installOpsSupport } from './ops-support.js';
import { createRecurringTable, dropRecurringTable, recurringTableExists, recurringTableFor } from './recurring-table.js';
import type { SqlDb } from './database.js';
import {
  adoptTimestamps, dropTimestampTrigger, guessTableOrigin, readTableOrigin, writeTableOrigin, type TableOrigin, type TimestampAdoption,
} from './table-adoption.js';

/** Lets an application add its own columns; the runner ignores them. */
export type ExtraColumns = (table: CreateTableBuilder<string, any>) => CreateTableBuilder<string, any>;

/** Columns the design adds to the seed's; `migrate` adds any that an older table lacks. */
const designColumns: ReadonlyArray<readonly [name: string, definition: string]> = [
  ['queue', `text NOT NULL DEFAULT '${defaults.queue}'`],
  ['priority', 'integer NOT NULL DEFAULT 0'],
  ['host', 'text'],
  ['launcher_id', 'text'],
  ['process_identity', 'text'],
  ['thread_id', 'integer'],
  ['lease_expires_at', 'timestamptz'],
  ['crashes', 'integer NOT NULL DEFAULT 0'],
  ['timeout_ms', 'integer'],
  ['cancel_requested_at', 'timestamptz'],
  // W3C trace context captured at schedule() when @opentelemetry/api is loaded (see tracing.ts).
  ['traceparent', 'text'],
  ['unique_key', 'text'],
];

function qualified(table: TableName, name: string) {
  return table.schema === null ? sql.id(name) : sql.id(table.schema, name);
}

/**
 * The payload of the wake-up notification that tells launcher `launcherId` that the pid of a row
 * it holds was cleared by hand: it stops that try now instead of at its next lease renewal.
 */
export function rescheduleNoticeFor(launcherId: string): string {
  return `rescheduled:${launcherId}`;
}

/**
 * Indexes for the claim and the probe, and the trigger that wakes launchers. The trigger is per
 * statement, so a bulk insert of thousands of rows sends one notification, and it fires on updates
 * too, so wiping `pid` by hand (the seed's way to reschedule) wakes launchers as an insert does.
 * A wiped row whose lease still holds (the runner's own statements clear the lease with the pid)
 * also names its launcher, which must stop the try before anyone claims the row; the second
 * look at the changed rows is made only when the first found a row without a pid.
 */
async function installSupport(db: SqlDb, table: TableName): Promise<void> {
  const ref = sql.table(table.qualified);
  const fn = qualified(table, derivedName(table, 'cw_notify'));
  const channel = sql.lit(channelFor(table));
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(derivedName(table, 'runnable_idx'))}
    ON ${ref} (priority DESC, id) WHERE completed_at IS NULL AND pid IS NULL`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(derivedName(table, 'running_idx'))}
    ON ${ref} (host) WHERE pid IS NOT NULL`.execute(db);
  // Rows whose pid was cleared by hand under a lease (a reschedule its launcher has not finished):
  // the lease renewal finds its own here. Every statement that ends a try clears the lease with
  // the pid, so this holds only those rows, a handful at most.
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(derivedName(table, 'wiped_idx'))}
    ON ${ref} (launcher_id) WHERE pid IS NULL AND completed_at IS NULL AND lease_expires_at IS NOT NULL`.execute(db);
  // Retention walks ended rows oldest first, and unique schedules look a key up: both partial,
  // so neither holds a waiting row, and the claim (which reads runnable_idx only) never sees them.
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(derivedName(table, 'ended_idx'))}
    ON ${ref} (completed_at) WHERE completed_at IS NOT NULL`.execute(db);
  await sql`CREATE INDEX IF NOT EXISTS ${sql.id(derivedName(table, 'unique_key_idx'))}
    ON ${ref} (unique_key) WHERE unique_key IS NOT NULL`.execute(db);
  await sql`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      IF EXISTS (SELECT 1 FROM cw_new_rows WHERE pid IS NULL AND completed_at IS NULL) THEN
        PERFORM pg_notify(${channel}, '');
        IF TG_OP = 'UPDATE' THEN
          PERFORM pg_notify(${channel}, ${sql.lit(rescheduleNoticeFor(''))} || wiped.launcher_id)
          FROM (SELECT DISTINCT launcher_id FROM cw_new_rows
                WHERE pid IS NULL AND completed_at IS NULL AND launcher_id IS NOT NULL AND lease_expires_at > now()) AS wiped;
        END IF;
      END IF;
      RETURN NULL;
    END
    $fn$`.execute(db);
  for (const event of ['insert', 'update'] as const) {
    const trigger = sql.id(derivedName(table, `cw_${event}_notify`));
    // Re-creating an existing trigger would lock the table against every launcher: skip it.
    const { rows } = await sql`SELECT 1 FROM pg_trigger WHERE tgrelid = to_regclass(${table.qualified})
      AND tgname = ${derivedName(table, `cw_${event}_notify`)}`.execute(db);
    if (rows.length > 0) continue;
    await sql`CREATE TRIGGER ${trigger} AFTER ${sql.raw(event.toUpperCase())} ON ${ref}
      REFERENCING NEW TABLE AS cw_new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`.execute(db);
  }
}

/** Serialises concurrent migrations of the same table (two launchers starting at once). */
async function lockMigration(db: SqlDb, table: TableName): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtext(${'cw_task_runner_migrate:' + table.qualified}))`.execute(db);
}

/**
 * Creates the request table with every seed column, the design's columns, its indexes, its
 * notify trigger and its attempt-history table (`<table>_attempts`), in the seed's spirit
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
    const schema = table.schema === null ? trx.schema : trx.schema.withSchema(table.schema);
    let builder = schema
      .createTable(table.table)
      .addColumn('id', 'bigserial', (c) => c.primaryKey())
      .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
      .addColumn('task_class_name', 'text', (c) => c.notNull())
      .addColumn('pid', 'integer')
      .addColumn('started_at', 'timestamptz')
      .addColumn('completed_at', 'timestamptz')
      .addColumn('result', 'text')
      .addColumn('tries', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('try_limit', 'integer', (c) => c.notNull().defaultTo(defaults.tryLimit))
      .addColumn('options', 'text')
      .addColumn('delay_until', 'timestamptz')
      .addColumn('result_text', 'text');
    for (const [column, definition] of designColumns) {
      builder = builder.addColumn(column, sql.raw(definition.split(' ')[0]!), (c) => {
        let col = c;
        if (definition.includes('NOT NULL')) col = col.notNull();
        const fallback = /DEFAULT (.+)$/.exec(definition)?.[1];
        if (fallback !== undefined) col = col.defaultTo(sql.raw(fallback));
        return col;
      });
    }
    if (extraColumns !== undefined) builder = extraColumns(builder);
    await builder.execute();
    await installSupport(trx, table);
    await createAttemptsTable(trx, table);
    // Durable: retention's default depends on it at every start (see table-adoption.ts).
    await writeTableOrigin(trx, table, 'created');
    await installOpsSupport(trx, table);
    await createRecurringTable(trx, table);
    // An `updated_at` among the extra columns is kept current as on an adopted table.
    return adoptTimestamps(trx, table);
  });
}

/** Drops the request table, its attempts table and its trigger function. */
export async function dropTaskRunnerRequestTable(db: SqlDb, name: string = defaults.tableName): Promise<void> {
  const table = parseTableName(name);
  await sql`DROP TABLE IF EXISTS ${sql.table(table.qualified)}`.execute(db);
  await dropAttemptsTable(db, table);
  await dropOpsSupport(db, table);
  await dropRecurringTable(db, table);
  await dropTimestampTrigger(db, table);
  await sql`DROP FUNCTION IF EXISTS ${qualified(table, derivedName(table, 'cw_notify'))}()`.execute(db);
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
      await sql`ALTER TABLE ${sql.table(table.qualified)} ADD COLUMN ${sql.id(column)} ${sql.raw(definition)}`.execute(trx);
      addedColumns.push(column);
    }
    await installSupport(trx, table);
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
    await installOpsSupport(trx, table);
    if (!(await recurringTableExists(trx, table))) {
      await createRecurringTable(trx, table);
      addedTables.push(recurringTableFor(table).qualified);
    }
  });
  return { created: false, addedColumns, addedTables, origin, ...adoption };
}
