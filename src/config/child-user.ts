import { execFileSync } from 'node:child_process';
import { ConfigError } from '../errors.js';
import type { ChildIdentity } from './confinement.js';

/**
 * Looks a user or group up in the system's databases (`getent`, so NSS sources such as LDAP
 * count, as they would for `su`). Node has no getpwnam; this runs once, when the config is
 * resolved, and only when `childUser` is set.
 */
function lookup(database: 'passwd' | 'group', name: string): string[] | null {
  try {
    const line = execFileSync('getent', [database, name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    });
    const fields = line.split('\n', 1)[0]!.split(':');
    return fields.length >= 4 ? fields : null;
  } catch (error) {
    // getent exits 2 for "not found"; anything else (missing getent) is reported as such.
    if ((error as { status?: unknown }).status === 2) return null;
    throw new ConfigError(
      database === 'passwd' ? 'childUser' : 'childGroup',
      `cannot look up ${JSON.stringify(name)}: ${(error as Error).message}`,
    );
  }
}

function numeric(value: string | number): number | null {
  if (typeof value === 'number') return value;
  return /^\d+$/.test(value) ? Number(value) : null;
}

/**
 * Resolves `childUser` / `childGroup` to ids. A numeric id is taken as it is; a name must exist.
 * Without a group, the user's primary group is used (never the launcher's: a child as `nobody`
 * in group root could still read group-root files). Changing user needs the launcher to run as
 * root, unless the user is the launcher's own.
 */
export function resolveChildIdentity(user: unknown, group: unknown): ChildIdentity | null {
  if (user === undefined || user === null) {
    if (group !== undefined && group !== null) throw new ConfigError('childGroup', 'needs childUser as well');
    return null;
  }
  const valid = (v: unknown): v is string | number =>
    (typeof v === 'string' && v.length > 0) || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32);
  if (!valid(user))
    throw new ConfigError('childUser', `must be a user name or a numeric uid, got ${JSON.stringify(user)}`);
  if (group !== undefined && group !== null && !valid(group)) {
    throw new ConfigError('childGroup', `must be a group name or a numeric gid, got ${JSON.stringify(group)}`);
  }
  let uid = numeric(user);
  let gid: number | null = null;
  let name = String(user);
  const entry = lookup('passwd', String(user));
  if (entry !== null) {
    name = entry[0]!;
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  } else if (uid === null) {
    throw new ConfigError('childUser', `no user named ${JSON.stringify(user)} on this system (getent passwd ${user})`);
  }
  if (group !== undefined && group !== null) {
    const groupEntry = lookup('group', String(group));
    gid = groupEntry !== null ? Number(groupEntry[2]) : numeric(group);
    if (gid === null)
      throw new ConfigError(
        'childGroup',
        `no group named ${JSON.stringify(group)} on this system (getent group ${group})`,
      );
  }
  if (gid === null)
    throw new ConfigError('childGroup', `uid ${uid} has no entry in the user database: set childGroup too`);
  const launcherUid = process.getuid?.() ?? null;
  if (launcherUid !== 0 && launcherUid !== uid) {
    throw new ConfigError(
      'childUser',
      `running children as ${name} (uid ${uid}) needs the launcher to run as root; it runs as uid ${launcherUid}`,
    );
  }
  if (uid === 0) throw new ConfigError('childUser', 'must be an unprivileged user; root confines nothing');
  return Object.freeze({ user: name, uid, gid });
}
