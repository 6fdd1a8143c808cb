import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger, type Logger } from '../shared/logger.js';
import { binariesFor } from './postgres-binaries.js';
import { embeddedUrl, initialiseIfNew, spawnServer, stopServer } from './postgres-server.js';
import { makeRootDir, reachableBy, rootServerHome, serverAccount } from './server-account.js';

/**
 * A PostgreSQL server of one's own in a fresh temporary directory, removed at `stop()`: for the
 * test suite (its shared server and the private ones of tests that restart PostgreSQL) and the
 * benchmark. Same binaries and account rules as the development server, so it starts wherever
 * that one does, root in a mode-700 home included; but no sharing, no lock, a random port and
 * password, and durability off unless asked for.
 */

export interface ThrowawayPostgresOptions {
  /** Default: a free port. */
  port?: number;
  /** Server settings (`-c name=value`) on top of {@link throwawayDefaultSettings}. */
  settings?: Readonly<Record<string, string | number>>;
  logger?: Logger;
  /** Longest wait for the server to accept connections. Default 60000 ms. */
  startTimeoutMs?: number;
}

export interface ThrowawayPostgres {
  readonly port: number;
  readonly dataDir: string;
  /** Connection string of `database` (default `postgres`) as the superuser. */
  url(database?: string): string;
  /** Fast shutdown (every session ended), then start again on the same data and port. */
  restart(): Promise<void>;
  /** Fast shutdown, keeping the data and port until `resume()` (a database that is down). */
  pause(): Promise<void>;
  /** Starts a paused server again. */
  resume(): Promise<void>;
  /** Stops the server and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

/** Throwaway data: no durability, and room for several launchers and their children. */
export const throwawayDefaultSettings = Object.freeze({
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: 300,
});

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Starts a throwaway PostgreSQL.
 *
 * @example
 * const server = await startThrowawayPostgres();
 * const runner = createRunner({ db: server.url(), tasksDir });
 * // ...
 * await server.stop();
 */
export async function startThrowawayPostgres(options: ThrowawayPostgresOptions = {}): Promise<ThrowawayPostgres> {
  const logger = options.logger ?? silentLogger;
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const account = await serverAccount();
  const binaries = await binariesFor(account, logger, timeoutMs);
  let base = tmpdir();
  if (!(await reachableBy(account, [base]))) {
    base = path.join(rootServerHome, 'tmp');
    await makeRootDir(rootServerHome, 0o755);
    await makeRootDir(base, 0o711);
  }
  const dir = await mkdtemp(path.join(base, 'cwtr-pg-'));
  const dataDir = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const password = randomBytes(18).toString('base64url');
  const port = options.port ?? (await freePort());
  const settings = { ...throwawayDefaultSettings, ...options.settings };
  let pid: number | null = null;
  const start = async (): Promise<void> => {
    pid = await spawnServer({ binaries, account, dataDir, port, password, logFile, timeoutMs, settings });
  };
  const halt = async (): Promise<void> => {
    if (pid !== null && !(await stopServer(pid, 30_000)))
      throw new Error(`the throwaway PostgreSQL (pid ${pid}) did not stop within 30 s`);
    pid = null;
  };
  try {
    // mkdtemp made it 700 and ours: the server's account only needs to pass through.
    await makeRootDir(dir, 0o711);
    await initialiseIfNew({ binaries, account, dataDir, password, logger, noSync: true });
    await start();
  } catch (error) {
    await halt().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  let stopped: Promise<void> | null = null;
  return {
    port,
    dataDir,
    url: (database = 'postgres') => embeddedUrl(port, database, password),
    async restart() {
      await halt();
      await start();
    },
    pause: halt,
    resume: start,
    stop: () =>
      (stopped ??= (async () => {
        try {
          await halt();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      })()),
  };
}
