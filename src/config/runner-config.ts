import { availableParallelism, hostname } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { ConfigError } from '../errors.js';
import { silentLogger, type Logger, type LogLevel } from '../shared/logger.js';
import { buildChildEnv, defaultChildEnvAllowlist } from './child-env.js';
import { resolveChildIdentity } from './child-user.js';
import { confinementOf, parseLimits, parsePermissions, type ChildConfinement } from './confinement.js';
import { parseTableName, type TableName } from './identifiers.js';
import { requestDefaults } from './request-defaults.js';
import { resolveRecurring, type RecurringEntry } from './recurring-config.js';
import { resolveRetention, type RetentionConfig } from './retention-config.js';
import type { FieldSpec } from './option-spec.js';
import {
  retryBackoffSpecs,
  runnerOptionSpecs,
  startRetrySpecs,
  taskOverrideSpecs,
  threadSpecs,
} from './option-specs.js';
import type {
  DatabaseInput,
  ResolvedTaskOverride,
  RetryBackoffOptions,
  RunnerOptions,
  TaskMode,
  TaskOverride,
  ThreadOptions,
} from './runner-options.js';

export type {
  DatabaseInput,
  ResolvedTaskOverride,
  RetryBackoffOptions,
  RunnerOptions,
  StartRetryOptions,
  TaskMode,
  TaskOverride,
  ThreadOptions,
} from './runner-options.js';

/** `startRetry` resolved: waits in ms; `giveUpAfterMs` null waits for ever. */
export interface StartRetryConfig {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly giveUpAfterMs: number | null;
}

/** Options after validation and defaults, frozen. */
export interface RunnerConfig {
  readonly db: DatabaseInput;
  readonly listenDb: string | pg.Pool | null;
  readonly tasksDir: string;
  readonly table: TableName;
  readonly concurrency: number;
  readonly prefetch: number;
  readonly prefetchHorizonMs: number;
  readonly completionBatchMs: number;
  readonly startBatchMs: number;
  readonly queues: readonly string[] | null;
  readonly pollIntervalMs: number;
  readonly retryBackoff: Readonly<Required<RetryBackoffOptions>>;
  /** Null: `start()` does not wait for the database. */
  readonly startRetry: StartRetryConfig | null;
  readonly probeIntervalMs: number;
  readonly leaseMs: number;
  readonly shutdownGraceMs: number;
  readonly killTimeoutMs: number;
  readonly maxOptionsBytes: number;
  readonly maxResultBytes: number;
  /** The complete environment of children (allowlisted launcher variables plus `childEnv`). */
  readonly childEnv: Readonly<Record<string, string>>;
  /** The complete Node arguments of children (including the heap limit). */
  readonly childExecArgv: readonly string[];
  /** User, limits and permission policy of children unless a task's override or class narrows them. */
  readonly childConfinement: ChildConfinement;
  readonly spareChildren: number;
  readonly maxTasksPerChild: number;
  readonly childMaxRssMb: number | null;
  readonly childIdleMs: number;
  readonly defaultMode: TaskMode;
  readonly defaultTimeoutMs: number | null;
  readonly taskOverrides: Readonly<Record<string, Readonly<ResolvedTaskOverride>>>;
  readonly threads: Readonly<Required<ThreadOptions>>;
  readonly crashLimit: number;
  readonly host: string;
  readonly logger: Logger;
  readonly taskLogLevel: LogLevel;
  readonly recurring: readonly RecurringEntry[];
  /** Null: keep every row. */
  readonly retention: RetentionConfig | null;
}

const specs = runnerOptionSpecs;

