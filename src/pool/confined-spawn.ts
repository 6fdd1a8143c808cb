/**
 * How a confined child is started. Without confinement a child is `node <execArgv> <entry>`, as
 * it always was: no wrapper, no extra exec. With it:
 *
 * - user and group: the spawn's `uid`/`gid` (libuv also drops the launcher's supplementary groups).
 * - resource limits: Node cannot set its own (no setrlimit), and a limit set after start would
 *   not bind the runtime's own start, so the child is started through `prlimit` (util-linux),
 *   which sets the limits on itself and execs Node: the pid stays the same, and the limits hold
 *   before the first line of the task loads. Where `prlimit` is missing, `sh -c 'ulimit ...; exec'`
 *   does the same. Each costs one exec, a few ms on a quiet machine beside Node's ~40 ms start.
 *   The CPU limit's hard bound is one second above its soft one, so the kernel's first word is
 *   SIGXCPU (named in the outcome), not a bare SIGKILL.
 * - the permission model: Node flags, with the runtime's own files always readable.
 */
import { accessSync, constants } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildConfinement, ResolvedLimits, ResolvedPermissions } from '../config/confinement.js';

export interface SpawnPlan {
  command: string;
  args: string[];
  uid?: number;
  gid?: number;
}

/** The package's root (holding `dist` and `package.json`, which `cw-task-runner/task` resolves through). */
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

/** Directories the child runtime reads before any task code: the package and its one lazy dependency. */
export function runtimePaths(): string[] {
  const paths = [path.resolve(packageRoot)];
  try {
    const yamlEntry = createRequire(import.meta.url).resolve('yaml');
    const marker = `${path.sep}node_modules${path.sep}yaml${path.sep}`;
    const at = yamlEntry.lastIndexOf(marker);
    paths.push(at >= 0 ? yamlEntry.slice(0, at + marker.length - 1) : path.dirname(yamlEntry));
  } catch {
    // Not resolvable from here: the child could not load it either; the try will say so.
  }
  return paths.filter((p, i) => !paths.slice(0, i).some((q) => p === q || p.startsWith(q + path.sep)));
}

let prlimitPath: string | null | undefined;

/** `prlimit` on PATH (looked for once), or null. */
export function findPrlimit(): string | null {
  if (prlimitPath !== undefined) return prlimitPath;
  prlimitPath = null;
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'prlimit');
    try {
      accessSync(candidate, constants.X_OK);
      prlimitPath = candidate;
      break;
    } catch {
      // not here
    }
  }
  return prlimitPath;
}

/** The permission model's flag on this Node: `--permission` from 22.13, else the experimental one. */
function permissionFlags(policy: ResolvedPermissions, readable: readonly string[]): string[] {
  const known = process.allowedNodeEnvironmentFlags;
  const flags = [known.has('--permission') ? '--permission' : '--experimental-permission'];
  // Its start-up warning would land in every task's log.
  if (known.has('--disable-warning')) flags.push('--disable-warning=ExperimentalWarning');
  const read = policy.fsRead.includes('*') ? ['*'] : [...new Set([...policy.fsRead, ...readable])];
  // One flag per path: Node 20.x and later refuse a comma-separated list.
  for (const p of read) flags.push(`--allow-fs-read=${p}`);
  for (const p of policy.fsWrite) flags.push(`--allow-fs-write=${p}`);
  if (policy.childProcess) flags.push('--allow-child-process');
  if (policy.worker) flags.push('--allow-worker');
  if (policy.addons) flags.push('--allow-addons');
  if (policy.wasi) flags.push('--allow-wasi');
  return flags;
}

function prlimitArgs(limits: ResolvedLimits): string[] {
  const args: string[] = [];
  if (limits.openFiles !== null) args.push(`--nofile=${limits.openFiles}:${limits.openFiles}`);
  if (limits.cpuSeconds !== null) args.push(`--cpu=${limits.cpuSeconds}:${limits.cpuSeconds + 1}`);
  if (limits.addressSpaceMb !== null) {
    const bytes = limits.addressSpaceMb * 1024 * 1024;
    args.push(`--as=${bytes}:${bytes}`);
  }
  return args;
}

/** The same limits set by the shell: soft first, so the hard one is never set below it. */
function ulimitScript(limits: ResolvedLimits): string {
  const steps: string[] = [];
  const both = (flag: string, soft: number, hard: number): void =>
    void steps.push(`ulimit -S ${flag} ${soft}`, `ulimit -H ${flag} ${hard}`);
  if (limits.openFiles !== null) both('-n', limits.openFiles, limits.openFiles);
  if (limits.cpuSeconds !== null) both('-t', limits.cpuSeconds, limits.cpuSeconds + 1);
  if (limits.addressSpaceMb !== null) both('-v', limits.addressSpaceMb * 1024, limits.addressSpaceMb * 1024);
  return `${steps.join(' && ')} && exec "$0" "$@"`;
}

