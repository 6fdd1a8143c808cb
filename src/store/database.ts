import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type RawBuilder,
} from 'kysely';
import pg from 'pg';
import type { DatabaseInput } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';

/** Anything with pg's `query(text, values)`: a `pg.Client`, a `pg.PoolClient` or a `pg.Pool`. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** Where a statement runs: a Kysely instance or transaction, or a raw pg client in a transaction. */
export type Executor = Kysely<any> | PgQueryable;

export function isKysely(value: unknown): value is Kysely<any> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Kysely<any>).selectFrom === 'function' &&
    typeof (value as Kysely<any>).executeQuery === 'function'
  );
}

export function isPgPool(value: unknown): value is pg.Pool {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as pg.Pool).connect === 'function' &&
    typeof (value as pg.Pool).query === 'function' &&
    typeof (value as pg.Pool).totalCount === 'number'
  );
}

/** A Kysely that only compiles, used to turn a statement into text for a raw pg client. */
const compiler = new Kysely<any>({
  dialect: {
    createAdapter: () => new PostgresAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createQueryCompiler: () => new PostgresQueryCompiler(),
  },
});

/** Runs a raw statement on either kind of executor and returns its rows. */
export async function run<Row>(executor: Executor, statement: RawBuilder<Row>): Promise<Row[]> {
  if (isKysely(executor)) {
    return (await statement.execute(executor)).rows;
  }
  const compiled: CompiledQuery = statement.compile(compiler);
  const result = await executor.query(compiled.sql, [...compiled.parameters]);
  return result.rows as Row[];
}

/** An open database: the Kysely the runner queries through, and what it must close. */
export interface OpenDatabase {
  readonly db: Kysely<any>;
  /** The pg pool behind `db`, when the runner can reach it (not for a caller's Kysely). */
  readonly pool: pg.Pool | null;
  /** The connection string, when the caller gave one. */
  readonly connectionString: string | null;
  /** Closes what the runner opened itself; leaves the caller's pool or Kysely alone. */
  close(): Promise<void>;
}

/** Turns the `db` option into a Kysely instance, opening a pool only for a connection string. */
export function openDatabase(input: DatabaseInput, maxConnections = 10): OpenDatabase {
  if (typeof input === 'string') {
    const pool = new pg.Pool({ connectionString: input, max: maxConnections });
    // An idle client's error (server restart) must not crash the host process.
    pool.on('error', () => undefined);
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
    let closing: Promise<void> | null = null;
    return { db, pool, connectionString: input, close: () => (closing ??= db.destroy()) };
  }
  if (isPgPool(input)) {
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: input }) });
    return { db, pool: input, connectionString: null, close: async () => undefined };
  }
  if (isKysely(input)) {
    return { db: input, pool: null, connectionString: null, close: async () => undefined };
  }
  throw new TypeError('db must be a connection string, a pg.Pool or a Kysely instance');
}

const connectionCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'EAI_AGAIN']);

/**
 * Names a failure to reach the database as such (DATABASE_UNAVAILABLE), so a dead server reads
 * as one and not as a stack from the driver. Other errors pass through unchanged.
 */
export function asDatabaseError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const unreachable =
    typeof code === 'string' && (connectionCodes.has(code) || code.startsWith('08') || code.startsWith('28') || code === '3D000' || code === '57P03');
  const aggregate = error instanceof AggregateError && error.errors.some((inner) => connectionCodes.has((inner as { code?: string }).code ?? ''));
  if (!unreachable && !aggregate) return error;
  const detail = (error as Error).message || (aggregate ? (error as AggregateError).errors.map((e) => (e as Error).message).join('; ') : String(code));
  return new TaskRunnerError('DATABASE_UNAVAILABLE', `cannot use the database: ${detail}`, { cause: error });
}
