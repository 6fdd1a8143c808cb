import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresDialect,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type CompiledQuery,
  type PostgresPool,
  type RawBuilder,
} from 'kysely';
import pg from 'pg';
import type { DatabaseInput } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';

/** Anything with pg's `query(text, values)`: a `pg.Client`, a `pg.PoolClient` or a `pg.Pool`. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/** No tables: see `SqlDb`. */
export type SqlTables = Record<never, never>;

/**
 * How the runner's own code holds a Kysely: as an executor of `sql` statements, each with its row
 * type declared beside it (from the schema types in schema.ts), never as a query builder, since
 * the table names are configuration, not types. It declares no tables, so a query-builder call
 * on it does not compile. (The Kysely handed to users, `runner.db`, stays `Kysely<any>`: it is
 * theirs to type.)
 */
export type SqlDb = Kysely<SqlTables>;

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

/**
 * A pg client emits 'error' when its connection dies (a server restart, pg_terminate_backend).
 * The pool listens on idle clients only; a client checked out at that moment, with no listener,
 * would throw the error out of the socket handler and end the whole process. The query in flight
 * rejects with the same error, which is where the runner handles it, so the event itself only
 * needs a listener.
 */
const guarded = new WeakSet<object>();
export function guardClient(client: { on(event: 'error', listener: (error: Error) => void): unknown }): void {
  if (guarded.has(client)) return;
  guarded.add(client);
  client.on('error', () => undefined);
}

/**
 * The pool as Kysely sees it: every client it hands out has an error listener, whoever created
 * the pool and whenever the client was connected (a caller's pool may hold clients from before).
 */
function guardedPool(pool: pg.Pool): PostgresPool {
  return {
    async connect() {
      const client = await pool.connect();
      guardClient(client);
      return client;
    },
    end: () => pool.end(),
  };
}

/**
 * `timestamp without time zone` as UTC. node-pg's own parser reads such a value as the process's
 * local time, so a launcher with TZ=Asia/Tokyo read every Rails timestamp 9 h early; the text is
 * handed to the timestamptz parser with an explicit `+00` instead (before a trailing ` BC`).
 */
const timestampOid = 1114;
const parseTimestamptz = pg.types.getTypeParser(1184, 'text');
function parseUtcTimestamp(text: string): unknown {
  return /^-?infinity$/.test(text) ? parseTimestamptz(text) : parseTimestamptz(text.replace(/( BC)?$/, '+00$1'));
}
const utcTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === timestampOid && format !== 'binary'
      ? parseUtcTimestamp
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * Opens a pg pool whose clients, idle or checked out, survive their connection's death, and whose
 * sessions read and write timestamps in UTC whatever the server's `timezone` setting and the
 * process's TZ: the session's time zone is set to UTC as each connection opens (ActiveRecord's
 * pg adapter does the same, and Rails writes UTC into `timestamp without time zone` columns), and
 * such columns are parsed as UTC. Without it, a database set to Asia/Tokyo had every start
 * written 9 h after the Rails row's `created_at`, and compared `delay_until` 9 h early.
 *
 * The SET is sent from the pool's 'connect' event, which pg-pool emits before it hands the new
 * client out, so it is the first statement of the session: every statement of ours comes after
 * it on the same connection. (Not the `options=-c TimeZone=UTC` startup parameter: PgBouncer
 * refuses unknown startup parameters by default.) An error here is the connection's, and the
 * next statement on it reports it.
 */
export function openPool(config: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool({
    types: utcTypes,
    keepAlive: true,
    keepAliveInitialDelayMillis: keepAliveDelayMs,
    ...config,
  });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => {
    guardClient(client);
    client.query("SET TIME ZONE 'UTC'").catch(() => undefined);
  });
  if (config.query_timeout !== undefined) pool.on('connect', endAfterReadTimeout);
  return pool;
}

/**
 * TCP keepalive on every connection the runner opens, probing after 10 s of silence: a peer
 * that is gone (a host down, a network path cut where packets are dropped) then fails the socket
 * instead of leaving it open for ever. It cannot see a path that a live proxy or load balancer
 * black-holes (its kernel answers the probes): the statement timeouts below cover that.
 */
