import { sql, type CreateTableBuilder } from 'kysely';
import { channelFor, type TableName } from '../config/identifiers.js';
import { defaults } from '../config/runner-config.js';
import { attemptsTableFor } from './attempts-table.js';
import { derivedName } from './derived-name.js';
import { wipedSql } from './fragments.js';
import { launchersTableFor } from './launchers-table.js';
import { recurringTableFor } from './recurring-table.js';
import type { SqlDb } from './database.js';

/**
 * The DDL of every table the runner makes, in one place: the request table (its columns,
 * indexes and notify trigger), the attempts, recurring and launchers tables beside it, and the
 * trigger that keeps an application's `updated_at` current. migrations.ts decides what to run
 * (create, upgrade, adopt, drop); the row types of these tables are in schema.ts, and
 * `schema.sql` holds what a freshly migrated database looks like (a test compares it with
 * `pg_dump`, so a change here comes with a change there).
 *
 * Every statement is safe to run again: tables and indexes `IF NOT EXISTS`, functions `OR
 * REPLACE`, and triggers only when the catalogue lacks them (re-creating one would lock the
 * table against every launcher).
 */

/** Lets an application add its own columns; the runner ignores them. */
export type ExtraColumns = (table: CreateTableBuilder<string, any>) => CreateTableBuilder<string, any>;

/** The Rails plugin's columns, with the Rails plugin's names and meanings. */
const pluginColumns: ReadonlyArray<readonly [name: string, definition: string]> = [
  ['id', 'bigserial PRIMARY KEY'],
  ['created_at', 'timestamptz NOT NULL DEFAULT now()'],
  ['task_class_name', 'text NOT NULL'],
  ['pid', 'integer'],
  ['started_at', 'timestamptz'],
  ['completed_at', 'timestamptz'],
  ['result', 'text'],
  ['tries', 'integer NOT NULL DEFAULT 0'],
  ['try_limit', `integer NOT NULL DEFAULT ${defaults.tryLimit}`],
  ['options', 'text'],
  ['delay_until', 'timestamptz'],
  ['result_text', 'text'],
];

