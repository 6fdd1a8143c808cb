import { CompiledQuery } from 'kysely';
import type pg from 'pg';
import { guardClient, isConnectionError, type SqlDb } from './database.js';

/**
 * A statement the launcher runs many times: fixed text with `$n` parameters, built once.
 *
 * It is deliberately not a named prepared statement. PostgreSQL plans a prepared statement
 * generically after five calls and keeps that plan until the table's statistics change; planned
 * while the table was small, the launch statement's UPDATEs became sequential scans of the whole
 * table (2 per statement, 28,000 rows each), and throughput depended on whether autovacuum had
 * analysed the table yet: 1,500 or 4,000 tasks/s for reused children at c=8, 3,600 or 10,000 for
 * threads at c=64, from one run to the next. Planned on every call with its actual arrays it
 * always looks rows up by key; the planning costs well under a millisecond per statement, and a
 * statement carries dozens to hundreds of tries.
 */
export interface Statement {
  readonly text: string;
}

/**
 * Where the store's hot statements run: over a pg pool, on a client whose connection errors are
 * handled (and which is not pooled again after one); over a caller's Kysely instance, through it.
 */
export interface SqlClient {
  query<Row>(statement: Statement, values: readonly unknown[]): Promise<Row[]>;
}

export function poolClient(pool: pg.Pool): SqlClient {
  return {
    async query<Row>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
      const client = await pool.connect();
      guardClient(client);
      let broken = false;
      try {
        const result = await client.query({ text: statement.text, values: values as unknown[] });
        return result.rows as Row[];
      } catch (error) {
        broken = isConnectionError(error);
        throw error;
      } finally {
        // A client whose connection failed is not pooled again; one whose statement was refused is fine.
        client.release(broken);
      }
    },
  };
}

export function kyselyClient(db: SqlDb): SqlClient {
  return {
    async query<Row>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
      const result = await db.executeQuery<Row>(CompiledQuery.raw(statement.text, [...values]));
      return result.rows;
    },
  };
}
