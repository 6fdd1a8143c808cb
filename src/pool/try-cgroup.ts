/**
 * A control group per try, so that the end of a try ends every process it started, even one
 * that left its session and process group (setsid, a double fork, a daemon): see cgroup-fs.ts
 * for how a group is emptied.
 *
 * At start a launcher (or `runTaskOnce`) makes a directory of its own beside its own group,
 * named `cw-task-runner-<pid namespace>-<pid>-<start time>-<n>`, in the first usable hierarchy:
 * cgroup2 with `cgroup.kill`, else v1 `freezer`, else v1 `pids`. Usable means this process may
 * make a group there (root, or a delegated subtree). It first removes the directories that
 * launchers which died left behind (their pid is gone or names another process), ending what is
 * in them.
 *
 * - A child process is moved into a group of its own right after it is spawned, while Node is
 *   still starting and before any task code loads; it is emptied and removed when the child
 *   exits, however its try ended.
 * - A reused child moves to a new group at the end of each try that left a process behind, and
 *   its old group is emptied (a group cannot be emptied of all but one process at once).
 * - A thread-mode try that starts a process gets a group of its own (`threadData`, used by
 *   runtime/thread-cgroup.ts in the worker thread).
 *
 * Where no hierarchy is usable, {@link TryGroups.open} returns a manager whose groups are null
 * and says why in `summary`: tries then rely on the process-group kill alone.
 */
import { mkdirSync, readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../shared/logger.js';
import {
  endGroup,
  findHierarchies,
  hasCgroupKill,
  moveOwnThreads,
  moveProcess,
  ProcsFile,
  removeGroup,
  type CgroupKind,
  type Hierarchy,
} from './cgroup-fs.js';

const prefix = 'cw-task-runner-';

/** What a worker thread is given to make its tries' groups (v1 `pids`: per thread; cgroup2: per spawned process). */
export interface ThreadGroupsData {
  kind: CgroupKind;
  /** The launcher's directory: a try's group is `<dir>/thread-<slot>-<ticket>`. */
  dir: string;
  /** `thread`: the thread itself enters the try's group (v1); `adopt`: each process it spawns is moved in (cgroup2). */
  how: 'thread' | 'adopt';
  /** Where a thread goes back to after its try (v1: the launcher's own group). */
  home: string;
}

/** The group of thread-mode try `slot`/`ticket` under `dir`. */
export const threadGroupDir = (dir: string, slot: number, ticket: number): string =>
  path.join(dir, `thread-${slot}-${ticket}`);

/**
 * This process's pid namespace (its inode number), part of a launcher directory's name: launchers
 * in other containers may share the hierarchy, and their pids mean nothing here.
 */
function pidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '0';
  } catch {
    return '0';
  }
}

function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

let instances = 0;

/** One process's group, for one try (or, for a reused child, until a try leaves something behind). */
export class TryGroup {
  readonly #groups: TryGroups;
  readonly #kind: CgroupKind;
  readonly #pid: number;
  #dir: string;
  #procs: ProcsFile;
  #closed = false;

  constructor(params: { groups: TryGroups; kind: CgroupKind; dir: string; pid: number }) {
    this.#groups = params.groups;
    this.#kind = params.kind;
    this.#dir = params.dir;
    this.#pid = params.pid;
    this.#procs = new ProcsFile(params.kind, params.dir);
  }

  get dir(): string {
    return this.#dir;
  }

  /**
   * A reused child's try has ended: if anything but the child is left in its group, the child
   * moves to a new group and the old one is emptied (a group cannot be emptied of all but one
   * process at once). Null when the try left nothing (one read of the group's process list,
   * which the kernel keeps: nothing the try's code says is trusted); else resolves once the child
   * has moved: its next try must not start before.
   */
  endTry(): Promise<void> | null {
    if (this.#procs.holdsOnly(this.#pid)) return null;
    const next = this.#groups.newGroupDir();
    if (next === null) return null;
    return moveProcess(next, this.#pid).then(
      () => {
        // The child exited while it moved: close() ended the old group, the new one goes too.
        if (this.#closed) {
          this.#groups.end(next);
          return;
        }
        const old = this.#dir;
        this.#procs.close();
        this.#dir = next;
        this.#procs = new ProcsFile(this.#kind, next);
        this.#groups.end(old);
      },
      // The child went meanwhile: its exit empties its group.
      () => void removeGroup(next),
    );
  }

  /** The child has exited: what is left in its group is ended and the group removed. */
  close(): void {
    this.#closed = true;
    this.#procs.close();
    this.#groups.end(this.#dir);
  }
}

interface TryGroupsParams {
  /** Where children's groups are made; null: nowhere (no usable hierarchy). */
  hierarchy: Hierarchy | null;
  /** Where thread-mode tries' groups are made; null: none. */
  threads: Hierarchy | null;
  summary: string;
  logger: Logger | null;
}

export class TryGroups {
  readonly #p: TryGroupsParams;
  readonly #pending = new Set<Promise<boolean>>();
  #next = 0;
  #closed = false;
  #placeFailed = false;

