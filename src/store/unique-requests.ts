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

/** A request to insert; one with a `uniqueKey` only unless a request with its key is in the named states. */
export interface MaybeUniqueRequest extends NewRequest {
  /** Default `active` when `uniqueKey` is set. */
  uniqueWhile?: UniqueWhile;
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
 * Inserts requests, those with a unique key only when no request holding the key is in the named
 * states (whose id is returned instead); ids in input order. Race-free without a read-then-write window:
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
export async function requestsInsertUnique(
  executor: Executor,
  table: TableName,
  items: readonly MaybeUniqueRequest[],
): Promise<string[]> {
  if (items.length === 0) return [];
  // The first item of each key decides for the batch; later ones of that key get its request.
  const leaders = new Map<string, MaybeUniqueRequest>();
  for (const item of items)
    if (item.uniqueKey != null && !leaders.has(item.uniqueKey)) leaders.set(item.uniqueKey, item);
  const keys = [...leaders.keys()].sort();
  return inTransaction(executor, async (trx) => {
    if (keys.length > 0) {
      await run(
        trx,
        sql`SELECT pg_advisory_xact_lock(hashtext(${'cw_task_runner_unique:' + table.qualified}), hashtext(k))
        FROM unnest(${keys}::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n`,
      );
    }
    const found = new Map<string, string>();
    for (const kind of ['waiting', 'active', 'ended-within'] as const) {
      const group = [...leaders.values()].filter((item) => (item.uniqueWhile?.kind ?? 'active') === kind);
      if (group.length === 0) continue;
      const within = group.map((item) => (item.uniqueWhile?.kind === 'ended-within' ? item.uniqueWhile.withinMs : 0));
      const rows = await run<{ key: string; id: string | null }>(
        trx,
        sql`
        SELECT v.key, (SELECT r.id::text FROM ${sql.table(table.qualified)} AS r
                       WHERE r.unique_key = v.key AND ${sql.raw(matchSql(kind))} ORDER BY r.id DESC LIMIT 1) AS id
        FROM unnest(${group.map((item) => item.uniqueKey!)}::text[], ${within}::float8[]) AS v(key, within_ms)`,
      );
      for (const row of rows) if (row.id !== null) found.set(row.key, row.id);
    }
    // Keyless items, and the first item of each key no request holds, in input order.
    const fresh = items.filter(
      (item) => item.uniqueKey == null || (leaders.get(item.uniqueKey) === item && !found.has(item.uniqueKey)),
    );
    const inserted = await requestsInsert(trx, table, fresh);
    const idOf = new Map<MaybeUniqueRequest, string>(fresh.map((item, index) => [item, inserted[index]!]));
    for (const item of fresh) if (item.uniqueKey != null) found.set(item.uniqueKey, idOf.get(item)!);
    return items.map((item) => (item.uniqueKey == null ? idOf.get(item)! : found.get(item.uniqueKey)!));
  });
}