/** Defaults of the options (from the option table) and of a request's own fields. */
export const defaults = Object.freeze({
  tableName: specs.tableName.default as string,
  pollIntervalMs: specs.pollIntervalMs.default as number,
  retryBackoff: Object.freeze({
    baseMs: retryBackoffSpecs.baseMs.default as number,
    maxMs: retryBackoffSpecs.maxMs.default as number,
  }),
  startRetry: Object.freeze({
    baseMs: startRetrySpecs.baseMs.default as number,
    maxMs: startRetrySpecs.maxMs.default as number,
  }),
  probeIntervalMs: specs.probeIntervalMs.default as number,
  leaseMs: specs.leaseMs.default as number,
  shutdownGraceMs: specs.shutdownGraceMs.default as number,
  killTimeoutMs: specs.killTimeoutMs.default as number,
  maxOptionsBytes: specs.maxOptionsBytes.default as number,
  maxResultBytes: specs.maxResultBytes.default as number,
  tryLimit: requestDefaults.tryLimit,
  queue: requestDefaults.queue,
  spareChildren: specs.spareChildren.default as number,
  maxTasksPerChild: specs.maxTasksPerChild.default as number,
  childIdleMs: specs.childIdleMs.default as number,
  threadIdleTimeoutMs: threadSpecs.idleTimeoutMs.default as number,
  crashLimit: specs.crashLimit.default as number,
  prefetchPerSlot: 4,
  prefetchAtLeast: 256,
  prefetchHorizonMs: specs.prefetchHorizonMs.default as number,
  completionBatchMs: specs.completionBatchMs.default as number,
  startBatchMs: specs.startBatchMs.default as number,
});

/** The options that are plain integers with a default in the table. */
type IntegerOption = {
  [K in keyof typeof specs]: (typeof specs)[K] extends { readonly kind: 'integer'; readonly default: number }
    ? K
    : never;
}[keyof typeof specs];

/**
 * `value` checked against the spec's bounds (`min` overrides its lower bound; a side it leaves open
 * goes as far as a safe integer), or `fallback` (the spec's default unless given) when absent.
 */
function integer(
  field: string,
  value: unknown,
  spec: FieldSpec,
  fallback = spec.default as number,
  min = spec.min ?? 0,
): number {
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function stringList(field: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && item.length > 0)) {
    throw new ConfigError(field, 'must be a list of non-empty strings');
  }
  return [...value];
}

function stringRecord(field: string, value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(field, 'must be an object of string values');
  }
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') throw new ConfigError(`${field}.${key}`, 'must be a string');
  }
  return { ...(value as Record<string, string>) };
}

function validateDb(value: unknown): DatabaseInput {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'object' && value !== null) return value as DatabaseInput;
  throw new ConfigError('db', 'must be a connection string, a pg.Pool or a Kysely instance');
}

/** The `prefetch` a launcher of `concurrency` slots gets when none is set. */
export function defaultPrefetch(concurrency: number): number {
  return Math.max(defaults.prefetchAtLeast, defaults.prefetchPerSlot * concurrency);
}

/**
 * Validates options and fills defaults (from the option table, option-specs.ts). Errors name the
 * offending field.
 *
 * @example
 * const config = resolveRunnerConfig({ db: 'postgres://localhost/app', tasksDir: './dist/tasks' });
 */
