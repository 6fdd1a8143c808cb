import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { delayedSql, runnableSql, stateConditionSql } from './fragments.js';
import type { SqlDb } from './database.js';

/** How many requests stand in each state, as `status` and the dashboard's overview show them. */
export interface StatusCounts {
  waiting: number;
  delayed: number;
  /** Claimed and started. */
  running: number;
  /** Claimed by a launcher ahead of a free slot, not started (`started_at` NULL). */
  held: number;
  finished: number;
  /**
   * Ended without FINISHED (tries ran out, the failure was permanent, or it was cancelled or
   * parked), or never ended with no try left: the states failed, crashed, parked and cancelled.
   */
  givenUp: number;
  /** Of `givenUp`: ended CANCELLED. */
  cancelled: number;
  /** Of `givenUp`: ended PARKED (too many crashes). */
  parked: number;
}

/** Counts of rows per derived state (the conditions of fragments.ts), in one scan. */
export async function requestsCountByState(db: SqlDb, table: TableName): Promise<StatusCounts> {
  const givenUp = (['failed', 'crashed', 'parked', 'cancelled'] as const)
    .map((state) => `(${stateConditionSql(state)})`)
    .join(' OR ');
  const { rows } = await sql<Record<keyof StatusCounts, string>>`
    SELECT
      count(*) FILTER (WHERE ${sql.raw(runnableSql())}) AS waiting,
      count(*) FILTER (WHERE ${sql.raw(delayedSql())}) AS delayed,
      count(*) FILTER (WHERE ${sql.raw(stateConditionSql('running'))}) AS running,
      count(*) FILTER (WHERE ${sql.raw(stateConditionSql('held'))}) AS held,
      count(*) FILTER (WHERE ${sql.raw(stateConditionSql('finished'))}) AS finished,
      count(*) FILTER (WHERE ${sql.raw(givenUp)}) AS "givenUp",
      count(*) FILTER (WHERE ${sql.raw(stateConditionSql('cancelled'))}) AS cancelled,
      count(*) FILTER (WHERE ${sql.raw(stateConditionSql('parked'))}) AS parked
    FROM ${sql.table(table.qualified)}`.execute(db);
  const row = rows[0]!;
  return {
    waiting: Number(row.waiting),
    delayed: Number(row.delayed),
    running: Number(row.running),
    held: Number(row.held),
    finished: Number(row.finished),
    givenUp: Number(row.givenUp),
    cancelled: Number(row.cancelled),
    parked: Number(row.parked),
  };
}
