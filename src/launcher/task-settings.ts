import type { RunnerConfig, TaskMode } from '../config/runner-config.js';
import type { TaskTraits } from '../tasks/task-traits.js';

/** Where and how long one try may run. */
export interface TrySettings {
  mode: TaskMode;
  /** Hard timeout in ms; null: none. */
  timeoutMs: number | null;
}

/**
 * The settings of one try. Precedence, most specific first: the request's own `timeout_ms`, the
 * config's `taskOverrides[name]`, what the task class declares (`static mode`, `static timeoutMs`),
 * then `defaultMode` / `defaultTimeoutMs`.
 */
export function trySettings(config: RunnerConfig, taskClassName: string, traits: TaskTraits, requestTimeoutMs: number | null): TrySettings {
  const override = Object.hasOwn(config.taskOverrides, taskClassName) ? config.taskOverrides[taskClassName] : undefined;
  const mode = override?.mode ?? traits.mode ?? config.defaultMode;
  let timeoutMs: number | null;
  if (requestTimeoutMs !== null) timeoutMs = requestTimeoutMs;
  else if (override !== undefined && override.timeoutMs !== undefined) timeoutMs = override.timeoutMs;
  else timeoutMs = traits.timeoutMs ?? config.defaultTimeoutMs;
  return { mode, timeoutMs };
}
