/**
 * A fresh database per test file (or per test), cloned from the migrated template; row factories
 * that write any state straight into the request table; and `waitFor`, which polls a database
 * condition with a timeout.
 */
import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, inject } from 'vitest';
import type {} from '../global-setup.js'; // the ProvidedContext keys (types only)

export interface TestDatabase {
  /** Database name, unique to this use. */
  name: string;
  /** Connection string of the clone. */
  url: string;
  pool: pg.Pool;
  db: Kysely<any>;
  /** Closes the pool and drops the database (sessions still connected are ended). */
  drop(): Promise<void>;
}

/** Connection string of `database` on the test server. */
export function urlFor(database: string): string {
  const url = new URL(inject('adminUrl'));
  url.pathname = `/${database}`;
  return url.href;
}

async function withAdmin<T>(body: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('adminUrl') });
  await client.connect();
  try {
    return await body(client);
  } finally {
    await client.end();
  }
}

/**
 * Clones the template into a database of its own (`CREATE DATABASE … TEMPLATE`), which already
 * holds a migrated `task_runner_requests` table.
 */
export async function createTestDatabase(params: { poolMax?: number } = {}): Promise<TestDatabase> {
  const name = `${inject('dbPrefix')}${process.pid}_${randomBytes(4).toString('hex')}`;
  const template = inject('templateDb');
  await withAdmin(async (client) => {
    // Cloning fails while another session is connected to the template (a clone in progress on
    // an older server); that window is short, so try a few times.
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.query(
          `CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE ${client.escapeIdentifier(template)}`,
        );
        return;
      } catch (error) {
        if (attempt >= 20 || !/being accessed by other users/.test((error as Error).message)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
      }
    }
  });
  const url = urlFor(name);
  const pool = new pg.Pool({ connectionString: url, max: params.poolMax ?? 5 });
  pool.on('error', () => undefined);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool }) });
  let dropped = false;
  return {
    name,
    url,
    pool,
    db,
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.destroy();
      await withAdmin((client) =>
        client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`),
      );
    },
  };
}

/**
 * The usual per-file setup in one call: a database cloned before the file's tests, dropped after
 * them, and (unless `truncate` is false) an empty request table before each test. The returned
 * object reads through to the database once `beforeAll` has made it.
 */
export function useTestDatabase(params: { truncate?: boolean; poolMax?: number } = {}): TestDatabase {
  let current: TestDatabase | undefined;
  beforeAll(async () => {
    current = await createTestDatabase({ poolMax: params.poolMax });
  });
  afterAll(async () => {
    await current?.drop();
  });
  if (params.truncate ?? true) {
    beforeEach(async () => {
      await current!.pool.query('TRUNCATE task_runner_requests');
    });
  }
  const get = (): TestDatabase => {
    if (current === undefined) throw new Error('the test database exists only inside tests and hooks');
    return current;
  };
  return {
    get name() {
      return get().name;
    },
    get url() {
      return get().url;
    },
    get pool() {
      return get().pool;
    },
    get db() {
      return get().db;
    },
    drop: () => get().drop(),
  };
}

/** Where a factory's statement runs: a pool, or one client (inside a transaction, say). */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** Columns a test may set on a request row; anything left out takes the table's default. */
export interface RequestFields {
  task_class_name?: string;
  /** YAML text, or a plain object stored as JSON (which is YAML too). */
  options?: string | Record<string, unknown> | null;
  pid?: number | null;
  host?: string | null;
  launcher_id?: string | null;
  process_identity?: string | null;
  thread_id?: number | null;
  tries?: number;
  try_limit?: number;
  delay_until?: Date | null;
  started_at?: Date | null;
  completed_at?: Date | null;
  created_at?: Date;
  result?: string | null;
  result_text?: string | null;
  lease_expires_at?: Date | null;
  queue?: string;
  priority?: number;
  /** Any other column (an application's own). */
  [column: string]: unknown;
}

/** A table name for a test's SQL: validated, then quoted. */
function tableRef(table: string): string {
  if (!/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/.test(table)) throw new Error(`bad test table name ${table}`);
  return table
    .split('.')
    .map((part) => `"${part}"`)
    .join('.');
}

/**
 * Inserts one request with plain SQL, in any state (a dead pid, a backdated lease, a used-up
 * try count), and returns its id. `task_class_name` defaults to `Echo`.
 */
export async function insertRequest(
  pool: Queryable,
  fields: RequestFields = {},
  table = 'task_runner_requests',
): Promise<string> {
  const row: Record<string, unknown> = { task_class_name: 'Echo', ...fields };
  if (row.options !== null && typeof row.options === 'object') row.options = JSON.stringify(row.options);
  const columns = Object.keys(row);
  const quoted = columns.map((column) => pg.escapeIdentifier(column));
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO ${tableRef(table)} (${quoted.join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
    columns.map((column) => row[column]),
  );
  return String(rows[0]!.id);
}

/** Inserts `count` requests of the same shape (one insert, then one copy); returns ids in order. */
export async function insertRequests(
  pool: Queryable,
  count: number,
  fields: RequestFields = {},
  table = 'task_runner_requests',
): Promise<string[]> {
  if (count <= 0) return [];
  const first = await insertRequest(pool, fields, table);
  const columns = ['task_class_name', ...Object.keys(fields).filter((column) => column !== 'task_class_name')]
    .map((column) => pg.escapeIdentifier(column))
    .join(', ');
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO ${tableRef(table)} (${columns})
     SELECT ${columns} FROM ${tableRef(table)}, generate_series(2, $2::int) WHERE id = $1
     RETURNING id`,
    [first, count],
  );
  return [first, ...rows.map((r) => String(r.id))].sort((a, b) => Number(BigInt(a) - BigInt(b)));
}

/** The request row as stored (ids as strings), or null. */
export async function getRow(pool: Queryable, id: string, table = 'task_runner_requests'): Promise<any> {
  const { rows } = await pool.query(`SELECT * FROM ${tableRef(table)} WHERE id = $1`, [id]);
  return rows[0] ?? null;
}

export interface WaitForOptions {
  /** Give up after this long. Default 10000 ms. */
  timeoutMs?: number;
  /** Between checks. Default 50 ms. */
  intervalMs?: number;
  /** Named in the timeout error. */
  what?: string;
}

/**
 * Polls `check` until it returns something truthy and returns that, or throws after `timeoutMs`
 * with the last value seen. For conditions in the database (a row reaching a state) or the OS (a
 * pid gone), never as a sleep.
 */
export async function waitFor<T>(check: () => Promise<T> | T, options: WaitForOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    last = await check();
    if (last) return last as NonNullable<T>;
    if (Date.now() >= deadline) {
      let shown: string;
      try {
        shown = JSON.stringify(last);
      } catch {
        shown = String(last);
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.what ?? 'a condition'} (last: ${shown})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Waits until request `id` has `completed_at` set and returns the row. */
export function waitForCompleted(
  pool: pg.Pool,
  id: string,
  timeoutMs = 20_000,
  table = 'task_runner_requests',
): Promise<any> {
  return waitFor(
    async () => {
      const row = await getRow(pool, id, table);
      return row?.completed_at != null ? row : null;
    },
    { timeoutMs, what: `request ${id} to complete` },
  );
}
