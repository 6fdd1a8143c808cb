import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeRootDir, reachableBy, rootServerHome, type ServerAccount } from './server-account.js';

/**
 * Where the embedded cluster of a configured data directory really lives, and its password.
 *
 * Normally where configured (`<tmpDir>/embedded-pg`), with `.lock`, `.owner`, `.log` and
 * `.password` files beside it. When root runs the server as `postgres` and that account cannot
 * reach the configured directory's parent (a project in a mode-700 home), the cluster moves to
 * `/var/lib/cw-task-runner/projects/<hash of the configured path>/data`: the same project
 * directory always maps to the same place, so every command run from it finds the same server,
 * and no home directory is opened up. A `source` file there names the configured path.
 *
 * The password is random per cluster, kept in a mode-600 file that only the project's user (or
 * root) reads; a cluster made before passwords were random has none, and uses the old fixed one.
 */

export interface ClusterLocation {
  /** The data directory the server uses. */
  readonly dataDir: string;
  /** The configured data directory, where the user expects it. */
  readonly configuredDataDir: string;
  /** True when the cluster lives under /var/lib/cw-task-runner instead of where configured. */
  readonly relocated: boolean;
  readonly lockFile: string;
  readonly ownerFile: string;
  readonly logFile: string;
  readonly passwordFile: string;
}

/** The password of clusters initialised before it became random. */
const legacyPassword = 'password';

function besideDataDir(dataDir: string, configuredDataDir: string, relocated: boolean): ClusterLocation {
  return {
    dataDir,
    configuredDataDir,
    relocated,
    lockFile: `${dataDir}.lock`,
    ownerFile: `${dataDir}.owner`,
    logFile: `${dataDir}.log`,
    passwordFile: `${dataDir}.password`,
  };
}

/** The relocated home of `configuredDataDir` (whether or not it is used). */
export function relocatedDir(configuredDataDir: string): string {
  const hash = createHash('sha256').update(path.resolve(configuredDataDir)).digest('hex').slice(0, 16);
  return path.join(rootServerHome, 'projects', hash);
}

/** Decides where the cluster of `configuredDataDir` lives for `account`, creating the parent directories. */
export async function locateCluster(
  configuredDataDir: string,
  account: ServerAccount | null,
): Promise<ClusterLocation> {
  const configured = path.resolve(configuredDataDir);
  await mkdir(path.dirname(configured), { recursive: true });
  if (await reachableBy(account, [path.dirname(configured)])) return besideDataDir(configured, configured, false);
  const home = relocatedDir(configured);
  await makeRootDir(rootServerHome, 0o755);
  await makeRootDir(path.dirname(home), 0o711);
  // 711: the server's account may enter to reach its data directory, but lists nothing and
  // reads neither the password nor the lock files.
  await makeRootDir(home, 0o711);
  await writeFile(path.join(home, 'source'), `${configured}\n`);
  return besideDataDir(path.join(home, 'data'), configured, true);
}

/** True when `dataDir` holds an initialised cluster. */
export const clusterExists = (dataDir: string): Promise<boolean> =>
  access(path.join(dataDir, 'PG_VERSION')).then(
    () => true,
    () => false,
  );

/** The cluster's password: from its file, else the legacy one for an existing cluster, else a new one (written first). */
export async function clusterPassword(location: ClusterLocation): Promise<string> {
  const stored = await readFile(location.passwordFile, 'utf8').catch(() => null);
  if (stored !== null && stored.trim() !== '') return stored.trim();
  if (await clusterExists(location.dataDir)) return legacyPassword;
  const password = randomBytes(18).toString('base64url');
  await writeFile(location.passwordFile, `${password}\n`, { mode: 0o600 });
  return password;
}
