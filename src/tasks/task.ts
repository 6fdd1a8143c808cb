/**
 * The base class of every task, and the only module a task file needs to import
 * (`import { Task } from 'cw-task-runner/task'`). It loads nothing heavy: children start light.
 */

/** What a task knows about the request it runs for. */
export interface TaskRequestInfo {
  id: string;
  taskClassName: string;
  /** This try's number, 1 for the first. */
  tries: number;
  tryLimit: number;
  queue: string;
  priority: number;
  createdAt: Date;
}

/** Per-request scheduling choices. */
export interface ScheduleParams {
  /** Not before this time. */
  delayUntil?: Date;
  /** Not before this many milliseconds from now (ignored when `delayUntil` is given). */
  delayMs?: number;
  /** Tries before the request is given up. Default 5. */
  tryLimit?: number;
  /** Higher runs first. Default 0. */
  priority?: number;
  /** Queue name; launchers may be limited to some queues. Default `default`. */
  queue?: string;
  /**
   * Hard timeout of each try, in milliseconds (1 to 2147483647): past it the try is killed and
   * recorded TIMED_OUT, which counts as a crash. Default: the task class's or the runner's.
   */
  timeoutMs?: number;
  /**
   * At most one request per key in the states `uniqueWhile` names: while one is, scheduling
   * again returns its id instead of adding a row.
   */
  uniqueKey?: string;
  /**
   * `active` (default: waiting or running), `waiting` (not started yet: a running one does not
   * count), or `ended-within:<duration>` (active, or ended less than that ago, e.g. `ended-within:1h`).
   */
  uniqueWhile?: 'waiting' | 'active' | `ended-within:${string}`;
}

/** Anything that can schedule: a runner, or a client made with `createClient()`. */
export interface RequestEnqueuer {
  schedule(taskClassName: string, options?: unknown, params?: ScheduleParams): Promise<string>;
}

/**
 * Subclass it, implement `run()`, and put the file in the tasks directory; its file name (without
 * extension, folders joined by `::`) is the name to schedule it by. `run()`'s return value becomes
 * `result_text` (strings as they are, anything else as JSON, a BigInt as its digits, a Map or Set
 * by its contents; a symbol, a function or a cycle fails the try); a throw is recorded with its
 * stack and the request is retried.
 *
 * A task can be tried by hand, in the caller's own process:
 * @example
 * const task = new SendReport({ accountId: 7 });
 * console.log(await task.run());
 */
export abstract class Task<Options = Record<string, unknown>, Result = unknown> {
  /** Name to schedule by, when it differs from the class name (for `static schedule`). */
  static taskName?: string;

  /**
   * Where tries of this task run: `process` (a child process each, the full isolation) or
   * `thread` (a worker thread of the launcher: no process start, but it shares the launcher's
   * process). Config's `taskOverrides` wins over it, and it over `defaultMode`. The launcher
   * reads it in a short-lived worker thread, never by importing the file itself; any other value
   * is ignored with a warning.
   *
   * @example
   * export default class Resize extends Task {
   *   static override mode = 'thread' as const; // in JavaScript: static mode = 'thread';
   *   run() { ... }
   * }
   */
  static mode?: 'process' | 'thread';

  /**
   * Hard timeout of each try in milliseconds, a positive integer: a try still running then is
   * stopped and recorded as timed out. A request's own timeout and config's `taskOverrides` win
   * over it, and it over `defaultTimeoutMs`. Read like {@link Task.mode}.
   */
  static timeoutMs?: number;

  /**
   * Resource limits of this task's child process (`openFiles`, `cpuSeconds`, `addressSpaceMb`),
   * set before Node starts. They can only lower what the operator set (`childLimits`,
   * `taskOverrides`); a try past one is CRASHED with the limit named. A task with limits of its
   * own always runs in a process of its own. Read like {@link Task.mode}.
   *
   * @example
   * static limits = { cpuSeconds: 30, openFiles: 256 };
   */
  static limits?: { openFiles?: number; cpuSeconds?: number; addressSpaceMb?: number };

  /**
   * Node's permission model for this task's child: absolute paths it may read (`fsRead`) and
   * write (`fsWrite`), and whether it may start processes (`childProcess`) or worker threads
   * (`worker`), load native addons (`addons`) or use WASI (`wasi`); everything else is refused with ERR_ACCESS_DENIED. Where the operator set a
   * policy (`childPermissions`, `taskOverrides`), only what both allow is allowed. The runtime's
   * files and the tasks directory stay readable. A malformed policy allows nothing. Read like
   * {@link Task.mode}.
   *
   * @example
   * static permissions = { fsRead: ['/srv/app/templates'], fsWrite: ['/srv/app/out'] };
   */
  static permissions?: {
    fsRead?: string[];
    fsWrite?: string[];
    childProcess?: boolean;
    worker?: boolean;
    addons?: boolean;
    wasi?: boolean;
  };

  /** The request's options, parsed from YAML: always a map; integers beyond 2^53 as BigInt. */
  readonly options: Options;
  /** The request this instance runs for; null when constructed by hand. */
  readonly request: TaskRequestInfo | null;

  constructor(options?: Options, request: TaskRequestInfo | null = null) {
    this.options = (options ?? {}) as Options;
    this.request = request;
  }

  /** The request id, or null when constructed by hand. */
  get id(): string | null {
    return this.request?.id ?? null;
  }

  abstract run(): Result | Promise<Result>;

  /**
   * Factory on the class: schedules this task class.
   * Subclasses override it to shape their options.
   *
   * @example
   * await SendReport.schedule(runner, { accountId: 7 }, { delayMs: 60_000 });
   */
  static schedule(
    this: { taskName?: string; name: string },
    enqueuer: RequestEnqueuer,
    options?: unknown,
    params?: ScheduleParams,
  ): Promise<string> {
    return enqueuer.schedule(this.taskName ?? this.name, options ?? {}, params);
  }
}

/** A class that can be constructed as a task (what a task file exports). */
export type TaskClass = new (options: any, request: TaskRequestInfo | null) => { run(): unknown };

/** True for a class whose instances have a `run` method: what the registry accepts. */
export function isTaskClass(value: unknown): value is TaskClass {
  return (
    typeof value === 'function' && typeof (value as { prototype?: { run?: unknown } }).prototype?.run === 'function'
  );
}
