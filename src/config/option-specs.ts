/**
 * The option table: every setting a runner takes, once. `resolveRunnerConfig` (runner-config.ts)
 * reads bounds and defaults from it, the config file (config-file.ts) its keys and value checks,
 * and `npm run docs:config` writes docs/configuration.md from it. The meaning of each option is
 * documented on `RunnerOptions` (runner-options.ts); `satisfies` below makes the table and that
 * type list the same names, so neither can gain an option the other lacks.
 *
 * The settings of nested maps that other modules resolve (retention, recurring entries, child
 * limits and permissions) are tabled beside their resolution and joined in here.
 */
import { defaultChildEnvAllowlist } from './child-env.js';
import { limitSpecs, permissionSpecs } from './confinement.js';
import type { FieldSpec, OptionSpec } from './option-spec.js';
import { recurringEntrySpecs } from './recurring-config.js';
import { retentionSpecs } from './retention-config.js';
import type {
  CreateRunnerOptions,
  RetryBackoffOptions,
  StartRetryOptions,
  TaskOverride,
  ThreadOptions,
} from './runner-options.js';
import { maxInt4 } from '../shared/values.js';

export type { FieldSpec, OptionSpec } from './option-spec.js';

const mib = 1_048_576;

export const retryBackoffSpecs = {
  baseMs: { kind: 'integer', min: 0, default: 2_000, description: 'delay after the first failed try' },
  maxMs: { kind: 'integer', default: 3_600_000, description: 'upper bound of the delay; at least `baseMs`' },
} as const satisfies { readonly [K in keyof Required<RetryBackoffOptions>]: FieldSpec };

export const startRetrySpecs = {
  baseMs: { kind: 'integer', min: 1, max: 3_600_000, default: 250, description: 'the first wait' },
  maxMs: {
    kind: 'integer',
    max: 3_600_000,
    default: 5_000,
    description: 'the longest wait between two tries (the waits double from `baseMs`); at least `baseMs`',
  },
  giveUpAfterMs: {
    kind: 'integerOrNull',
    min: 0,
    default: null,
    defaultText: 'null (never)',
    description: '`start` gives up (DATABASE_UNAVAILABLE, exit 1) once this long has passed since the first try',
  },
} as const satisfies { readonly [K in keyof Required<StartRetryOptions>]: FieldSpec };

export const threadSpecs = {
  maxThreads: {
    kind: 'integer',
    min: 1,
    max: 1_000,
    defaultText: 'number of CPUs',
    description:
      'worker threads at most; each runs one try at a time, and more threads than cores cost short ' + 'tries dearly',
  },
  idleTimeoutMs: { kind: 'integer', min: 10, default: 30_000, description: 'an idle thread is ended after this long' },
  maxOldGenerationSizeMb: {
    kind: 'integerOrNull',
    min: 8,
    max: mib,
    defaultText: '`childMaxOldSpaceMb`',
    description: 'V8 heap limit of each thread in MiB (null lifts it); past it the thread is ended, CRASHED',
  },
  maxYoungGenerationSizeMb: {
    kind: 'integerOrNull',
    min: 1,
    max: mib,
    default: null,
    description: 'V8 young-generation limit of each thread in MiB',
  },
  stackSizeMb: {
    kind: 'integerOrNull',
    min: 1,
    max: 1_024,
    default: null,
    description: 'stack size of each thread in MiB',
  },
} as const satisfies { readonly [K in keyof Required<ThreadOptions>]: FieldSpec };

export const taskOverrideSpecs = {
  mode: { kind: 'mode', defaultText: "the class's, else `defaultMode`", description: '`process` or `thread`' },
  timeoutMs: {
    kind: 'integerOrNull',
    min: 1,
    max: maxInt4,
    defaultText: "the class's, else `defaultTimeoutMs`",
    description: "hard timeout of each try in ms; null removes a class's timeout",
  },
  limits: {
    kind: 'sectionOrNull',
    fields: limitSpecs,
    defaultText: '`childLimits`',
    description: "limits of this task's children, each replacing `childLimits`' (a class may only lower them)",
  },
  permissions: {
    kind: 'sectionOrNull',
    fields: permissionSpecs,
    defaultText: '`childPermissions`',
    description:
      "permission policy of this task's children instead of `childPermissions` (a class may only " + 'narrow it)',
  },
} as const satisfies { readonly [K in keyof Required<TaskOverride>]: FieldSpec };

