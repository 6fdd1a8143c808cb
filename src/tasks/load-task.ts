import { pathToFileURL } from 'node:url';
import { TaskRunnerError } from '../errors.js';
import { isTaskClass, type TaskClass } from './task.js';

const cache = new Map<string, TaskClass>();

/**
 * Imports a task file and picks its task class: the default export, else the export named like
 * the task's last name segment, else the file's only task class. Cached per file and name.
 */
export async function loadTaskClass(file: string, taskClassName: string): Promise<TaskClass> {
  const key = `${file}\0${taskClassName}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const shortName = taskClassName.split('::').pop()!;
  const candidates = Object.values(mod).filter(isTaskClass);
  const picked = [mod.default, mod[shortName]].find(isTaskClass) ?? (candidates.length === 1 ? candidates[0] : undefined);
  if (picked === undefined) {
    throw new TaskRunnerError(
      'TASK_INVALID',
      `${file} does not export a task class for "${taskClassName}": export default (or export ${shortName}) a class with a run() method`,
    );
  }
  cache.set(key, picked);
  return picked;
}
