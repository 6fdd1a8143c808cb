import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { endedResults, type RetentionConfig } from '../config/retention-config.js';
import { attemptsTableFor } from './attempts-table.js';
import type { SqlDb } from './database.js';
import { endedSql } from './fragments.js';
import { readTableOrigin } from './table-adoption.js';

/** What a pruning run removed (or, dry, would remove). */
export interface PruneResult {
  /** Requests removed, per result. */
  requests: Record<string, number>;
  /** Attempt-history rows removed with them. */
  attempts: number;
  /**
   * False when nothing was done: another launcher was pruning the table at the time, or the table
   * is adopted and `retention.pruneAdopted` is false.
   */
  ran: boolean;
  /**
   * True when the runner adopted the table (an application made it), or no marker says it
   * created it: without `retention.pruneAdopted` such a table is never pruned.
   */
  adopted: boolean;
  /** True when rows of some rule were left for the next run (`maxBatchesPerRun` reached). */
  more: boolean;
}

/** Retention's advisory lock: one pruner per table at a time, on any host. */
function lockKey(table: TableName): string {
  return `cw_task_runner_prune:${table.qualified}`;
}

/**
 * Deletes ended requests older than their rule allows, with their attempt history, in batches of
 * `batchSize`: each batch is one short statement and one transaction, so no lock is held for
 * long and launchers writing outcomes never wait behind a pruning run. `ended_idx` (completed_at,
 * over ended rows only) finds the oldest first without reading the rest of the table.
 *
 * Only rows with `completed_at` set are touched: waiting and running requests are never pruned,
 * and a row that `retry` makes waiting again while a batch runs is re-checked under its row lock
 * (and skipped), as is any row locked at that moment (SKIP LOCKED).
 *
 * One pruner at a time: a session advisory lock on a connection held for the run; a second
 * caller does nothing (`ran: false`). The lock goes with the connection if the process dies.
 *
 * A table the runner adopted (an application's: see table-adoption.ts) keeps every row unless
 * `retention.pruneAdopted` is true: its history is the application's, and a default of 7 days
 * deleted a Rails application's rows from 2010 five minutes after the first start.
 */
export async function requestsPrune(
  db: SqlDb,
  table: TableName,
  retention: RetentionConfig,
  params: { dryRun?: boolean; shouldStop?: () => boolean } = {},
): Promise<PruneResult> {
  const result: PruneResult = { requests: {}, attempts: 0, ran: false, more: false, adopted: false };
  // Read on every run, not once at start: the marker is the table's, whoever migrated it since.
  result.adopted = (await readTableOrigin(db, table)) !== 'created';
  if (result.adopted && !retention.pruneAdopted) return result;
  const requests = sql.table(table.qualified);
  const attempts = sql.table(attemptsTableFor(table).qualified);
  await db.connection().execute(async (conn) => {
    const { rows } = await sql<{
      locked: boolean;
    }>`SELECT pg_try_advisory_lock(hashtext(${lockKey(table)})) AS locked`.execute(conn);
    if (rows[0]?.locked !== true) return;
    result.ran = true;
    try {
      for (const rule of retention.rules) {
        const ended = sql`${sql.raw(endedSql())} AND completed_at < now() - ${rule.keepMs}::float8 * interval '1 millisecond'
          AND result = ANY(${[...rule.results]}::text[])`;
        if (params.dryRun === true) {
          const counted = await sql<{ result: string; n: number; attempts: number }>`
            SELECT r.result, count(*)::int AS n,
                   COALESCE(sum((SELECT count(*) FROM ${attempts} a WHERE a.request_id = r.id)), 0)::int AS attempts
            FROM ${requests} AS r WHERE ${ended} GROUP BY r.result`.execute(conn);
          for (const row of counted.rows) {
            result.requests[row.result] = (result.requests[row.result] ?? 0) + row.n;
            result.attempts += row.attempts;
          }
          continue;
        }
        for (let batch = 0; ; batch += 1) {
          // A launcher stopping ends its run between batches: the next run (anyone's) goes on.
          if (batch >= retention.maxBatchesPerRun || params.shouldStop?.() === true) {
            result.more = true;
            break;
          }
          const deleted = await sql<{ result: string; n: number; attempts: number }>`
            WITH doomed AS (
              SELECT id FROM ${requests} WHERE ${ended}
              ORDER BY completed_at LIMIT ${retention.batchSize}::int
              FOR UPDATE SKIP LOCKED
            ),
            gone AS (
              DELETE FROM ${requests} AS t USING doomed WHERE t.id = doomed.id RETURNING t.id, t.result
            ),
            history AS (
              DELETE FROM ${attempts} AS a USING gone WHERE a.request_id = gone.id RETURNING a.id
            )
            SELECT result, count(*)::int AS n, (SELECT count(*) FROM history)::int AS attempts FROM gone GROUP BY result`.execute(
            conn,
          );
          let removed = 0;
          for (const row of deleted.rows) {
            result.requests[row.result] = (result.requests[row.result] ?? 0) + row.n;
            removed += row.n;
          }
          result.attempts += deleted.rows[0]?.attempts ?? 0;
          if (removed < retention.batchSize) break;
        }
      }
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtext(${lockKey(table)}))`.execute(conn);
    }
  });
  // Results in one order (the rules'), whatever order the statements found them in.
  const rank = (name: string): number => (endedResults as readonly string[]).indexOf(name);
  result.requests = Object.fromEntries(Object.entries(result.requests).sort(([a], [b]) => rank(a) - rank(b)));
  return result;
}
