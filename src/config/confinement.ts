/**
 * How far a task's child process is confined, beyond running in a process of its own:
 *
 * - its user and group (`childUser`, `childGroup`): the boundary. A child running as the
 *   launcher's user can read the launcher's whole environment (`/proc/<ppid>/environ`), its files
 *   and its sockets; a child running as another, unprivileged user cannot.
 * - resource limits (`childLimits`: open files, CPU seconds, address space), set on the process
 *   before Node starts, so they bind the child runtime and the task alike.
 * - Node's permission model (`childPermissions`): which paths the task may read and write,
 *   whether it may start processes or worker threads. A guard rail inside the process, not a
 *   boundary: it does not cover the network or signals, and it is experimental in Node 20.
 *
 * Limits and permissions may also be set per task name (`taskOverrides`, the operator's word)
 * and declared by a task class (`static limits`, `static permissions`, the author's word). The
 * operator's setting is the ceiling: what a class declares can only narrow it. The user is the
 * operator's alone: task code choosing the user it runs as would make the boundary its own.
 *
 * This module validates and merges these settings; the pool turns them into a spawn.
 */
import path from 'node:path';
import { ConfigError } from '../errors.js';
import type { FieldSpec } from './option-spec.js';

/** Resource limits of one child process, each applied as both its soft and hard limit. */
export interface ChildLimits {
  /** Open file descriptors (RLIMIT_NOFILE). At least 64: the child runtime itself holds ~20. */
  openFiles?: number | null;
  /**
   * CPU time in seconds (RLIMIT_CPU). Past it the kernel sends SIGXCPU and the try is CRASHED
   * with the limit named; one second later, SIGKILL (a task that ignores SIGXCPU gains a second).
   */
  cpuSeconds?: number | null;
  /** Address space in MiB (RLIMIT_AS). At least 1024: Node 20 reserves ~700 MiB to start at all. */
  addressSpaceMb?: number | null;
}

/**
 * Node's permission model for a child (`--experimental-permission`, `--permission` from Node
 * 22.13). Anything not allowed here is refused with `ERR_ACCESS_DENIED`. The child runtime's own
 * files (the package's `dist` and its dependencies) and the tasks directory stay readable.
 */
export interface ChildPermissions {
  /**
   * Paths (a directory covers what is below it), or `*` for everything. Relative paths are
   * resolved against the working directory (in a config file: the file's directory); a task
   * class must give absolute ones. Default none.
   */
  fsRead?: string[];
  /** Paths as in `fsRead`. Default none. */
  fsWrite?: string[];
  /** May the task start processes. Default false. */
  childProcess?: boolean;
  /** May the task start worker threads. Default false. */
  worker?: boolean;
  /** May the task load native addons (`--allow-addons`: Node 20.20, 21.6 and later). Default false. */
  addons?: boolean;
  /** May the task use WASI (`--allow-wasi`: Node 20.20, 22 and later). Default false. */
  wasi?: boolean;
}

export type ResolvedLimits = Readonly<{
  openFiles: number | null;
  cpuSeconds: number | null;
  addressSpaceMb: number | null;
}>;
export type ResolvedPermissions = Readonly<{
  fsRead: readonly string[];
  fsWrite: readonly string[];
  childProcess: boolean;
  worker: boolean;
  addons: boolean;
  wasi: boolean;
}>;

/** The user a child runs as, looked up when the config was resolved. */
export type ChildIdentity = Readonly<{ user: string; uid: number; gid: number }>;

/** Everything that shapes how one child is spawned. Children with equal `key`s are interchangeable. */
export interface ChildConfinement {
  readonly identity: ChildIdentity | null;
  readonly limits: ResolvedLimits | null;
  readonly permissions: ResolvedPermissions | null;
  readonly key: string;
}