/** Every option of `createRunner()`, in the order the docs list them. */
export const runnerOptionSpecs = {
  db: {
    fileKey: 'databaseUrl',
    kind: 'database',
    env: 'DATABASE_URL',
    flag: '--database-url',
    defaultText: 'required (standalone: the embedded server)',
    description:
      'where the request table lives: a connection string (the only form a config file takes), a `pg.Pool` ' +
      'or a Kysely instance',
  },
  tasksDir: {
    fileKey: 'tasksDir',
    kind: 'path',
    env: 'CW_TASKS_DIR',
    flag: '--tasks-dir',
    defaultText: 'required (standalone: the bundled samples)',
    description: 'directory of task files (`NoOp.js`, `Mail/Send.mjs` is `Mail::Send`)',
  },
  listenDb: {
    fileKey: null,
    kind: 'connection',
    defaultText: 'the pool of `db`',
    description: 'a connection used only for LISTEN; needed when `db` is a Kysely instance, else the runner polls',
  },
  tableName: {
    fileKey: 'tableName',
    kind: 'identifier',
    env: 'CW_TABLE_NAME',
    flag: '--table',
    default: 'task_runner_requests',
    description: 'the request table, validated as an SQL identifier',
  },
  concurrency: {
    fileKey: 'concurrency',
    kind: 'integer',
    env: 'CW_CONCURRENCY',
    min: 1,
    max: 10_000,
    defaultText: 'number of CPUs',
    description: 'tasks running at once in this launcher',
  },
  prefetch: {
    fileKey: 'prefetch',
    kind: 'integer',
    min: 0,
    max: 100_000,
    defaultText: '4 × `concurrency`, at least 256',
    description:
      'rows claimed ahead into the local queue, so a freed slot starts the next try without a round trip; ' +
      '0 claims only for free slots',
  },
  prefetchHorizonMs: {
    fileKey: 'prefetchHorizonMs',
    kind: 'integer',
    min: 0,
    max: 3_600_000,
    default: 1_000,
    description: 'hold only rows that recent try durations say will start within this long',
  },
  completionBatchMs: {
    fileKey: 'completionBatchMs',
    kind: 'integer',
    min: 0,
    max: 10_000,
    default: 2,
    description: 'group-commit delay of outcomes; a claim never waits for it and shutdown flushes at once',
  },
  startBatchMs: {
    fileKey: 'startBatchMs',
    kind: 'integer',
    min: 0,
    max: 10_000,
    default: 100,
    description:
      "how long a started try's pid may wait, with no outcome to write, for an outcome or a claim to share " +
      "its statement (the row shows the launcher's pid until then)",
  },
  queues: {
    fileKey: 'queues',
    kind: 'stringsOrNull',
    default: null,
    defaultText: 'null (every queue)',
    description: 'queues this launcher claims from; a list names at least one',
  },
  pollIntervalMs: {
    fileKey: 'pollIntervalMs',
    kind: 'integer',
    env: 'CW_POLL_INTERVAL_MS',
    min: 10,
    default: 5_000,
    description: 'fallback poll when no notification arrives',
  },
  retryBackoff: {
    fileKey: 'retryBackoff',
    kind: 'section',
    fields: retryBackoffSpecs,
    defaultText: 'see below',
    description: 'delay before the retry of a failed or crashed try: `min(baseMs * 2^(tries - 1), maxMs)`',
  },
  startRetry: {
    fileKey: 'startRetry',
    kind: 'sectionOrFalse',
    fields: startRetrySpecs,
    default: false,
    defaultText: '`false` in `createRunner`; `{}` (wait for ever) standalone',
    description:
      'how `start` waits for a database that is down, starting or out of connections (each try logged); ' +
      '`false` fails at once. A wrong password or a missing database fails at once either way',
  },
  probeIntervalMs: {
    fileKey: 'probeIntervalMs',
    kind: 'integer',
    min: 10,
    default: 60_000,
    description: 'how often the pid probe runs after the one at start',
  },
  leaseMs: {
    fileKey: 'leaseMs',
    kind: 'integer',
    min: 300,
    default: 60_000,
    description: 'lease on running rows, renewed every third of it; rows whose lease ran out are recovered as crashed',
  },
  shutdownGraceMs: {
    fileKey: 'shutdownGraceMs',
    kind: 'integer',
    min: 0,
    default: 10_000,
    description: 'how long `stop()` lets running tasks finish before terminating them',
  },
  killTimeoutMs: {
    fileKey: 'killTimeoutMs',
    kind: 'integer',
    min: 0,
    default: 5_000,
    description: 'between SIGTERM and SIGKILL when a child is terminated',
  },
  maxOptionsBytes: {
    fileKey: 'maxOptionsBytes',
    kind: 'integer',
    min: 16,
    default: mib,
    description: 'largest `options` text, in bytes',
  },
  maxResultBytes: {
    fileKey: 'maxResultBytes',
    kind: 'integer',
    min: 16,
    default: mib,
    description: 'largest result a task may return, in bytes; larger is an explicit failure (RESULT_TOO_LARGE)',
  },
  childEnvAllowlist: {
    fileKey: 'childEnvAllowlist',
    kind: 'strings',
    default: defaultChildEnvAllowlist,
    description:
      "launcher variables passed to children: names, or prefixes ending in `*`; `['*']` passes all " +
      '(`DATABASE_URL` is not in the default)',
  },
  childEnv: {
    fileKey: 'childEnv',
    kind: 'stringMapOrNull',
    default: null,
    description: "variables set in children's environment on top of the allowlisted ones",
  },
  childExecArgv: {
    fileKey: 'childExecArgv',
    kind: 'stringsOrNull',
    default: null,
    defaultText: "the launcher's, without `--max-semi-space-size`",
    description: 'Node arguments of children',
  },
  childMaxOldSpaceMb: {
    fileKey: 'childMaxOldSpaceMb',
    kind: 'integerOrNull',
    min: 16,
    max: mib,
    default: null,
    description: 'V8 heap limit of each child in MiB (`--max-old-space-size`); past it the child dies, CRASHED',
  },
  childUser: {
    fileKey: 'childUser',
    kind: 'userOrNull',
    default: null,
    defaultText: "the launcher's user",
    description:
      'run child processes as this user (a name or a uid): the boundary between tasks and the launcher; ' +
      'needs the launcher to run as root',
  },
  childGroup: {
    fileKey: 'childGroup',
    kind: 'userOrNull',
    default: null,
    defaultText: "`childUser`'s primary group",
    description: 'group of child processes (a name or a gid)',
  },
  childLimits: {
    fileKey: 'childLimits',
    kind: 'sectionOrNull',
    fields: limitSpecs,
    default: null,
    description: 'resource limits of every child, set before Node starts (process mode only)',
  },
  childPermissions: {
    fileKey: 'childPermissions',
    kind: 'sectionOrNull',
    fields: permissionSpecs,
    default: null,
    description: "Node's permission model for every child: a guard rail inside the process, not a boundary",
  },
  spareChildren: {
    fileKey: 'spareChildren',
    kind: 'integer',
    min: 0,
    max: 1_000,
    default: 1,
    description: 'children kept booted and waiting, so pickup does not wait for a Node start; 0 forks on demand',
  },
  maxTasksPerChild: {
    fileKey: 'maxTasksPerChild',
    kind: 'integerOrInfinity',
    min: 1,
    default: 1,
    description:
      'tries one child runs before it is replaced: 1 is a fresh process per try; `Infinity` (YAML `.inf`) ' +
      'never replaces',
  },
  childMaxRssMb: {
    fileKey: 'childMaxRssMb',
    kind: 'integerOrNull',
    min: 16,
    max: mib,
    default: null,
    description: 'resident memory in MiB after which a child is replaced between tries',
  },
  childIdleMs: {
    fileKey: 'childIdleMs',
    kind: 'integer',
    min: 10,
    default: 30_000,
    description: 'an idle child beyond `spareChildren` is ended after this long',
  },
  defaultMode: {
    fileKey: 'defaultMode',
    kind: 'mode',
    default: 'process',
    description: 'where tasks run unless their class or `taskOverrides` says: `process` or `thread`',
  },
  defaultTimeoutMs: {
    fileKey: 'defaultTimeoutMs',
    kind: 'integerOrNull',
    min: 1,
    max: maxInt4,
    default: null,
    description: 'hard timeout of every try unless its request or class sets one',
  },
  taskOverrides: {
    fileKey: 'taskOverrides',
    kind: 'map',
    fields: taskOverrideSpecs,
    default: {},
    defaultText: 'none',
    description: 'per task name: its mode, timeout, limits and permissions, over what the task class declares',
  },
  threads: {
    fileKey: 'threads',
    kind: 'section',
    fields: threadSpecs,
    defaultText: 'see below',
    description: 'the worker-thread pool of thread mode',
  },
  crashLimit: {
    fileKey: 'crashLimit',
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    default: 3,
    description: 'crashes (CRASHED or TIMED_OUT) after which a request is PARKED; a crash still uses a try',
  },
  host: {
    fileKey: 'host',
    kind: 'string',
    defaultText: '`os.hostname()`',
    description: 'host name recorded with pids; the probe only touches rows of this host',
  },
  logger: {
    fileKey: null,
    kind: 'logger',
    defaultText: 'silent',
    description: 'where log lines go (see `createStreamLogger`); the standalone launcher logs to stderr',
  },
  taskLogLevel: {
    fileKey: 'taskLogLevel',
    kind: 'logLevel',
    default: 'info',
    description: 'level of the lines logged per task (its output, its success); failures are always `error`',
  },
  recurring: {
    fileKey: 'recurring',
    kind: 'list',
    fields: recurringEntrySpecs,
    default: [],
    defaultText: 'none',
    description: 'recurring tasks this launcher enqueues, each due time once however many launchers declare it',
  },
  retention: {
    fileKey: 'retention',
    kind: 'sectionOrFalse',
    fields: retentionSpecs,
    defaultText: 'on (see below)',
    description: 'pruning of ended requests and their attempt history; `false` keeps every row',
  },
  autoMigrate: {
    fileKey: null,
    kind: 'boolean',
    default: true,
    description: 'run `migrate()` on the request table at `start()` (the standalone launcher migrates on its own)',
  },
} as const satisfies { readonly [K in keyof CreateRunnerOptions]-?: OptionSpec };