export function resolveRunnerConfig(options: RunnerOptions): RunnerConfig {
  if (typeof options !== 'object' || options === null) throw new ConfigError('options', 'must be an object');
  if (typeof options.tasksDir !== 'string' || options.tasksDir.length === 0) {
    throw new ConfigError('tasksDir', 'must be a directory path');
  }
  let table: TableName;
  try {
    table = parseTableName(options.tableName ?? defaults.tableName);
  } catch (error) {
    throw new ConfigError('tableName', (error as Error).message);
  }
  /** A plain integer option, with the table's default and bounds. */
  const option = (name: IntegerOption): number => integer(name, options[name], specs[name]);
  const backoff = options.retryBackoff ?? {};
  const baseMs = integer('retryBackoff.baseMs', backoff.baseMs, retryBackoffSpecs.baseMs);
  const maxMs = integer(
    'retryBackoff.maxMs',
    backoff.maxMs,
    retryBackoffSpecs.maxMs,
    Math.max(defaults.retryBackoff.maxMs, baseMs),
    baseMs,
  );
  const leaseMs = option('leaseMs');
  const queues = options.queues === undefined || options.queues === null ? null : stringList('queues', options.queues);
  if (queues !== null && queues.length === 0)
    throw new ConfigError('queues', 'must name at least one queue, or be null');
  const concurrency = integer('concurrency', options.concurrency, specs.concurrency, availableParallelism());
  const host = options.host ?? hostname();
  if (typeof host !== 'string' || host.length === 0) throw new ConfigError('host', 'must be a non-empty string');
  return Object.freeze({
    db: validateDb(options.db),
    listenDb: options.listenDb ?? null,
    tasksDir: path.resolve(options.tasksDir),
    table,
    concurrency,
    prefetch: integer('prefetch', options.prefetch, specs.prefetch, defaultPrefetch(concurrency)),
    prefetchHorizonMs: option('prefetchHorizonMs'),
    completionBatchMs: option('completionBatchMs'),
    startBatchMs: option('startBatchMs'),
    queues: queues === null ? null : Object.freeze(queues),
    pollIntervalMs: option('pollIntervalMs'),
    retryBackoff: Object.freeze({ baseMs, maxMs }),
    startRetry: startRetry(options.startRetry),
    probeIntervalMs: option('probeIntervalMs'),
    leaseMs,
    shutdownGraceMs: option('shutdownGraceMs'),
    killTimeoutMs: option('killTimeoutMs'),
    maxOptionsBytes: option('maxOptionsBytes'),
    maxResultBytes: option('maxResultBytes'),
    childEnv: Object.freeze(
      buildChildEnv(
        process.env,
        options.childEnvAllowlist === undefined
          ? defaultChildEnvAllowlist
          : stringList('childEnvAllowlist', options.childEnvAllowlist),
        options.childEnv == null ? null : stringRecord('childEnv', options.childEnv),
      ),
    ),
    childExecArgv: Object.freeze(childExecArgv(options)),
    childConfinement: confinementOf(
      resolveChildIdentity(options.childUser, options.childGroup),
      parseLimits('childLimits', options.childLimits),
      parsePermissions('childPermissions', options.childPermissions, process.cwd()),
    ),
    spareChildren: option('spareChildren'),
    maxTasksPerChild: tasksPerChild(options.maxTasksPerChild),
    childMaxRssMb: optionalInteger('childMaxRssMb', options.childMaxRssMb, specs.childMaxRssMb),
    childIdleMs: option('childIdleMs'),
    defaultMode: mode('defaultMode', options.defaultMode ?? specs.defaultMode.default),
    defaultTimeoutMs: optionalInteger('defaultTimeoutMs', options.defaultTimeoutMs, specs.defaultTimeoutMs),
    taskOverrides: taskOverrides(options.taskOverrides),
    threads: threadOptions(options.threads, options.childMaxOldSpaceMb),
    crashLimit: option('crashLimit'),
    host,
    logger: options.logger ?? silentLogger,
    taskLogLevel: logLevel('taskLogLevel', options.taskLogLevel ?? specs.taskLogLevel.default),
    recurring: resolveRecurring(options.recurring),
    retention: resolveRetention(options.retention),
  });
}

function startRetry(value: unknown): StartRetryConfig | null {
  if (value === undefined || value === false) return null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(
      'startRetry',
      `must be false or a map of baseMs, maxMs and giveUpAfterMs, got ${JSON.stringify(value)}`,
    );
  }
  const unknown = Object.keys(value).filter((key) => !Object.hasOwn(startRetrySpecs, key));
  if (unknown.length > 0) {
    throw new ConfigError(`startRetry.${unknown[0]}`, `is not an option (${Object.keys(startRetrySpecs).join(', ')})`);
  }
  const options = value as { baseMs?: unknown; maxMs?: unknown; giveUpAfterMs?: unknown };
  const baseMs = integer('startRetry.baseMs', options.baseMs, startRetrySpecs.baseMs);
  const maxMs = integer(
    'startRetry.maxMs',
    options.maxMs,
    startRetrySpecs.maxMs,
    Math.max(defaults.startRetry.maxMs, baseMs),
    baseMs,
  );
  const giveUpAfterMs =
    options.giveUpAfterMs === null || options.giveUpAfterMs === undefined
      ? null
      : integer('startRetry.giveUpAfterMs', options.giveUpAfterMs, startRetrySpecs.giveUpAfterMs, 0);
  return Object.freeze({ baseMs, maxMs, giveUpAfterMs });
}

function logLevel(field: string, value: unknown): LogLevel {
  if (value !== 'debug' && value !== 'info' && value !== 'warn' && value !== 'error') {
    throw new ConfigError(field, `must be one of debug, info, warn, error; got ${JSON.stringify(value)}`);
  }
  return value;
}

function optionalInteger(field: string, value: unknown, spec: FieldSpec): number | null {
  return value === undefined || value === null ? null : integer(field, value, spec, 0);
}

function tasksPerChild(value: unknown): number {
  if (value === Infinity) return Infinity;
  return integer('maxTasksPerChild', value, specs.maxTasksPerChild, defaults.maxTasksPerChild);
}