/** Columns the design adds to the Rails plugin's; `migrate` adds any that an older table lacks. */
export const designColumns: ReadonlyArray<readonly [name: string, definition: string]> = [
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

async function triggerExists(db: SqlDb, table: TableName, name: string): Promise<boolean> {
  const { rows } = await sql`SELECT 1 FROM pg_trigger
    WHERE tgrelid = to_regclass(${table.qualified}) AND tgname = ${name}`.execute(db);
  return rows.length > 0;
}

async function indexExists(db: SqlDb, table: TableName, name: string): Promise<boolean> {
  const { rows } = await sql`SELECT 1 FROM pg_indexes WHERE schemaname = COALESCE(${table.schema}, current_schema())
    AND indexname = ${name}`.execute(db);
  return rows.length > 0;
}

/**
 * Creates the request table: every column of the Rails plugin's table, the design's columns, then the application's
 * (`extraColumns`). A builder rather than text so that an application adds columns its own way.
 */
export async function createRequestTable(db: SqlDb, table: TableName, extraColumns?: ExtraColumns): Promise<void> {
  const schema = table.schema === null ? db.schema : db.schema.withSchema(table.schema);
  let builder = schema.createTable(table.table);
  for (const [column, definition] of [...pluginColumns, ...designColumns]) {
    builder = builder.addColumn(column, sql.raw(definition.split(' ')[0]!), (c) => {
      let col = c;
      if (definition.includes('PRIMARY KEY')) col = col.primaryKey();
      if (definition.includes('NOT NULL')) col = col.notNull();
      const fallback = /DEFAULT (.+)$/.exec(definition)?.[1];
      if (fallback !== undefined) col = col.defaultTo(sql.raw(fallback));
      return col;
    });
  }
  if (extraColumns !== undefined) builder = extraColumns(builder);
  await builder.execute();
}

/** Adds one design column to an existing table (`migrate` on an older or Rails-made one). */
export async function addDesignColumn(db: SqlDb, table: TableName, column: string, definition: string): Promise<void> {
  await sql`ALTER TABLE ${sql.table(table.qualified)} ADD COLUMN ${sql.id(column)} ${sql.raw(definition)}`.execute(db);
}

/** Gives a column of an application's table a default (`adoptTimestamps`: its timestamps). */
export async function setColumnDefault(db: SqlDb, table: TableName, column: string, value: string): Promise<void> {
  await sql`ALTER TABLE ${sql.table(table.qualified)}
    ALTER COLUMN ${sql.id(column)} SET DEFAULT ${sql.raw(value)}`.execute(db);
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
 * too, so wiping `pid` by hand (the Rails plugin's way to reschedule) wakes launchers as an insert does.
 * A wiped row whose lease still holds (the runner's own statements clear the lease with the pid)
 * also names its launcher, which must stop the try before anyone claims the row; the second
 * look at the changed rows is made only when the first found a row without a pid.
 */
export async function createRequestSupport(db: SqlDb, table: TableName): Promise<void> {
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
    ON ${ref} (launcher_id) WHERE ${sql.raw(wipedSql())}`.execute(db);
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
    const name = derivedName(table, `cw_${event}_notify`);
    if (await triggerExists(db, table, name)) continue;
    await sql`CREATE TRIGGER ${sql.id(name)} AFTER ${sql.raw(event.toUpperCase())} ON ${ref}
      REFERENCING NEW TABLE AS cw_new_rows FOR EACH STATEMENT EXECUTE FUNCTION ${fn}()`.execute(db);
  }
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

/** Creates the recurring table when missing (what its rows mean: recurring-table.ts). */
export async function createRecurringTable(db: SqlDb, table: TableName): Promise<void> {
  await sql`CREATE TABLE IF NOT EXISTS ${sql.table(recurringTableFor(table).qualified)} (
      name text PRIMARY KEY,
      task_class_name text NOT NULL,
      cron text NOT NULL,
      timezone text NOT NULL,
      options text,
      queue text NOT NULL,
      priority integer NOT NULL,
      try_limit integer NOT NULL,
      backfill integer NOT NULL DEFAULT 0,
      last_due_at timestamptz NOT NULL,
      last_request_id bigint,
      registered_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
}

/**
 * Indexes the inspection queries need, and the launchers table (what its rows mean:
 * launchers-table.ts). The indexes are created only when missing: `CREATE INDEX IF NOT EXISTS`
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
export async function createOpsSupport(db: SqlDb, table: TableName): Promise<void> {
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

/**
 * The row trigger that sets `updated_at` to `now` (an SQL expression of the column's type) on
 * every update that leaves it unchanged; true when it was installed now. Why a trigger, and
 * when: `adoptTimestamps` in table-adoption.ts.
 */
export async function createTouchTrigger(db: SqlDb, table: TableName, now: string): Promise<string | null> {
  const name = derivedName(table, 'cw_touch_updated_at');
  const fn = qualified(table, name);
  await sql`CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      NEW.updated_at := ${sql.raw(now)};
      RETURN NEW;
    END
    $fn$`.execute(db);
  if (await triggerExists(db, table, name)) return null;
  await sql`CREATE TRIGGER ${sql.id(name)} BEFORE UPDATE ON ${sql.table(table.qualified)} FOR EACH ROW
    WHEN (NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at) EXECUTE FUNCTION ${fn}()`.execute(db);
  return name;
}

/**
 * Drops the request table and everything the runner made beside it: the attempts, launchers and
 * recurring tables, the touch trigger's function (the defaults it gave an application's
 * timestamps stay: they are the table's) and the notify function.
 */
export async function dropRunnerTables(db: SqlDb, table: TableName): Promise<void> {
  await sql`DROP TABLE IF EXISTS ${sql.table(table.qualified)}`.execute(db);
  for (const beside of [attemptsTableFor(table), launchersTableFor(table), recurringTableFor(table)]) {
    await sql`DROP TABLE IF EXISTS ${sql.table(beside.qualified)}`.execute(db);
  }
  const touch = qualified(table, derivedName(table, 'cw_touch_updated_at'));
  await sql`DROP FUNCTION IF EXISTS ${touch}() CASCADE`.execute(db);
  await sql`DROP FUNCTION IF EXISTS ${qualified(table, derivedName(table, 'cw_notify'))}()`.execute(db);
}