export const embeddedSpecs = {
  port: { kind: 'integer', min: 1, max: 65_535, default: 54_329, description: 'port of the embedded server' },
  dataDir: { kind: 'path', defaultText: '`<tmpDir>/embedded-pg`', description: 'its data directory' },
} as const satisfies Readonly<Record<string, FieldSpec>>;

export const dashboardSpecs = {
  port: { kind: 'integer', min: 0, max: 65_535, default: 8_080, description: 'port the dashboard listens on' },
  host: {
    kind: 'string',
    default: '127.0.0.1',
    description: 'address it listens on; any other than loopback requires `token`',
  },
  token: {
    kind: 'string',
    defaultText: 'none',
    description: 'the token it asks for (16 characters or more); `CW_DASHBOARD_TOKEN` overrides the file',
  },
  readOnly: {
    kind: 'boolean',
    default: false,
    description: 'show everything and allow no action (retry, cancel, delete)',
  },
} as const satisfies Readonly<Record<string, FieldSpec>>;

export const metricsSpecs = {
  port: { kind: 'integer', min: 0, max: 65_535, default: 9_464, description: 'port of the Prometheus endpoint' },
  host: { kind: 'string', default: '127.0.0.1', description: 'address it listens on' },
} as const satisfies Readonly<Record<string, FieldSpec>>;

