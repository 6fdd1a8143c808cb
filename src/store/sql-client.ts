import { CompiledQuery, type Kysely } from 'kysely';
import type pg from 'pg';
import { guardClient, isConnectionError } from './database.js';

/**
 * A statement the launcher runs many times: fixed text with `$n` parameters, and a name under
 * which PostgreSQL keeps it prepared on each connection (parsed and planned once per connection,
 * not once per call).
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

/**
 * Where the store's hot statements run. Over a pg pool they go as named prepared statements;
 * over a caller's Kysely instance (whose pool the runner cannot reach) as plain queries.
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
        const result = await client.query({ name: statement.name, text: statement.text, values: values as unknown[] });
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

export function kyselyClient(db: Kysely<any>): SqlClient {
  return {
    async query<Row>(statement: Statement, values: readonly unknown[]): Promise<Row[]> {
      const result = await db.executeQuery<Row>(CompiledQuery.raw(statement.text, [...values]));
      return result.rows;
    },
  };
}
