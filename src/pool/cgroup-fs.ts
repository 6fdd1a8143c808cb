/**
 * Control groups as files: finding a hierarchy this process may make groups in, and emptying a
 * group of every process in it. A process cannot leave its control group by itself (only a
 * process allowed to write the hierarchy's files can move it), whatever it does with sessions
 * and process groups, and what it forks starts in the same group: so a group per try holds every
 * process the try started, and emptying the group ends them all.
 *
 * Three kinds, by preference for processes:
 *
 * - `cgroup2` with `cgroup.kill` (Linux 5.14): one write kills every process of the group, and
 *   the kernel makes that race-free against forks.
 * - `freezer` (v1): freeze the group, SIGKILL every pid it lists, thaw; again until it is empty.
 *   A frozen process cannot fork, so each pass misses nothing that was in the group when it froze.
 * - `pids` (v1): set `pids.max` to 0 (a fork in the group fails from then on), SIGKILL every pid
 *   it lists; again until empty.
 *
 * In v1 a thread can sit in a group apart from the rest of its process, and a process a thread
 * forks starts in the thread's group: thread-mode tries use that (see runtime/thread-cgroup.ts),
 * with `pids` only, since freezing a group that still held a launcher thread could freeze the
 * launcher. Every file is read and written synchronously: each is a few microseconds of kernel
 * work, except moving a process (see moveProcess).
 */
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  rmdirSync,
  write as writeAsync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';

export type CgroupKind = 'cgroup2' | 'freezer' | 'pids';

/** One mounted hierarchy and the group this process is in there. */
export interface Hierarchy {
  kind: CgroupKind;
  /** The directory of this process's own group in the hierarchy. */
  own: string;
}

/** A mountinfo line's mount point, its root, its file system type and its super options. */
interface CgroupMount {
  mountPoint: string;
  root: string;
  fsType: string;
  superOptions: string[];
}

function cgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    if (before === undefined || after === undefined) continue;
    const fields = before.split(' ');
    const [fsType, , superOptions] = after.split(' ');
    if ((fsType !== 'cgroup' && fsType !== 'cgroup2') || fields[3] === undefined || fields[4] === undefined) continue;
    // Octal escapes (\040 for a space) as the kernel writes them.
    const unescape = (text: string): string =>
      text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
    mounts.push({
      mountPoint: unescape(fields[4]),
      root: unescape(fields[3]),
      fsType,
      superOptions: (superOptions ?? '').split(','),
    });
  }
  return mounts;
}

/**
 * The hierarchies of the kinds above that are mounted here, with this process's group in each
 * (from /proc/self/mountinfo and /proc/self/cgroup); empty where there is no /proc or no cgroupfs.
 */
export function findHierarchies(): Hierarchy[] {
  let mountinfo: string;
  let membership: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    membership = readFileSync('/proc/self/cgroup', 'utf8');
  } catch {
    return [];
  }
  // "0::/path" for cgroup2, "8:pids:/path" for a v1 hierarchy.
  const groupOf = new Map<string, string>();
  for (const line of membership.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const controllers = line.slice(first + 1, second);
    const group = line.slice(second + 1);
    if (controllers === '') groupOf.set('cgroup2', group);
    for (const controller of controllers.split(',')) groupOf.set(controller, group);
  }
  const found: Hierarchy[] = [];
  for (const mount of cgroupMounts(mountinfo)) {
    const kind: CgroupKind | undefined =
      mount.fsType === 'cgroup2'
        ? 'cgroup2'
        : (['freezer', 'pids'] as const).find((controller) => mount.superOptions.includes(controller));
    if (kind === undefined || found.some((h) => h.kind === kind)) continue;
    const group = groupOf.get(kind);
    // A mount of a subtree that does not hold this process's group cannot be used.
    if (group === undefined || (mount.root !== '/' && group !== mount.root && !group.startsWith(`${mount.root}/`)))
      continue;
    const relative = mount.root === '/' ? group : group.slice(mount.root.length);
    found.push({ kind, own: path.join(mount.mountPoint, relative) });
  }
  return found;
}

const procsBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * Pids listed in a group's `cgroup.procs` (a v1 group that holds one thread of a process lists
 * that process). Read into one buffer, without the stat and the second read of `readFileSync`
 * (a reused child's group is read after every try).
 */
export function groupProcesses(dir: string): number[] {
  let text = '';
  let fd: number;
  try {
    fd = openSync(path.join(dir, 'cgroup.procs'), 'r');
  } catch {
    return [];
  }
  try {
    // The kernel hands a small file over in one read; a large one (thousands of processes) in several.
    for (;;) {
      const length = readSync(fd, procsBuffer, 0, procsBuffer.length, null);
      if (length === 0) break;
      text += procsBuffer.toString('latin1', 0, length);
    }
  } catch {
    // gone meanwhile: what was read stands
  } finally {
    closeSync(fd);
  }
  return parsePids(text);
}

/**
 * A cgroup2 group's `cgroup.procs` kept open, so that listing the group again is one read from
 * the start of the file instead of an open, a read and a close (opening and closing a cgroup
 * file is most of the cost; a reused child's group is looked at after every try). cgroup2 only:
 * a v1 hierarchy answers each read of an open `cgroup.procs` from the list it made at that open's
 * first read, so there the file is opened anew each time. Close it before the group is removed.
 */
export class ProcsFile {
  readonly #dir: string;
  #fd: number | null;

  constructor(kind: CgroupKind, dir: string) {
    this.#dir = dir;
    this.#fd = null;
    if (kind !== 'cgroup2') return;
    try {
      this.#fd = openSync(path.join(dir, 'cgroup.procs'), 'r');
    } catch {
      // gone already: each read below then finds nothing, as groupProcesses does
    }
  }

  /** Whether the group holds process `pid` and no other (or, gone, holds nothing). */
  holdsOnly(pid: number): boolean {
    return this.processes().every((member) => member === pid);
  }

  /** Pids listed in the group now; empty when it is gone. */
  processes(): number[] {
    const fd = this.#fd;
    if (fd === null) return groupProcesses(this.#dir);
    let text = '';
    try {
      for (let position = 0; ;) {
        const length = readSync(fd, procsBuffer, 0, procsBuffer.length, position);
        if (length === 0) break;
        text += procsBuffer.toString('latin1', 0, length);
        position += length;
      }
    } catch {
      // removed meanwhile: what was read stands
    }
    return parsePids(text);
  }

  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
  }
}

function parsePids(text: string): number[] {
  const pids: number[] = [];
  for (const line of text.split('\n')) if (line !== '') pids.push(Number(line));
  return pids;
}

/**
 * Moves process `pid` (all its threads) into the group at `dir`; rejects with what the kernel
 * said. The write is asynchronous on purpose: a move waits for an RCU grace period when no other
 * move came just before it (tens of milliseconds, against a fraction of one back to back), which
 * would stall the launcher's event loop if done in place. Opening and closing the file are
 * instant and done in place: half the launcher's CPU of `fs.promises.writeFile` per move.
 */
export function moveProcess(dir: string, pid: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let fd: number;
    try {
      fd = openSync(path.join(dir, 'cgroup.procs'), 'w');
    } catch (error) {
      reject(error as Error);
      return;
    }
    writeAsync(fd, String(pid), (error) => {
      closeSync(fd);
      if (error === null) resolve();
      else reject(error);
    });
  });
}

function write(dir: string, file: string, text: string): void {
  try {
    writeFileSync(path.join(dir, file), text);
  } catch {
    // The group is gone, or the file is not there: the kill below does what it can.
  }
}

function killEach(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

/**
 * One pass of ending every process in the group at `dir`, except this process (a v1 group may
 * still hold one of the launcher's threads). Returns how many processes it listed: 0 means the
 * group was empty (of anything but this process) when the pass began.
 */
export function killPass(kind: CgroupKind, dir: string): number {
  const members = groupProcesses(dir).filter((pid) => pid !== process.pid);
  if (members.length === 0) return 0;
  if (kind === 'cgroup2') {
    write(dir, 'cgroup.kill', '1');
    return members.length;
  }
  if (kind === 'freezer') {
    write(dir, 'freezer.state', 'FROZEN');
    killEach(groupProcesses(dir).filter((pid) => pid !== process.pid));
    write(dir, 'freezer.state', 'THAWED');
    return members.length;
  }
  write(dir, 'pids.max', '0');
  killEach(groupProcesses(dir).filter((pid) => pid !== process.pid));
  return members.length;
}

/** Removes an empty group; false while it still holds a process (or a dying one). */
export function removeGroup(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** Waits between passes of {@link endGroup}: killed processes take a moment to leave. */
const retryMs = [2, 5, 10, 20, 50, 100, 200, 500, 1_000, 1_000, 2_000];

/**
 * Ends every process in the group at `dir` and removes the group: the first pass now, then again
 * after a short wait while anything is left. Resolves true once the group is gone, false if it
 * could not be removed in about 5 s (a process stuck in the kernel; the next launcher's start
 * removes it).
 */
export function endGroup(kind: CgroupKind, dir: string): Promise<boolean> {
  killPass(kind, dir);
  if (removeGroup(dir)) return Promise.resolve(true);
  return new Promise((resolve) => {
    let attempt = 0;
    const again = (): void => {
      killPass(kind, dir);
      if (removeGroup(dir)) resolve(true);
      else if (attempt >= retryMs.length) resolve(false);
      else setTimeout(again, retryMs[attempt++]).unref();
    };
    setTimeout(again, retryMs[attempt++]).unref();
  });
}

/**
 * v1: moves every thread of this process found in the group at `dir` to the group at `home`
 * (the thread that entered it, and any thread started from it meanwhile: libuv's pool, a Worker).
 */
export function moveOwnThreads(dir: string, home: string): void {
  let tids: string[];
  try {
    tids = readFileSync(path.join(dir, 'tasks'), 'latin1')
      .split('\n')
      .filter((tid) => tid !== '');
  } catch {
    return; // gone
  }
  for (const tid of tids) {
    if (!existsSync(`/proc/self/task/${tid}`)) continue;
    try {
      writeFileSync(path.join(home, 'tasks'), tid);
    } catch {
      // exited meanwhile
    }
  }
}

/** Whether the kernel offers `cgroup.kill` in a cgroup2 group (Linux 5.14 and later). */
export function hasCgroupKill(dir: string): boolean {
  return existsSync(path.join(dir, 'cgroup.kill'));
}