/** Settings only the standalone launcher and the CLI take (config file, environment): no runner option. */
export const launcherOptionSpecs = {
  logLevel: {
    fileKey: 'logLevel',
    kind: 'logLevel',
    env: 'CW_LOG_LEVEL',
    default: 'info',
    description: "level of the launcher's log, which goes to stderr",
  },
  logFormat: {
    fileKey: 'logFormat',
    kind: 'logFormat',
    env: 'CW_LOG_FORMAT',
    default: 'pretty',
    description: '`pretty` (one readable line per event) or `json` (one object per line, for log collectors)',
  },
  tmpDir: {
    fileKey: 'tmpDir',
    kind: 'path',
    default: 'tmp',
    description: 'holds `pids/task_runner_daemon.pid`, `sockets/task_runner.sock` and the embedded data',
  },
  embedded: {
    fileKey: 'embedded',
    kind: 'section',
    fields: embeddedSpecs,
    defaultText: 'see below',
    description: 'the embedded PostgreSQL started when no database is configured',
  },
  dashboard: {
    fileKey: 'dashboard',
    kind: 'section',
    fields: dashboardSpecs,
    defaultText: 'off',
    description: 'the web dashboard, served by the launcher when set',
  },
  metrics: {
    fileKey: 'metrics',
    kind: 'section',
    fields: metricsSpecs,
    defaultText: 'off',
    description: 'the Prometheus endpoint, served by the launcher when set',
  },
} as const satisfies Readonly<Record<string, OptionSpec>>;

type SpecTable = Readonly<Record<string, OptionSpec>>;
type FileKeysOf<T extends SpecTable> = { [K in keyof T]: T[K]['fileKey'] }[keyof T];

/** Every top-level key a config file accepts. */
export type ConfigFileKey = Exclude<
  FileKeysOf<typeof runnerOptionSpecs> | FileKeysOf<typeof launcherOptionSpecs>,
  null
>;

/** The specs of the config file's top-level keys, keyed by file key, in the docs' order. */
export function configFileSpecs(): ReadonlyMap<ConfigFileKey, OptionSpec> {
  const byKey = new Map<ConfigFileKey, OptionSpec>();
  for (const spec of [...Object.values(runnerOptionSpecs), ...Object.values(launcherOptionSpecs)] as OptionSpec[]) {
    if (spec.fileKey !== null) byKey.set(spec.fileKey as ConfigFileKey, spec);
  }
  return byKey;
}
