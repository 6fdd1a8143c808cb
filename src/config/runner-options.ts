/**
 * What a runner can be given: `createRunner()`'s options, each with its meaning and default. They
 * are validated and completed by `resolveRunnerConfig` (runner-config.ts).
 */
import type { Kysely } from 'kysely';
import type pg from 'pg';
import type { Logger, LogLevel } from '../shared/logger.js';
import type { ChildLimits, ChildPermissions, ResolvedLimits, ResolvedPermissions } from './confinement.js';
import type { RecurringEntryOptions } from './recurring-config.js';
import type { RetentionOptions } from './retention-config.js';

/** A connection string, a `pg.Pool`, or a Kysely instance over PostgreSQL. */
export type DatabaseInput = string | pg.Pool | Kysely<any>;

/** Retry delay after a failed or crashed try: `min(baseMs * 2^(tries - 1), maxMs)`. */
export interface RetryBackoffOptions {
  /** Delay after the first failed try. Default {@link defaults.retryBackoff.baseMs}. */
  baseMs?: number;
  /** Upper bound of the delay. Default {@link defaults.retryBackoff.maxMs}. */
  maxMs?: number;
}

/**
 * How `start()` waits for a database it cannot use yet: down, still starting, unreachable, or with
 * no free connection (`too many clients`). Each failed try is logged (warn) with the next wait;
 * the waits double from `baseMs` up to `maxMs`. Errors that waiting cannot mend (a wrong password,
 * a database that does not exist) end `start()` at once.
 */
export interface StartRetryOptions {
  /** The first wait. Default {@link defaults.startRetry.baseMs} (250 ms). */
  baseMs?: number;
  /** The longest wait between two tries. Default {@link defaults.startRetry.maxMs} (5000 ms). */
  maxMs?: number;
  /**
   * Give up once this long has passed since the first try: `start()` rejects with
   * DATABASE_UNAVAILABLE, saying how many tries it made. null: never. Default null.
   */
  giveUpAfterMs?: number | null;
}

/** Where a task runs: a child process (the Rails plugin's isolation) or a worker thread of the launcher. */
export type TaskMode = 'process' | 'thread';

/** What config says about one task name; unset fields fall back to the task class, then defaults. */
export interface TaskOverride {
  mode?: TaskMode;
  /** Hard timeout in ms; null: none. */
  timeoutMs?: number | null;
  /** Limits of this task's children: each one set here replaces `childLimits`' (a class may only lower them). */
  limits?: ChildLimits | null;
  /** Permission policy of this task's children, instead of `childPermissions` (a class may only narrow it). */
  permissions?: ChildPermissions | null;
}

/** A task override as resolved: limits and permissions validated. */
export interface ResolvedTaskOverride {
  mode?: TaskMode;
  timeoutMs?: number | null;
  limits?: ResolvedLimits | null;
  permissions?: ResolvedPermissions | null;
}

/** Limits of thread mode (piscina). */
export interface ThreadOptions {
  /** Threads at most. Default: the number of CPUs. */
  maxThreads?: number;
  /** An idle thread is ended after this long. Default 30000 ms. */
  idleTimeoutMs?: number;
  /** V8 old-generation heap limit of each thread, MiB. Default `childMaxOldSpaceMb` (none when that is unset); null lifts it. */
  maxOldGenerationSizeMb?: number | null;
  /** V8 young-generation limit of each thread, MiB. Default none. */
  maxYoungGenerationSizeMb?: number | null;
  /** Stack size of each thread, MiB. Default none (4). */
  stackSizeMb?: number | null;
}

