import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { run, type Executor } from './database.js';
import type { TaskRequestRow } from './schema.js';

/** One row to insert; `options` is already YAML text. */
export interface NewRequest {
  taskClassName: string;
  options: string | null;
  tryLimit: number;
  delayUntil: Date | null;
  /**
   * Not before this many milliseconds after the database's now (when `delayUntil` is null): a
   * relative delay is counted by the database's clock, as every stored time is, not the caller's.
   */
  delayMs?: number | null;
  priority: number;
  queue: string;
  /** Hard timeout of each try in milliseconds, or null for none of the request's own. */
  timeoutMs: number | null;
  /** W3C trace context of the scheduling span, or null. */
  traceparent?: string | null;
  /** See `unique-requests.ts`; null for a request without a key. */
  uniqueKey?: string | null;
}

/**
 * Inserts many requests in one statement (arrays unnested server-side), on a Kysely instance or
 * transaction or on a raw pg client, so a caller can schedule inside its own transaction: the rows
 * become visible, and the notify trigger fires, only when that transaction commits.
 * Returns the new ids in input order.
 */
export async function requestsInsert(
  executor: Executor,
  table: TableName,
  rows: readonly NewRequest[],
): Promise<string[]> {
  if (rows.length === 0) return [];
  const inserted = await run<Pick<TaskRequestRow, 'id'>>(
    executor,
    sql<Pick<TaskRequestRow, 'id'>>`
      INSERT INTO ${sql.table(table.qualified)} (task_class_name, options, try_limit, delay_until, priority, queue, timeout_ms, traceparent, unique_key)
      SELECT task_class_name, options, try_limit, COALESCE(delay_until, now() + delay_ms * interval '1 millisecond'), priority, queue,
             timeout_ms, traceparent, unique_key
      FROM unnest(${rows.map((r) => r.taskClassName)}::text[], ${rows.map((r) => r.options)}::text[],
                  ${rows.map((r) => r.tryLimit)}::int[], ${rows.map((r) => r.delayUntil?.toISOString() ?? null)}::timestamptz[],
                  ${rows.map((r) => r.priority)}::int[], ${rows.map((r) => r.queue)}::text[], ${rows.map((r) => r.timeoutMs)}::int[],
                  ${rows.map((r) => r.traceparent ?? null)}::text[], ${rows.map((r) => r.uniqueKey ?? null)}::text[],
                  ${rows.map((r) => r.delayMs ?? null)}::float8[])
           WITH ORDINALITY AS v(task_class_name, options, try_limit, delay_until, priority, queue, timeout_ms, traceparent, unique_key, delay_ms, n)
      ORDER BY n
      RETURNING id::text AS id`,
  );
  // bigserial values are drawn in insertion order, which ORDER BY n fixes to the input order.
  // Whole numbers as text: the shorter is smaller, else the order of the characters is theirs.
  return inserted.map((row) => String(row.id)).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
}
