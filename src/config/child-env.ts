/**
 * Children get an allowlisted environment, not the launcher's whole one: secrets the launcher
 * holds stay out of task processes unless named, and start-up stays fast. `DATABASE_URL` is not
 * in it: the launcher's database credentials are not the tasks' (a task that needs a database
 * is given its own, by `childEnv` or by naming the variable in `childEnvAllowlist`). This is
 * hygiene, not a boundary: a child running as the launcher's user can read the launcher's whole
 * environment in /proc/<ppid>/environ; `childUser` is what stops that. On the development
 * machine a Node child starts in ~45 ms with a clean environment but ~125 ms when
 * NODE_EXTRA_CA_CERTS is set, because Node then reads and parses the whole CA bundle at boot.
 */
export const defaultChildEnvAllowlist: readonly string[] = Object.freeze([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TZ',
  'TMPDIR',
  'TERM',
  'NODE_ENV',
]);

/**
 * The environment for children: the allowlisted keys of `source` (an entry ending in `*` is a
 * prefix; `*` alone passes everything), then `extra` on top.
 */
export function buildChildEnv(
  source: NodeJS.ProcessEnv,
  allowlist: readonly string[],
  extra: Readonly<Record<string, string>> | null,
): Record<string, string> {
  const exact = new Set(allowlist.filter((entry) => !entry.endsWith('*')));
  const prefixes = allowlist.filter((entry) => entry.endsWith('*')).map((entry) => entry.slice(0, -1));
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (value === undefined) continue;
    if (exact.has(key) || prefixes.some((prefix) => key.startsWith(prefix))) env[key] = value;
  }
  return { ...env, ...extra };
}