/** The limits a child can be given (`childLimits`, a task's `limits`): their bounds and meaning. */
export const limitSpecs = {
  openFiles: {
    kind: 'integerOrNull',
    min: 64,
    max: 1_048_576,
    default: null,
    description: 'open file descriptors (`RLIMIT_NOFILE`); past it the call that opens one fails with `EMFILE`',
  },
  cpuSeconds: {
    kind: 'integerOrNull',
    min: 1,
    max: 31_536_000,
    default: null,
    description:
      'CPU time in seconds (`RLIMIT_CPU`): SIGXCPU at the limit, SIGKILL one second later; the try ' + 'is CRASHED',
  },
  addressSpaceMb: {
    kind: 'integerOrNull',
    min: 1024,
    max: 1_048_576 * 64,
    default: null,
    description:
      'address space in MiB (`RLIMIT_AS`), native memory and buffers included; Node 20 needs ~700 MiB ' + 'to start',
  },
} as const satisfies { readonly [K in keyof Required<ChildLimits>]: FieldSpec };

/** The permission policy of a child (`childPermissions`, a task's `permissions`): Node's permission model. */
export const permissionSpecs = {
  fsRead: {
    kind: 'strings',
    default: [],
    defaultText: 'none',
    description:
      'paths the task may read (a directory covers what is below it; `*` everything); the package and the ' +
      'tasks directory stay readable',
  },
  fsWrite: {
    kind: 'strings',
    default: [],
    defaultText: 'none',
    description: 'paths the task may write, as in `fsRead`',
  },
  childProcess: {
    kind: 'boolean',
    default: false,
    description: 'may the task start processes (`--allow-child-process`)',
  },
  worker: { kind: 'boolean', default: false, description: 'may the task start worker threads (`--allow-worker`)' },
  addons: {
    kind: 'boolean',
    default: false,
    description: 'may the task load native addons (`--allow-addons`, Node 20.20 and later)',
  },
  wasi: {
    kind: 'boolean',
    default: false,
    description: 'may the task use WASI (`--allow-wasi`, Node 20.20 and later)',
  },
} as const satisfies { readonly [K in keyof Required<ChildPermissions>]: FieldSpec };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKeys(field: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0)
    throw new ConfigError(field, `unknown key ${JSON.stringify(unknown[0])}; allowed: ${allowed.join(', ')}`);
}

/** Validates limits; null when none is set. */
export function parseLimits(field: string, value: unknown): ResolvedLimits | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw new ConfigError(field, 'must be { openFiles?, cpuSeconds?, addressSpaceMb? }');
  unknownKeys(field, value, Object.keys(limitSpecs));
  const one = (name: keyof typeof limitSpecs): number | null => {
    const v = value[name];
    if (v === undefined || v === null) return null;
    const { min, max } = limitSpecs[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(`${field}.${name}`, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const limits = { openFiles: one('openFiles'), cpuSeconds: one('cpuSeconds'), addressSpaceMb: one('addressSpaceMb') };
  return Object.values(limits).every((v) => v === null) ? null : Object.freeze(limits);
}

/**
 * Validates a permission policy; null when none is given. Paths must be absolute unless `base`
 * is given (config paths are resolved against it; a task class has no sensible base).
 */
export function parsePermissions(field: string, value: unknown, base: string | null): ResolvedPermissions | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value))
    throw new ConfigError(field, 'must be { fsRead?, fsWrite?, childProcess?, worker?, addons?, wasi? }');
  unknownKeys(field, value, Object.keys(permissionSpecs));
  const paths = (name: 'fsRead' | 'fsWrite'): string[] => {
    const v = value[name];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || !v.every((item) => typeof item === 'string' && item.length > 0)) {
      throw new ConfigError(`${field}.${name}`, 'must be a list of paths (or "*")');
    }
    return [
      ...new Set(
        v.map((item: string) => {
          if (item === '*') return item;
          if (item.includes(','))
            throw new ConfigError(
              `${field}.${name}`,
              `a path may not contain a comma (Node reads it as a list): ${item}`,
            );
          if (!path.isAbsolute(item) && base === null)
            throw new ConfigError(`${field}.${name}`, `must be absolute paths, got ${JSON.stringify(item)}`);
          return path.resolve(base ?? '/', item);
        }),
      ),
    ];
  };
  const flag = (name: 'childProcess' | 'worker' | 'addons' | 'wasi'): boolean => {
    const v = value[name];
    if (v === undefined || v === null) return false;
    if (typeof v !== 'boolean')
      throw new ConfigError(`${field}.${name}`, `must be true or false, got ${JSON.stringify(v)}`);
    const nodeFlag = name === 'addons' ? '--allow-addons' : name === 'wasi' ? '--allow-wasi' : null;
    if (v && nodeFlag !== null && !process.allowedNodeEnvironmentFlags.has(nodeFlag)) {
      throw new ConfigError(`${field}.${name}`, `needs a Node that knows ${nodeFlag}; this one is ${process.version}`);
    }
    return v;
  };
  return Object.freeze({
    fsRead: Object.freeze(paths('fsRead')),
    fsWrite: Object.freeze(paths('fsWrite')),
    childProcess: flag('childProcess'),
    worker: flag('worker'),
    addons: flag('addons'),
    wasi: flag('wasi'),
  });
}

