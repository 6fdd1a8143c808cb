import {
  confinementOf,
  intersectPermissions,
  isUnconfined,
  lowerLimits,
  overrideLimits,
  type ChildConfinement,
} from '../config/confinement.js';
import type { RunnerConfig, TaskMode } from '../config/runner-config.js';
import type { TaskTraits } from '../tasks/task-traits.js';

/** Where and how long one try may run, and how its child is confined. */
export interface TrySettings {
  mode: TaskMode;
  /** Hard timeout in ms; null: none. */
  timeoutMs: number | null;
  /** The try's confinement when it differs from `config.childConfinement` (it then gets a child of its own); else null. */
  confinement: ChildConfinement | null;
}

/**
 * The settings of one try. Precedence, most specific first: the request's own `timeout_ms`, the
 * config's `taskOverrides[name]`, what the task class declares (`static mode`, `static timeoutMs`),
 * then `defaultMode` / `defaultTimeoutMs`.
 *
 * Confinement is narrowed, never widened, by the class: the operator's limits (`childLimits`,
 * each replaced by the override's) are lowered by the class's, and the operator's permission
 * policy (the override's, else `childPermissions`) is intersected with the class's (a class
 * alone may still set one where the operator set none). A thread cannot be confined, so:
 * - a class may not take itself into a thread when the operator confines children (a class
 *   declaring `static mode = 'thread'` runs in a process then, unless the operator's own
 *   `defaultMode` or override says thread);
 * - a try with a confinement of its own (override or class) always runs in a process.
 */
export function trySettings(
  config: RunnerConfig,
  taskClassName: string,
  traits: TaskTraits,
  requestTimeoutMs: number | null,
  warn?: (text: string) => void,
): TrySettings {
  const override = Object.hasOwn(config.taskOverrides, taskClassName) ? config.taskOverrides[taskClassName] : undefined;
  let timeoutMs: number | null;
  if (requestTimeoutMs !== null) timeoutMs = requestTimeoutMs;
  else if (override !== undefined && override.timeoutMs !== undefined) timeoutMs = override.timeoutMs;
  else timeoutMs = traits.timeoutMs ?? config.defaultTimeoutMs;

  const base = config.childConfinement;
  const limits = lowerLimits(
    override?.limits !== undefined ? overrideLimits(base.limits, override.limits) : base.limits,
    traits.limits ?? null,
  );
  const policy = override?.permissions !== undefined ? override.permissions : base.permissions;
  const permissions = intersectPermissions(policy, traits.permissions ?? null);
  let confinement: ChildConfinement | null = confinementOf(base.identity, limits, permissions);
  if (confinement.key === base.key) confinement = null;

  let mode = override?.mode ?? traits.mode ?? config.defaultMode;
  if (mode === 'thread' && override?.mode === undefined && traits.mode === 'thread' && !isUnconfined(base)) {
    warn?.(
      `task ${taskClassName} declares static mode = 'thread', but children are confined (childUser, childLimits or childPermissions): it runs in a process; set taskOverrides.${taskClassName}.mode to let it run in a thread`,
    );
    mode = 'process';
  }
  if (mode === 'thread' && confinement !== null) {
    warn?.(
      `task ${taskClassName} has limits or permissions of its own, which a thread cannot hold: it runs in a process`,
    );
    mode = 'process';
  }
  return { mode, timeoutMs, confinement };
}