  private constructor(params: TryGroupsParams) {
    this.#p = params;
  }

  /** What holds here, in one sentence, for the start log. */
  get summary(): string {
    return this.#p.summary;
  }

  /**
   * Finds a usable hierarchy, removes what dead launchers left in it and makes this launcher's
   * directory. Never throws: where nothing is usable, the manager makes no groups.
   * `kinds` narrows the choice (tests use it to try each kind); `threads: false` when no
   * thread-mode try will run (no v1 pids directory is made for them).
   */
  static open(params: { kinds?: readonly CgroupKind[]; logger?: Logger; threads?: boolean } = {}): TryGroups {
    return new TryGroups({
      ...TryGroups.#detect(params.kinds ?? ['cgroup2', 'freezer', 'pids'], params.threads ?? true),
      logger: params.logger ?? null,
    });
  }

  static #detect(allowed: readonly CgroupKind[], forThreads: boolean): Omit<TryGroupsParams, 'logger'> {
    if (process.platform !== 'linux')
      return {
        hierarchy: null,
        threads: null,
        summary: `no control groups on ${process.platform}: tries end by their process group only`,
      };
    const found = findHierarchies().filter((h) => allowed.includes(h.kind));
    const name = `${prefix}${pidNamespace()}-${process.pid}-${startTime(process.pid) ?? 0}-${instances++}`;
    const failures: string[] = [];
    /** This launcher's directory in the hierarchy of `kind`, made now; null when it cannot be. */
    const make = (kind: CgroupKind): Hierarchy | null => {
      const hierarchy = found.find((h) => h.kind === kind);
      if (hierarchy === undefined) return null;
      const dir = path.join(hierarchy.own, name);
      try {
        removeAbandoned(hierarchy);
        mkdirSync(dir);
      } catch (error) {
        failures.push(`${kind} at ${hierarchy.own}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
        return null;
      }
      if (kind === 'cgroup2' && !hasCgroupKill(dir)) {
        rmdirSync(dir);
        failures.push(`cgroup2 at ${hierarchy.own}: no cgroup.kill (Linux before 5.14)`);
        return null;
      }
      return { kind, own: dir };
    };
    let main: Hierarchy | null = null;
    for (const kind of ['cgroup2', 'freezer', 'pids'] as const) {
      main = make(kind);
      if (main !== null) break;
    }
    // Threads need per-thread membership (v1 pids); else, on cgroup2, each spawned process is moved in.
    let threads: Hierarchy | null = null;
    if (forThreads && main !== null)
      threads = main.kind === 'pids' ? main : (make('pids') ?? (main.kind === 'cgroup2' ? main : null));
    const why = failures.length > 0 ? ` (not usable: ${failures.join('; ')})` : '';
    if (main === null) {
      const summary =
        found.length === 0
          ? 'no usable control group hierarchy (none of cgroup2, freezer, pids is mounted): tries end by their process group only; a process that leaves it (setsid) may outlive its try'
          : `no control group could be made${why}: tries end by their process group only; a process that leaves it (setsid) may outlive its try`;
      return { hierarchy: null, threads: null, summary };
    }
    const threadNote = !forThreads
      ? ''
      : threads === null
        ? '; thread-mode tries: by process group only'
        : threads.kind === 'pids'
          ? `; thread-mode tries: a pids group per try that starts a process, at ${threads.own}`
          : '; thread-mode tries: each process a try spawns is stopped and moved into its group as soon as it started (what it forks in its first microseconds, and what a synchronous spawn starts, may escape)';
    return {
      hierarchy: main,
      threads,
      summary: `every process a try starts runs in a ${main.kind} group of its own at ${main.own}, ended with the try${threadNote}${why}`,
    };
  }

  /** The kind of the hierarchy used for child processes; null: none (no groups are made). */
  get kind(): CgroupKind | null {
    return this.#p.hierarchy?.kind ?? null;
  }

  /** For worker threads; null where thread-mode tries get no group. */
  get threadData(): ThreadGroupsData | null {
    const threads = this.#p.threads;
    if (threads === null || this.#closed) return null;
    return {
      kind: threads.kind,
      dir: threads.own,
      how: threads.kind === 'cgroup2' ? 'adopt' : 'thread',
      home: path.dirname(threads.own),
    };
  }

  /** A new, empty group under this launcher's directory; null when groups are not made (or on failure). */
  newGroupDir(): string | null {
    const root = this.#p.hierarchy?.own;
    if (root === undefined || this.#closed) return null;
    const dir = path.join(root, `try-${this.#next++}`);
    try {
      mkdirSync(dir);
      return dir;
    } catch {
      return null;
    }
  }

  /**
   * Moves a just-spawned child into a group of its own; resolves null when that cannot be done
   * (the first failure is logged).
   */
  async place(pid: number): Promise<TryGroup | null> {
    const hierarchy = this.#p.hierarchy;
    const dir = this.newGroupDir();
    if (hierarchy === null || dir === null) return null;
    try {
      await moveProcess(dir, pid);
    } catch (error) {
      removeGroup(dir);
      // The child is gone already (a stop ended a spare still booting): nothing failed.
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') return null;
      if (!this.#placeFailed) {
        this.#placeFailed = true;
        this.#p.logger?.warn(
          'a child could not be moved into a control group: its try ends by its process group only (said once)',
          {
            pid,
            group: dir,
            error: (error as NodeJS.ErrnoException).code ?? String(error),
          },
        );
      }
      return null;
    }
    return new TryGroup({ groups: this, kind: hierarchy.kind, dir, pid });
  }

  /** Ends what is in the group at `dir` and removes it (now, or soon: see endGroup). */
  end(dir: string, kind: CgroupKind | undefined = this.#p.hierarchy?.kind): void {
    if (kind === undefined) return;
    const ending = endGroup(kind, dir);
    this.#pending.add(ending);
    void ending.then(() => this.#pending.delete(ending));
  }

  /** Ends the group of thread-mode try `slot`/`ticket`, if its thread could not (it was ended). */
  endThreadTry(slot: number, ticket: number): void {
    const data = this.threadData;
    if (data === null) return;
    const dir = threadGroupDir(data.dir, slot, ticket);
    // A launcher thread the try's thread started while in the group (libuv's pool) goes home first.
    if (data.how === 'thread') moveOwnThreads(dir, data.home);
    this.end(dir, data.kind);
  }

  /** Ends every group still here and removes this launcher's directories. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const hierarchy of new Set([this.#p.hierarchy, this.#p.threads])) {
      if (hierarchy === null) continue;
      for (const name of subgroups(hierarchy.own)) {
        const dir = path.join(hierarchy.own, name);
        // v1: a group may still hold a launcher thread (one the pool did not see end).
        if (hierarchy.kind !== 'cgroup2') moveOwnThreads(dir, path.dirname(hierarchy.own));
        this.end(dir, hierarchy.kind);
      }
    }
    await Promise.all(this.#pending);
    for (const hierarchy of new Set([this.#p.hierarchy, this.#p.threads]))
      if (hierarchy !== null) removeGroup(hierarchy.own);
  }
}

function subgroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch {
    return [];
  }
}

/**
 * Removes the directories of launchers of this pid namespace that are gone (their pid is not
 * alive, or is another process now), ending what they left in them. A live launcher's directory,
 * and one from another namespace (another container), is left alone.
 */
function removeAbandoned(hierarchy: Hierarchy): void {
  const namespace = pidNamespace();
  for (const name of subgroups(hierarchy.own)) {
    const match = /^cw-task-runner-(\d+)-(\d+)-(\d+)-\d+$/.exec(name);
    if (match === null || match[1] !== namespace || startTime(Number(match[2])) === match[3]) continue;
    const dir = path.join(hierarchy.own, name);
    // Each group's first pass kills now; the directory goes once its groups have.
    const groups = subgroups(dir).map((group) => endGroup(hierarchy.kind, path.join(dir, group)));
    if (groups.length === 0) removeGroup(dir);
    else void Promise.all(groups).then(() => removeGroup(dir));
  }
}
