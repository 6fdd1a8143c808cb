import { pathToFileURL } from 'node:url';
import { TaskRunnerError } from '../errors.js';
import { nodeModule } from '../shared/builtins.js';
import { isTaskClass, type TaskClass } from './task.js';

const cache = new Map<string, TaskClass>();

/** Files Node itself loads, as CommonJS or as an ES module; a TypeScript file goes through its loader's import hook. */
const requirable = /\.(?:js|mjs|cjs)$/;

/**
 * A task file taken with `require()`, which loads ES modules too on Node 20.19 and later: in a
 * child whose runtime is CommonJS (the bundle) this keeps Node's asynchronous module loader from
 * starting in every fresh child. Null when `import()` must do it: an older Node, a
 * TypeScript file, or a module with a top-level await (checked before any of its code runs).
 */
function requireTask(file: string): Record<string, unknown> | null {
  if ((process.features as { require_module?: boolean }).require_module !== true || !requirable.test(file)) return null;
  let exported: unknown;
  try {
    exported = nodeModule().createRequire(file)(file);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (code === 'ERR_REQUIRE_ASYNC_MODULE' || code === 'ERR_REQUIRE_ESM') return null;
    throw error;
  }
  // An ES module comes back as its namespace; a CommonJS file as its `module.exports`, which
  // `import()` would have shown as the default export.
  return exported !== null && typeof exported === 'object'
    ? (exported as Record<string, unknown>)
    : { default: exported };
}

/**
 * Loads a task file and picks its task class: the default export, else the export named like
 * the task's last name segment, else the file's only task class. Cached per file and name.
 */
export async function loadTaskClass(file: string, taskClassName: string): Promise<TaskClass> {
  const key = `${file}\0${taskClassName}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const mod = requireTask(file) ?? ((await import(pathToFileURL(file).href)) as Record<string, unknown>);
  const shortName = taskClassName.split('::').pop()!;
  const candidates = Object.values(mod).filter(isTaskClass);
  const picked =
    [mod.default, mod[shortName]].find(isTaskClass) ?? (candidates.length === 1 ? candidates[0] : undefined);
  if (picked === undefined) {
    throw new TaskRunnerError(
      'TASK_INVALID',
      `${file} does not export a task class for "${taskClassName}": export default (or export ${shortName}) a class with a run() method`,
    );
  }
  cache.set(key, picked);
  return picked;
}
