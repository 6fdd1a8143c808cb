// Where the bench runs. A configured URL (BENCH_DATABASE_URL, TEST_DATABASE_URL, DATABASE_URL) or
// the system server at 127.0.0.1:5432 as root; in either, a fresh database per run when the role
// may create one, so pg_stat_database counts only this run's transactions and nothing is left
// behind. With none configured and none at 127.0.0.1:5432, a throwaway embedded server (the
// package's own helper, so it also starts as root in a mode-700 home) with durable commits.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { createClient, dropTaskRunnerRequestTable, migrate } from '../dist/index.js';
import { startThrowawayPostgres } from '../dist/embedded/throwaway-server.js';

const systemUrl = 'postgres://root@127.0.0.1:5432/postgres';
export const benchTable = 'bench_requests';

async function reachable(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

function withDatabase(url, name) {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Opens the bench's database; `close()` drops what it created. */
export async function openBenchDatabase() {
  const configured = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL;
  let base = configured ?? systemUrl;
  let embedded = null;
  if (!(await reachable(base))) {
    if (configured !== undefined) {
      throw new Error(
        `cannot connect to the configured database (${new URL(base).host}); check BENCH_DATABASE_URL / TEST_DATABASE_URL / DATABASE_URL`,
      );
    }
    process.stderr.write(`bench: no PostgreSQL at ${systemUrl}; starting a throwaway embedded server\n`);
    embedded = await startThrowawayPostgres({
      settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', max_connections: 100 },
    });
    base = embedded.url();
  }
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  const name = `bench_${new Date().toISOString().slice(0, 10).replace(/-/g, '')}_${randomBytes(3).toString('hex')}`;
  let url = base;
  let created = false;
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
    url = withDatabase(base, name);
    created = true;
  } catch (error) {
    process.stderr.write(
      `bench: cannot create a database (${error.message}); using the configured one, whose statistics other clients may share\n`,
    );
  }
  const server = (await admin.query('SHOW server_version')).rows[0].server_version;
  await resetTable(url);
  return {
    url,
    adminUrl: base,
    name: created ? name : new URL(base).pathname.slice(1),
    server,
    dedicated: created,
    async close() {
      if (created) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
      await admin.end();
      if (embedded !== null) await embedded.stop();
    },
  };
}

/** Drops and recreates the bench table and its history table: every measurement starts empty. */
export async function resetTable(url) {
  const scheduler = createClient({ db: url, tableName: benchTable });
  try {
    await dropTaskRunnerRequestTable(scheduler.db, benchTable);
    await migrate(scheduler.db, { tableName: benchTable });
  } finally {
    await scheduler.close();
  }
}

/**
 * Transactions committed in the database so far. Backends send their counts to the statistics
 * system when idle (at most once a second) and when they exit, so read this after the
 * launchers' connections have closed; the wait below is for those backends to be gone.
 */
export async function committedTransactions(client, databaseName, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await client.query(
      'SELECT count(*)::int AS others FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [databaseName],
    );
    if (rows[0].others === 0 || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query('SELECT xact_commit::float8 AS n FROM pg_stat_database WHERE datname = $1', [
    databaseName,
  ]);
  return rows[0]?.n ?? Number.NaN;
}
