import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { isKysely, isPgPool, run, type Executor, type PgQueryable } from './database.js';
import { runningSql, waitingSql } from './fragments.js';
import { requestsInsert, type NewRequest } from './insert-requests.js';

/**
 * When a request with the same unique key counts as "the same request":
 *   waiting          it has not started yet (`waiting` in fragments.ts: a retry waiting counts too)
 *   active           waiting or running
 *   ended-within     active, or ended less than `withinMs` ago (whatever its result)
 */
export type UniqueWhile = { kind: 'waiting' } | { kind: 'active' } | { kind: 'ended-within'; withinMs: number };

/** A request to insert unless one with its key is in the named states. */
export interface UniqueRequest extends NewRequest {
  uniqueKey: string;
  uniqueWhile: UniqueWhile;
}

function matchSql(kind: UniqueWhile['kind']): string {
  const active = `((${waitingSql()}) OR (${runningSql()}))`;
  if (kind === 'waiting') return `(${waitingSql()})`;
  if (kind === 'active') return active;
  return `(${active} OR completed_at > now() - v.within_ms * interval '1 millisecond')`;
}

/**
 * Runs `body` inside a transaction on `executor`: its own when the executor is a Kysely
 * instance or a pg pool, the caller's when it is a Kysely transaction or a pg client (which the
 * caller has put inside BEGIN, as for any schedule in its own transaction).
 */
async function inTransaction<T>(executor: Executor, body: (executor: Executor) => Promise<T>): Promise<T> {
  if (isKysely(executor)) {
    return executor.isTransaction ? body(executor) : executor.transaction().execute((trx) => body(trx));
  }
  if (isPgPool(executor)) {
    const client = await executor.connect();
    try {
      await client.query('BEGIN');
      const result = await body(client as PgQueryable);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
  return body(executor);
}

/**
 * Inserts requests that carry a unique key, or finds the request already holding the key; ids in
 * input order. Race-free without a read-then-write window:
 *
 *   1. a transaction-scoped advisory lock per key (taken in key order, so two batches that share
 *      keys cannot deadlock): schedulers of one key queue here, those of other keys never wait;
 *   2. a statement that starts after the lock, so its snapshot sees whatever the previous holder
 *      committed (READ COMMITTED: the lock is released only once that commit is visible), finds
 *      the newest request of each key in the named states;
 *   3. the rest are inserted; the lock is held until the transaction commits.
 *
 * A partial unique index cannot do this alone: it fixes one set of states per key for every
 * caller, "ended within an hour" is no index predicate, and a "waiting" index would make the
 * launcher's own UPDATE fail when a failed try turns its row waiting again beside a newer one.
 * Items of one batch that share a key get the first one's request.
 */
export async function requestsInsertUnique(executor: Executor, table: TableName, items: readonly UniqueRequest[]): Promise<string[]> {
  if (items.length === 0) return [];
  const first = new Map<string, number>();
  items.forEach((item, index) => {
    if (!first.has(item.uniqueKey)) first.set(item.uniqueKey, index);
  });
  const leaders = [...first.values()].map((index) => items[index]!);
  const keys = [...first.keys()].sort();
  const ids = await inTransaction(executor, async (trx) => {
    await run(trx, sql`SELECT pg_advisory_xact_lock(hashtext(${'cw_task_runner_unique:' + table.qualified}), hashtext(k))
      FROM unnest(${keys}::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n`);
    const found = new Map<string, string>();
    for (const kind of ['waiting', 'active', 'ended-within'] as const) {
      const group = leaders.filter((item) => item.uniqueWhile.kind === kind);
      if (group.length === 0) continue;
      const within = group.map((item) => (item.uniqueWhile.kind === 'ended-within' ? item.uniqueWhile.withinMs : 0));
      const rows = await run<{ key: string; id: string | null }>(trx, sql`
        SELECT v.key, (SELECT id::text FROM ${sql.table(table.qualified)}
                       WHERE unique_key = v.key AND ${sql.raw(matchSql(kind))} ORDER BY id DESC LIMIT 1) AS id
        FROM unnest(${group.map((item) => item.uniqueKey)}::text[], ${within}::float8[]) AS v(key, within_ms)`);
      for (const row of rows) if (row.id !== null) found.set(row.key, row.id);
    }
    const missing = leaders.filter((item) => !found.has(item.uniqueKey));
    const inserted = await requestsInsert(trx, table, missing);
    missing.forEach((item, index) => found.set(item.uniqueKey, inserted[index]!));
    return found;
  });
  return items.map((item) => ids.get(item.uniqueKey)!);
}