function mode(field: string, value: unknown): TaskMode {
  if (value !== 'process' && value !== 'thread')
    throw new ConfigError(field, `must be "process" or "thread", got ${JSON.stringify(value)}`);
  return value;
}

const overrideKeys = Object.keys(taskOverrideSpecs);

function taskOverrides(value: unknown): Readonly<Record<string, Readonly<ResolvedTaskOverride>>> {
  if (value === undefined || value === null) return Object.freeze({});
  if (typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError('taskOverrides', 'must map task names to { mode, timeoutMs }');
  const result: Record<string, Readonly<ResolvedTaskOverride>> = Object.create(null);
  for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
    const field = `taskOverrides.${name}`;
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
      throw new ConfigError(field, `must be { ${overrideKeys.join('?, ')}? }`);
    const unknown = Object.keys(entry).filter((key) => !overrideKeys.includes(key));
    if (unknown.length > 0)
      throw new ConfigError(field, `unknown key ${JSON.stringify(unknown[0])}; allowed: ${overrideKeys.join(', ')}`);
    const { mode: m, timeoutMs, limits, permissions } = entry as TaskOverride;
    const override: ResolvedTaskOverride = {};
    if (m !== undefined) override.mode = mode(`${field}.mode`, m);
    if (timeoutMs !== undefined) {
      override.timeoutMs = optionalInteger(`${field}.timeoutMs`, timeoutMs, taskOverrideSpecs.timeoutMs);
    }
    if (limits !== undefined) override.limits = parseLimits(`${field}.limits`, limits);
    if (permissions !== undefined)
      override.permissions = parsePermissions(`${field}.permissions`, permissions, process.cwd());
    result[name] = Object.freeze(override);
  }
  return Object.freeze(result);
}

/**
 * Thread limits; the heap limit set for children (`childMaxOldSpaceMb`) bounds threads too unless
 * `threads.maxOldGenerationSizeMb` says otherwise (null there lifts it): a thread's heap is inside
 * the launcher, so an unbounded one would grow the launcher itself.
 */
function threadOptions(
  value: ThreadOptions | undefined,
  childMaxOldSpaceMb: number | null | undefined,
): Readonly<Required<ThreadOptions>> {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new ConfigError('threads', 'must be an object');
  }
  const t = value ?? {};
  const allowed = Object.keys(threadSpecs);
  const unknown = Object.keys(t).filter((key) => !allowed.includes(key));
  if (unknown.length > 0)
    throw new ConfigError('threads', `unknown key ${JSON.stringify(unknown[0])}; allowed: ${allowed.join(', ')}`);
  return Object.freeze({
    maxThreads: integer('threads.maxThreads', t.maxThreads, threadSpecs.maxThreads, availableParallelism()),
    idleTimeoutMs: integer('threads.idleTimeoutMs', t.idleTimeoutMs, threadSpecs.idleTimeoutMs),
    maxOldGenerationSizeMb: optionalInteger(
      'threads.maxOldGenerationSizeMb',
      t.maxOldGenerationSizeMb === undefined ? childMaxOldSpaceMb : t.maxOldGenerationSizeMb,
      threadSpecs.maxOldGenerationSizeMb,
    ),
    maxYoungGenerationSizeMb: optionalInteger(
      'threads.maxYoungGenerationSizeMb',
      t.maxYoungGenerationSizeMb,
      threadSpecs.maxYoungGenerationSizeMb,
    ),
    stackSizeMb: optionalInteger('threads.stackSizeMb', t.stackSizeMb, threadSpecs.stackSizeMb),
  });
}

function childExecArgv(options: RunnerOptions): string[] {
  // The launcher's own young-generation cap (see `npm start`) is for its memory, not the tasks'.
  const base =
    options.childExecArgv == null
      ? process.execArgv.filter((arg) => !arg.startsWith('--max-semi-space-size'))
      : stringList('childExecArgv', options.childExecArgv);
  if (options.childMaxOldSpaceMb == null) return base;
  const mb = integer('childMaxOldSpaceMb', options.childMaxOldSpaceMb, specs.childMaxOldSpaceMb, 0);
  return [...base.filter((arg) => !arg.startsWith('--max-old-space-size')), `--max-old-space-size=${mb}`];
}