/** What a user passes to `createRunner()`. Every field but `db` and `tasksDir` has a default. */
export interface RunnerOptions {
  /** Where the request table lives. */
  db: DatabaseInput;
  /** Directory of task files (`NoOp.js`, `Mail/Send.mjs` → `Mail::Send`). */
  tasksDir: string;
  /**
   * A connection used only for LISTEN. Needed when `db` is a Kysely instance (its pool is not
   * reachable); without it such a runner falls back to polling and logs a warning.
   */
  listenDb?: string | pg.Pool;
  /** Request table name, validated as an identifier. Default `task_runner_requests`. */
  tableName?: string;
  /** Tasks running at once in this launcher. Default: the number of CPUs. */
  concurrency?: number;
  /**
   * Rows this launcher may claim ahead into its local queue, so a freed slot starts the next try
   * without a round trip. Fewer are held when recent tries say they would not start within
   * `prefetchHorizonMs`. 0 claims only for free slots. Default 4 × concurrency, at least 256: a
   * launcher running short tries needs more rows in hand than it starts during one claim's round
   * trip (with 8 slots of no-op tries, 32 held rows ran dry and halved throughput).
   */
  prefetch?: number;
  /** Hold only rows expected to start within this long (judged from recent try durations). Default 1000 ms. */
  prefetchHorizonMs?: number;
  /**
   * Group-commit delay: an ended try's outcome waits up to this long for others to share its
   * statement (a claim never waits; shutdown flushes at once). 0 writes at once. Default 2 ms.
   */
  completionBatchMs?: number;
  /**
   * How long the pid of a started try may wait, with no outcome to write, for an outcome or a
   * claim to share its statement; a try that ends sooner has its start written with its outcome.
   * The row shows the launcher's pid until then, and `task:started` is emitted once it is written.
   * 0 writes at once (after `completionBatchMs`). Default 100 ms.
   */
  startBatchMs?: number;
  /** Queues this launcher claims from; `null` claims from every queue. Default `null`. */
  queues?: string[] | null;
  /** Fallback poll when no notification arrives. Default 5000 ms. */
  pollIntervalMs?: number;
  /** Delay between retries, see {@link RetryBackoffOptions}. */
  retryBackoff?: RetryBackoffOptions;
  /**
   * Wait at `start()` for a database that is down or has no free connection, instead of failing
   * (see {@link StartRetryOptions}); `false` fails at once with DATABASE_UNAVAILABLE. Default
   * `false` for `createRunner()`, whose caller decides how its application waits; the standalone
   * launcher (`cw-task-runner start`) defaults to `{}`: it waits for as long as it takes.
   */
  startRetry?: StartRetryOptions | false;
  /** How often the pid probe runs after the one at start. Default 60000 ms. */
  probeIntervalMs?: number;
  /**
   * Lease on running rows, renewed by the launcher every third of it. Rows whose lease ran out
   * (their launcher stopped heart-beating, on any host) are recovered as crashed. Default 60000 ms.
   */
  leaseMs?: number;
  /** How long `stop()` lets running tasks finish before terminating them. Default 10000 ms. */
  shutdownGraceMs?: number;
  /** Between SIGTERM and SIGKILL when a child is terminated. Default 5000 ms. */
  killTimeoutMs?: number;
  /** Largest `options` text accepted, in bytes. Default 1 MiB. */
  maxOptionsBytes?: number;
  /** Largest result text a task may return, in bytes; larger is an explicit failure. Default 1 MiB. */
  maxResultBytes?: number;
  /**
   * Launcher environment variables passed to children: names, or prefixes ending in `*`; `['*']`
   * passes everything. Default {@link defaultChildEnvAllowlist} (PATH, HOME, locale, TZ,
   * NODE_ENV, ...; not DATABASE_URL).
   */
  childEnvAllowlist?: string[];
  /** Variables set in children's environment on top of the allowlisted ones. Default none. */
  childEnv?: Record<string, string> | null;
  /** Node arguments for children. Default: the launcher's own. */
  childExecArgv?: string[] | null;
  /** V8 heap limit of each child in MiB (`--max-old-space-size`); past it the child dies, CRASHED. Default none. */
  childMaxOldSpaceMb?: number | null;
  /**
   * Run child processes as this user (a name or a numeric uid): the boundary between tasks and
   * the launcher. Needs the launcher to run as root; the user must be able to read the package's
   * files and the tasks directory. Thread-mode tasks are not covered. Default: the launcher's user.
   */
  childUser?: string | number | null;
  /** Group of child processes (a name or a gid). Default: `childUser`'s primary group. */
  childGroup?: string | number | null;
  /** Resource limits of every child (open files, CPU seconds, address space). Default none. */
  childLimits?: ChildLimits | null;
  /** Node's permission model for every child; null: not used. Default null. */
  childPermissions?: ChildPermissions | null;
  /**
   * Children kept booted and waiting for a task, so pickup does not wait for a Node start. Each
   * still runs one task unless `maxTasksPerChild` says otherwise. Default 1; 0 forks on demand.
   */
  spareChildren?: number;
  /** Tasks one child runs before it is replaced: 1 (default) is a fresh process per task; `Infinity` allowed. */
  maxTasksPerChild?: number;
  /** Resident memory after which a child is replaced between tasks, in MiB. Default none. */
  childMaxRssMb?: number | null;
  /** An idle child beyond the `spareChildren` kept waiting is ended after this long. Default 30000 ms. */
  childIdleMs?: number;
  /** Where tasks run unless their class or `taskOverrides` says otherwise. Default `process`. */
  defaultMode?: TaskMode;
  /** Hard timeout of every try unless its request or class sets one; null: none. Default null. */
  defaultTimeoutMs?: number | null;
  /** Per task name: its mode and timeout, over what the task class declares. */
  taskOverrides?: Record<string, TaskOverride>;
  /** The worker-thread pool of thread mode. */
  threads?: ThreadOptions;
  /**
   * Crashes (CRASHED or TIMED_OUT) after which a request is parked (`result` PARKED, ended),
   * counted apart from exceptions; a crash still uses a try. Default 3.
   */
  crashLimit?: number;
  /** Host name recorded with pids; the probe only touches rows of this host. Default `os.hostname()`. */
  host?: string;
  /** Where log lines go. Default: nowhere. */
  logger?: Logger;
  /** Level of the lines logged per task (its output, its success). Default `info`; failures are always `error`. */
  taskLogLevel?: LogLevel;
  /** Recurring tasks this launcher enqueues (with every other launcher that declares them: each due time once). */
  recurring?: RecurringEntryOptions[];
  /**
   * Pruning of ended requests and their attempt history; `false` keeps every row (the Rails plugin's
   * behaviour). Default: FINISHED and CANCELLED after 7 days, other ended results after 30.
   */
  retention?: RetentionOptions | false;
}

/** `createRunner()`'s options: the runner's, and whether `start()` migrates the request table. */
export interface CreateRunnerOptions extends RunnerOptions {
  /** Run `migrate()` on the request table at `start()`. Default true. */
  autoMigrate?: boolean;
}