function within(inner: string, outer: string): boolean {
  const relative = path.relative(outer, inner);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** The paths both lists allow: each path of one that lies inside a path of the other. */
function intersectPaths(a: readonly string[], b: readonly string[]): string[] {
  if (a.includes('*')) return [...b];
  if (b.includes('*')) return [...a];
  const result = new Set<string>();
  for (const x of a)
    for (const y of b) {
      if (within(y, x)) result.add(y);
      else if (within(x, y)) result.add(x);
    }
  return [...result];
}

/** What both policies allow (a class narrowing the operator's policy). */
export function intersectPermissions(
  a: ResolvedPermissions | null,
  b: ResolvedPermissions | null,
): ResolvedPermissions | null {
  if (a === null) return b;
  if (b === null) return a;
  return Object.freeze({
    fsRead: Object.freeze(intersectPaths(a.fsRead, b.fsRead)),
    fsWrite: Object.freeze(intersectPaths(a.fsWrite, b.fsWrite)),
    childProcess: a.childProcess && b.childProcess,
    worker: a.worker && b.worker,
    addons: a.addons && b.addons,
    wasi: a.wasi && b.wasi,
  });
}

/** The lower of each limit (a class can only lower what the operator set). */
export function lowerLimits(a: ResolvedLimits | null, b: ResolvedLimits | null): ResolvedLimits | null {
  if (a === null) return b;
  if (b === null) return a;
  const low = (x: number | null, y: number | null): number | null => (x === null ? y : y === null ? x : Math.min(x, y));
  return Object.freeze({
    openFiles: low(a.openFiles, b.openFiles),
    cpuSeconds: low(a.cpuSeconds, b.cpuSeconds),
    addressSpaceMb: low(a.addressSpaceMb, b.addressSpaceMb),
  });
}

/** Operator limits with a per-task override: each limit the override sets replaces the config's. */
export function overrideLimits(base: ResolvedLimits | null, override: ResolvedLimits | null): ResolvedLimits | null {
  if (override === null) return base;
  if (base === null) return override;
  return Object.freeze({
    openFiles: override.openFiles ?? base.openFiles,
    cpuSeconds: override.cpuSeconds ?? base.cpuSeconds,
    addressSpaceMb: override.addressSpaceMb ?? base.addressSpaceMb,
  });
}

export function confinementOf(
  identity: ChildIdentity | null,
  limits: ResolvedLimits | null,
  permissions: ResolvedPermissions | null,
): ChildConfinement {
  return Object.freeze({
    identity,
    limits,
    permissions,
    key: JSON.stringify([identity?.uid, identity?.gid, limits, permissions]),
  });
}

/** True when nothing beyond the process boundary is asked for: the plain, fastest spawn. */
export function isUnconfined(confinement: ChildConfinement): boolean {
  return confinement.identity === null && confinement.limits === null && confinement.permissions === null;
}
