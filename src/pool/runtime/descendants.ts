/**
 * What a try started must end with the try. A child runs in a process group of its own, so when
 * it exits the launcher ends the whole group. A child that runs several tries cannot end its own
 * group between them, so it ends the other members itself, before it reports a try: any process
 * still in its group then was started by that try (or an earlier one). Finding them means reading
 * every /proc/<pid>/stat (about 1.5 ms with ~90 processes), so it is done only after a try that
 * started a process: the child_process functions are wrapped to notice (ESM imports see the
 * wrappers through syncBuiltinESMExports). A process started some other way (a native addon) is
 * found when the child itself exits and its group is ended.
 *
 * A process that left the group (setsid, a daemon) is beyond this: the launcher's control group
 * per try (../try-cgroup.ts) contains those, where the system has one.
 */
import { childProcessExports, fs, nodeModule } from '../../shared/builtins.js';

const spawning = ['spawn', 'exec', 'execFile', 'fork', 'spawnSync', 'execSync', 'execFileSync'] as const;
let started = false;

/** Wraps the child_process functions so a try that starts a process is noticed. */
export function watchSpawns(): void {
  // Loaded here, not imported: a child used for one try never needs it, and it costs ~2 ms of boot.
  const target = childProcessExports() as Record<string, (...args: unknown[]) => unknown>;
  for (const name of spawning) {
    const original = target[name]!;
    target[name] = function (this: unknown, ...args: unknown[]) {
      started = true;
      return original.apply(this, args);
    };
  }
  nodeModule().syncBuiltinESMExports();
}

/**
 * Pids of the processes in process group `pgid`, read from /proc; null when /proc cannot be read
 * (no /proc, or a permission policy that does not allow reading it).
 */
export function groupMembers(pgid: number): number[] | null {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return null;
  }
  const members: number[] = [];
  for (const name of names) {
    const first = name.charCodeAt(0);
    if (first < 48 || first > 57) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue;
    }
    // Fields after the command name (which may hold spaces): state, ppid, pgrp, ...
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3);
    if (Number(fields[2]) === pgid) members.push(Number(name));
  }
  return members;
}

/**
 * Ends (SIGKILL) every other process of this child's group, if the last try may have left any.
 * False when the group could not be looked at: the child must then exit after its report, so
 * that the launcher ends the group with it.
 */
export function endLeftovers(): boolean {
  if (!started) return true;
  started = false;
  // A member may fork while it is being killed: look again until the group is empty.
  for (let pass = 0; pass < 5; pass++) {
    const members = groupMembers(process.pid);
    if (members === null) return false;
    const others = members.filter((pid) => pid !== process.pid);
    if (others.length === 0) return true;
    for (const pid of others) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
  return true;
}