const keepAliveDelayMs = 10_000;

/**
 * How long one of the runner's statements may take: the lease, and at least 5 s. PostgreSQL
 * cancels a statement at this (`statement_timeout`); a second later the client gives up on an
 * answer that never comes (`query_timeout`: the server was not reached, a black hole) and ends
 * that connection; connecting may take as long. So a launch statement or a renewal never waits
 * on a dead connection for longer than a lease, and a cut that never heals errors out, over and
 * over, instead of hanging the launcher for ever.
 */
export function databaseTimeoutMs(leaseMs: number): number {
  return Math.max(leaseMs, 5_000);
}

/**
 * pg (8.x) leaves a client whose query hit `query_timeout` with that query still active: every
 * later query on it waits behind it, so the pool would keep handing out a dead connection. Such
 * a client is ended at once; ended, the pool drops it when it is released.
 */
function endAfterReadTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as { query: unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      result.catch((error: Error) => {
        if (isReadTimeout(error)) client.end().catch(() => undefined);
      });
    }
    return result;
  };
}

function isReadTimeout(error: unknown): boolean {
  return /Query read timeout/.test((error as Error | null)?.message ?? '');
}

/**
 * Turns the `db` option into a Kysely instance, opening a pool only for a connection string: that
 * pool's statements time out after `statementTimeoutMs` when given (see `databaseTimeoutMs`).
 */
export function openDatabase(
  input: DatabaseInput,
  maxConnections = 10,
  timeouts: { statementTimeoutMs?: number } = {},
): OpenDatabase {
  if (typeof input === 'string') {
    const timeoutMs = timeouts.statementTimeoutMs;
    const pool = openPool({
      connectionString: input,
      max: maxConnections,
      ...(timeoutMs === undefined
        ? {}
        : { statement_timeout: timeoutMs, query_timeout: timeoutMs + 1_000, connectionTimeoutMillis: timeoutMs }),
    });
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: guardedPool(pool) }) });
    let closing: Promise<void> | null = null;
    return { db, pool, connectionString: input, close: () => (closing ??= db.destroy()) };
  }
  if (isPgPool(input)) {
    const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: guardedPool(input) }) });
    return { db, pool: input, connectionString: null, close: async () => undefined };
  }
  if (isKysely(input)) {
    return { db: input, pool: null, connectionString: null, close: async () => undefined };
  }
  throw new TypeError('db must be a connection string, a pg.Pool or a Kysely instance');
}

/**
 * True when a statement failed because the database could not be reached or the connection died
 * (a restart, pg_terminate_backend, a network cut), as opposed to PostgreSQL refusing the
 * statement itself: the first is worth retrying as it is, the second is not.
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // 57014: cancelled, by `statement_timeout` among others: the statement is retried like a lost connection.
    return (
      connectionCodes.has(code) ||
      code.startsWith('08') ||
      code.startsWith('57P') ||
      code === '57014' ||
      code === '53300' ||
      code === '3D000'
    );
  }
  if (error instanceof AggregateError) return error.errors.some(isConnectionError);
  // pg's own messages when the socket goes: no SQLSTATE to go by.
  return /Connection terminated|connection (?:is )?closed|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i.test(
    (error as Error | null)?.message ?? '',
  );
}

const connectionCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'EAI_AGAIN']);

/**
 * Names a failure to reach the database as such (DATABASE_UNAVAILABLE), so a dead server reads
 * as one and not as a stack from the driver. Other errors pass through unchanged.
 */
export function asDatabaseError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const unreachable =
    typeof code === 'string' &&
    (connectionCodes.has(code) ||
      code.startsWith('08') ||
      code.startsWith('28') ||
      code === '3D000' ||
      code === '57P03');
  const aggregate =
    error instanceof AggregateError &&
    error.errors.some((inner) => connectionCodes.has((inner as { code?: string }).code ?? ''));
  if (!unreachable && !aggregate) return error;
  const detail =
    (error as Error).message ||
    (aggregate ? (error as AggregateError).errors.map((e) => (e as Error).message).join('; ') : String(code));
  return new TaskRunnerError('DATABASE_UNAVAILABLE', `cannot use the database: ${detail}`, { cause: error });
}