/** The command that starts a child under `confinement` (`readable`: what the runtime must read). */
export function spawnPlan(
  entry: string,
  execArgv: readonly string[],
  confinement: ChildConfinement | null,
  readable: readonly string[],
  /** Where `prlimit` is; null: use the shell. Default: looked up on PATH (tests pass null). */
  prlimit?: string | null,
): SpawnPlan {
  if (confinement === null) return { command: process.execPath, args: [...execArgv, entry] };
  const { identity, limits, permissions } = confinement;
  const nodeArgs = [...(permissions === null ? [] : permissionFlags(permissions, readable)), ...execArgv, entry];
  const plan: SpawnPlan = { command: process.execPath, args: nodeArgs };
  if (limits !== null) {
    const wrapper = prlimit === undefined ? findPrlimit() : prlimit;
    if (wrapper !== null) {
      plan.command = wrapper;
      plan.args = [...prlimitArgs(limits), '--', process.execPath, ...nodeArgs];
    } else {
      plan.command = '/bin/sh';
      plan.args = ['-c', ulimitScript(limits), process.execPath, ...nodeArgs];
    }
  }
  if (identity !== null) {
    plan.uid = identity.uid;
    plan.gid = identity.gid;
  }
  return plan;
}

/**
 * Names the limit a child most likely died of, or null. SIGXCPU can only be the CPU limit; a
 * SIGKILL under a CPU limit may be its hard bound (a task that ignored SIGXCPU) or anything else
 * that kills; V8 out of memory, or a fatal signal, under an address-space limit is most likely
 * that limit (on Node 20 a heap that grows past it dies of SIGSEGV, writing nothing).
 */
export function limitCrashText(
  limits: ResolvedLimits | null,
  signal: string | null,
  stderrTail: string,
): string | null {
  if (limits === null) return null;
  if (signal === 'SIGXCPU' && limits.cpuSeconds !== null)
    return `CPU time limit (${limits.cpuSeconds} s) exceeded: the kernel sent SIGXCPU`;
  if (signal === 'SIGKILL' && limits.cpuSeconds !== null) {
    return `killed by SIGKILL; a task that ignores SIGXCPU is killed at the CPU time limit's hard bound (${limits.cpuSeconds + 1} s), which may be why`;
  }
  if (limits.addressSpaceMb !== null) {
    if (/out of memory|Fatal process OOM|failed to reserve/i.test(stderrTail)) {
      return `address space limit (${limits.addressSpaceMb} MiB) reached: V8 could not get memory and ended the process (${signal ?? 'no signal'})`;
    }
    // V8 growing its heap past RLIMIT_AS often dies of SIGSEGV with nothing written: a likely cause, said as such.
    if (signal === 'SIGSEGV' || signal === 'SIGABRT' || signal === 'SIGTRAP' || signal === 'SIGBUS') {
      return `address space limit (${limits.addressSpaceMb} MiB) probably reached (V8 fails this way when memory is refused)`;
    }
  }
  return null;
}

/** A note for a failed try whose error says it ran out of file descriptors under a limit. */
export function openFilesNote(limits: ResolvedLimits | null, text: string): string | null {
  if (limits === null || limits.openFiles === null || !text.includes('EMFILE')) return null;
  return `(this child's open files limit is ${limits.openFiles}: childLimits.openFiles)`;
}

/**
 * Checks, as the child user, that every path the runtime needs can be read (directories also
 * entered), by starting one `node` as that user: the kernel's answer, ACLs and all, instead of a
 * guess from mode bits. Runs once, at launcher start, only when `childUser` is set. Resolves
 * with one line per path that cannot be read; empty when all is well.
 */
export async function unreadableBy(
  identity: { uid: number; gid: number },
  paths: readonly string[],
): Promise<string[]> {
  const script = `const fs = require('node:fs'); const bad = [];
    for (const p of JSON.parse(process.argv[1])) {
      try { fs.accessSync(p, fs.statSync(p).isDirectory() ? fs.constants.R_OK | fs.constants.X_OK : fs.constants.R_OK); }
      catch (e) { bad.push(p + ' (' + (e.code || e.message) + ')'); }
    }
    process.stdout.write(JSON.stringify(bad));`;
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', script, JSON.stringify(paths)],
      { uid: identity.uid, gid: identity.gid, env: {}, cwd: '/', timeout: 30_000 },
      (error, stdout, stderr) => {
        if (error !== null) {
          resolve([`node could not run as uid ${identity.uid} (${(stderr || error.message).trim().split('\n')[0]})`]);
          return;
        }
        try {
          resolve(JSON.parse(stdout) as string[]);
        } catch {
          resolve([`unexpected answer from the check: ${stdout.slice(0, 200)}`]);
        }
      },
    );
  });
}
