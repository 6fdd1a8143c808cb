import { execFile } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { TaskRunnerError } from '../errors.js';

/**
 * Who the embedded PostgreSQL runs as. PostgreSQL refuses to run as root, so a root process runs
 * it (and initdb) as the `postgres` user, created when missing; any other user runs it as itself.
 * Everything the server opens must then be reachable by that account, which root's own files
 * (a clone in a mode-700 home) often are not: {@link reachableBy} asks the account itself.
 */

export const serverUserName = 'postgres';

/**
 * Root's home for what the `postgres` account must reach: copied binaries and relocated data
 * directories. Outside every user's home, so no home directory needs opening up.
 */
export const rootServerHome = '/var/lib/cw-task-runner';

/** The account to switch to before exec; null when the server runs as this process's user. */
export interface ServerAccount {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

const run = promisify(execFile);

async function lookup(name: string): Promise<ServerAccount | null> {
  try {
    const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return null;
  }
}

export const isRoot = (): boolean => process.getuid?.() === 0;

/** Null unless root; as root, the `postgres` account (created as a system user when missing). */
export async function serverAccount(): Promise<ServerAccount | null> {
  if (!isRoot()) return null;
  const found = await lookup(serverUserName);
  if (found !== null) return found;
  try {
    // -f: a group left by an earlier partial attempt is fine.
    await run('groupadd', ['-f', '--system', serverUserName]);
    await run('useradd', [
      '--system',
      '--gid',
      serverUserName,
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      serverUserName,
    ]);
  } catch (error) {
    // Another process may have created it meanwhile: only a still missing account is an error.
    const again = await lookup(serverUserName);
    if (again !== null) return again;
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      `PostgreSQL cannot run as root and the user "${serverUserName}" could not be created: ${(error as Error).message.trim()}`,
      { cause: error },
    );
  }
  const created = await lookup(serverUserName);
  if (created === null)
    throw new TaskRunnerError('EMBEDDED_UNAVAILABLE', `the user "${serverUserName}" was created but cannot be found`);
  return created;
}

/**
 * True when `account` can use every path (`test -x`: enter a directory, run a file), asked of
 * the account itself, so group membership and ACLs count exactly as they will for the server.
 * Node drops supplementary groups when it switches uid, and so do we here: the answer matches a
 * server spawned the same way.
 */
export async function reachableBy(account: ServerAccount | null, paths: readonly string[]): Promise<boolean> {
  if (account === null) return true;
  try {
    await run('/bin/sh', ['-c', 'for p; do [ -x "$p" ] || exit 1; done', 'sh', ...paths], {
      uid: account.uid,
      gid: account.gid,
      cwd: '/',
    });
    return true;
  } catch {
    return false;
  }
}

/** Creates `dir` (and parents) with `mode` on `dir` itself, whatever the umask. */
export async function makeRootDir(dir: string, mode: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, mode);
}
