import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { recurringTableFor } from './recurring-table.js';
import type { SqlDb } from './database.js';
import type { RecurringTableRow, TaskRequestRow } from './schema.js';

/** An entry as a launcher registers it: options already YAML text. */
export interface RecurringRegistration {
  name: string;
  taskClassName: string;
  cron: string;
  timezone: string;
  options: string;
  queue: string;
  priority: number;
  tryLimit: number;
  backfill: number;
}

/** A row of the recurring table, as `recurring` lists it. */
export interface RecurringRow {
  name: string;
  taskClassName: string;
  cron: string;
  timezone: string;
  queue: string;
  backfill: number;
  /** The latest due time enqueued (or, before the first, when the entry was first registered). */
  lastDueAt: Date;
  /** The request of the latest due time enqueued; null before the first. */
  lastRequestId: string | null;
  /** The latest time a launcher registered the entry (at its start or through `recurring()`). */
  registeredAt: Date;
}

/** What one enqueue wrote: the due times it enqueued, with their request ids (empty: another launcher was first). */
export interface RecurringEnqueued {
  name: string;
  ids: string[];
  dueTimes: Date[];
}

/**
 * The statements of recurring tasks. Each launcher registers the entries it declares, reads where
 * they stand, and enqueues due times through `enqueue`, whose guard makes each due time one request.
 */
export class RecurringStore {
  readonly #db: SqlDb;
  readonly #table: TableName;
  readonly #recurring;

  constructor(db: SqlDb, table: TableName) {
    this.#db = db;
    this.#table = table;
    this.#recurring = sql.table(recurringTableFor(table).qualified);
  }

  /**
   * Creates or updates entries. A new entry starts at `now` (nothing before its registration is
   * due); an existing one keeps its `last_due_at`, so a launcher restarting later finds the due
   * times it missed, and a changed cron takes over from where the old one stopped.
   */
  async register(entries: readonly RecurringRegistration[], now: Date): Promise<void> {
    if (entries.length === 0) return;
    const e = entries;
    await sql`
      INSERT INTO ${this.#recurring} AS r (name, task_class_name, cron, timezone, options, queue, priority, try_limit, backfill, last_due_at)
      SELECT v.*, ${now.toISOString()}::timestamptz FROM unnest(
        ${e.map((x) => x.name)}::text[], ${e.map((x) => x.taskClassName)}::text[], ${e.map((x) => x.cron)}::text[],
        ${e.map((x) => x.timezone)}::text[], ${e.map((x) => x.options)}::text[], ${e.map((x) => x.queue)}::text[],
        ${e.map((x) => x.priority)}::int[], ${e.map((x) => x.tryLimit)}::int[], ${e.map((x) => x.backfill)}::int[]
      ) AS v(name, task_class_name, cron, timezone, options, queue, priority, try_limit, backfill)
      ON CONFLICT (name) DO UPDATE SET task_class_name = excluded.task_class_name, cron = excluded.cron,
        timezone = excluded.timezone, options = excluded.options, queue = excluded.queue, priority = excluded.priority,
        try_limit = excluded.try_limit, backfill = excluded.backfill, registered_at = now()`.execute(this.#db);
  }

  /** `last_due_at` of each named entry (missing names are left out). */
  async lastDue(names: readonly string[]): Promise<Map<string, Date>> {
    const { rows } = await sql<Pick<RecurringTableRow, 'name' | 'last_due_at'>>`
      SELECT name, last_due_at FROM ${this.#recurring} WHERE name = ANY(${[...names]}::text[])`.execute(this.#db);
    return new Map(rows.map((row) => [row.name, row.last_due_at]));
  }

  /**
   * Enqueues `dueTimes` (ascending) of one entry, one request each, with `delay_until` set to its
   * due time (which records on the row when it was due, and is already past). All or nothing, in
   * one statement: `entry` locks the entry's row only while its `last_due_at` is still before the
   * first of them; a launcher that raced it and won moved it on, and this one then enqueues nothing.
   */
  async enqueue(name: string, dueTimes: readonly Date[]): Promise<RecurringEnqueued> {
    if (dueTimes.length === 0) return { name, ids: [], dueTimes: [] };
    const due = dueTimes.map((time) => time.toISOString());
    const { rows } = await sql<Pick<TaskRequestRow, 'id'> & { due: Date }>`
      WITH entry AS (
        SELECT name, task_class_name, options, queue, priority, try_limit FROM ${this.#recurring}
        WHERE name = ${name} AND last_due_at < ${due[0]}::timestamptz
        FOR UPDATE
      ),
      inserted AS (
        INSERT INTO ${sql.table(this.#table.qualified)} (task_class_name, options, queue, priority, try_limit, delay_until)
        SELECT entry.task_class_name, entry.options, entry.queue, entry.priority, entry.try_limit, d.due
        FROM entry CROSS JOIN unnest(${due}::timestamptz[]) WITH ORDINALITY AS d(due, n)
        ORDER BY d.n
        RETURNING id, delay_until
      ),
      moved AS (
        UPDATE ${this.#recurring} AS r SET last_due_at = ${due[due.length - 1]}::timestamptz,
          last_request_id = (SELECT max(id) FROM inserted)
        FROM entry WHERE r.name = entry.name
      )
      SELECT id::text AS id, delay_until AS due FROM inserted ORDER BY inserted.id`.execute(this.#db);
    return { name, ids: rows.map((row) => row.id), dueTimes: rows.map((row) => row.due) };
  }

  /** Every entry, by name. */
  async list(): Promise<RecurringRow[]> {
    const { rows } = await sql<Omit<RecurringTableRow, 'options' | 'priority' | 'try_limit'>>`
       SELECT name, task_class_name, cron, timezone, queue, backfill, last_due_at, last_request_id::text AS last_request_id, registered_at
       FROM ${this.#recurring} ORDER BY name`.execute(this.#db);
    return rows.map((row) => ({
      name: row.name,
      taskClassName: row.task_class_name,
      cron: row.cron,
      timezone: row.timezone,
      queue: row.queue,
      backfill: row.backfill,
      lastDueAt: row.last_due_at,
      lastRequestId: row.last_request_id,
      registeredAt: row.registered_at,
    }));
  }
}
