/**
 * Processes started by a thread-mode try are children of the launcher itself, so they cannot be
 * found by process group afterwards. In a worker thread the child_process functions are wrapped
 * (before any task loads; ESM imports see the wrappers through syncBuiltinESMExports): each
 * process is started detached, leading a group of its own, and its pid is recorded in the try's
 * shared slot, so the try's end (in the thread) or its termination (by the launcher) ends the
 * group. The synchronous functions return only once their process has exited; they are started
 * detached too, but what such a process leaves behind is not tracked.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import { maxTrackedProcesses } from '../thread-slots.js';

type AnyFunction = (...args: unknown[]) => unknown;

const isOptions = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * The arguments with `detached: true` in their options object. The options follow the command
 * (and the argument list, when there is one) and come before a callback.
 */
function detachedArgs(args: unknown[]): unknown[] {
  const copy = [...args];
  for (let i = 1; i < copy.length; i++) {
    if (isOptions(copy[i])) {
      copy[i] = { ...(copy[i] as object), detached: true };
      return copy;
    }
  }
  let at = 1;
  while (at < copy.length && Array.isArray(copy[at])) at++;
  while (at < copy.length && copy[at] === undefined) at++;
  copy.splice(at, 0, { detached: true });
  return copy;
}

/**
 * Installs the wrappers. `record(pid)` is told of each process started and returns false when the
 * try may start no more (its slot is full): the process is then killed and the call throws.
 * `beforeSpawn` is called before each process is started (to put the thread in the try's
 * control group, see thread-cgroup.ts).
 */
export function trackThreadSpawns(record: (pid: number) => boolean, beforeSpawn: () => void = () => undefined): void {
  const target = childProcess as unknown as Record<string, AnyFunction>;
  for (const name of ['spawn', 'execFile', 'exec', 'fork'] as const) {
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      beforeSpawn();
      const child = original.apply(this, detachedArgs(args)) as childProcess.ChildProcess;
      if (child.pid !== undefined && !record(child.pid)) {
        child.kill('SIGKILL');
        throw new Error(`thread mode: a try may start at most ${maxTrackedProcesses} processes`);
      }
      return child;
    };
  }
  for (const name of ['spawnSync', 'execFileSync', 'execSync'] as const) {
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      beforeSpawn();
      return original.apply(this, detachedArgs(args));
    };
  }
  syncBuiltinESMExports();
}
