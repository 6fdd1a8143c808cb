/**
 * Thread-mode tries in control groups of their own (see ../try-cgroup.ts). A thread-mode try
 * runs in the launcher's process, so the launcher itself cannot go into the try's group. Two ways:
 *
 * - `thread` (a v1 `pids` hierarchy, where one thread can be in a group apart from its process):
 *   before the try's first spawn this thread moves into the try's group, so every process it
 *   starts (the synchronous functions' too, and whatever those start in turn) begins there. At
 *   the try's end every launcher thread found in the group goes back to the launcher's group
 *   and what is left is ended.
 * - `adopt` (cgroup2 only): each process the try starts through child_process is stopped, moved
 *   into the group and continued just after it started. A process it forks before it is stopped
 *   (in its first microseconds), or one a synchronous spawn started, is not caught.
 *
 * The group is made only when a try starts a process: a try that starts none costs nothing.
 * Moving a thread blocks it while the kernel waits for an RCU grace period (10-40 ms measured,
 * when no move came just before); only this worker thread waits, not the launcher's.
 */
import { mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { endGroup, moveOwnThreads } from '../cgroup-fs.js';
import { threadGroupDir, type ThreadGroupsData } from '../try-cgroup.js';

/** This thread's kernel id, from /proc/thread-self (`<pid>/task/<tid>`). */
function ownThreadId(): string | null {
  try {
    return path.basename(readlinkSync('/proc/thread-self'));
  } catch {
    return null;
  }
}

export class ThreadTryGroups {
  readonly #data: ThreadGroupsData;
  readonly #tid: string | null;
  #slot = -1;
  #ticket = 0;
  /** The running try's group once made; '' when it could not be. */
  #dir: string | null = null;

  constructor(data: ThreadGroupsData) {
    this.#data = data;
    this.#tid = ownThreadId();
  }

  /** A try begins in `slot` with `ticket`: it has no group until it starts a process. */
  begin(slot: number, ticket: number): void {
    this.#slot = slot;
    this.#ticket = ticket;
    this.#dir = null;
  }

  /** Just before the try starts a process: makes its group and (`thread`) enters it. */
  beforeSpawn(): void {
    if (this.#dir !== null || this.#slot < 0) return;
    const dir = threadGroupDir(this.#data.dir, this.#slot, this.#ticket);
    try {
      mkdirSync(dir);
      if (this.#data.how === 'thread') {
        if (this.#tid === null) throw new Error('no /proc/thread-self');
        writeFileSync(path.join(dir, 'tasks'), this.#tid);
      }
      this.#dir = dir;
    } catch {
      this.#dir = '';
    }
  }

  /**
   * The try started process `pid` (`adopt`: moved into the try's group now). It is stopped while
   * it moves: the move waits for an RCU grace period first, and a process left running would
   * fork outside the group meanwhile (a shell's first command does, within about a millisecond).
   */
  started(pid: number): void {
    if (this.#data.how !== 'adopt' || this.#dir === null || this.#dir === '') return;
    try {
      process.kill(pid, 'SIGSTOP');
    } catch {
      return; // gone already
    }
    try {
      writeFileSync(path.join(this.#dir, 'cgroup.procs'), String(pid));
    } catch {
      // not movable: its process group is still ended with the try
    }
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // gone meanwhile
    }
  }

  /** The try ended: the launcher's threads leave its group, and what is left in it is ended. */
  end(): void {
    const dir = this.#dir;
    this.#slot = -1;
    this.#dir = null;
    if (dir === null || dir === '') return;
    if (this.#data.how === 'thread') moveOwnThreads(dir, this.#data.home);
    void endGroup(this.#data.kind, dir);
  }
}
