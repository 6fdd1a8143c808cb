import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'yaml';
import { ConfigError, TaskRunnerError } from '../errors.js';
import type { LogLevel } from '../shared/logger.js';

export type LogFormat = 'pretty' | 'json';
import { parseTableName } from './identifiers.js';
import { defaults, resolveRunnerConfig, type RunnerOptions } from './runner-config.js';
import { isRecord } from '../shared/values.js';
import { parseCoreYaml } from '../shared/core-yaml.js';

/**
 * The standalone launcher's and the CLI's configuration: a YAML or JSON file, environment
 * variables over it, command-line flags over both. This module is the only reader of config files
 * and of the environment; the library itself (`createRunner`) takes options only.
 */

/** What a config file may hold (camelCase keys; paths relative to the file's directory). */
export interface ConfigFileOptions extends Omit<RunnerOptions, 'db' | 'listenDb' | 'logger' | 'tasksDir'> {
  databaseUrl?: string;
  tasksDir?: string;
  logLevel?: LogLevel;
  /** `pretty` (default) or `json` (one object per line, for log collectors). */
  logFormat?: LogFormat;
  /** Pidfile, control socket and embedded data live under it. Default `tmp`. */
  tmpDir?: string;
  embedded?: { port?: number; dataDir?: string };
  /** The web dashboard, served by the launcher when set. */
  dashboard?: { port?: number; host?: string; token?: string; readOnly?: boolean };
  /** The Prometheus endpoint, served by the launcher when set. */
  metrics?: { port?: number; host?: string };
}

/** Where the launcher serves the dashboard (null: it does not). */
export interface DashboardSettings {
  readonly port: number;
  readonly host: string;
  readonly token: string | null;
  readonly readOnly: boolean;
}

/** Where the launcher serves /metrics (null: it does not). */
export interface MetricsSettings {
  readonly port: number;
  readonly host: string;
}

/** The runner options a config file or the environment can set (the rest come from code). */
export type FileRunnerOptions = Omit<RunnerOptions, 'db' | 'tasksDir' | 'tableName' | 'logger' | 'listenDb'>;

/** Resolved standalone configuration, frozen. */
export interface StandaloneConfig {
  /** The config file read, or null. */
  readonly configFile: string | null;
  /** Null: no database configured, use the embedded PostgreSQL. */
  readonly databaseUrl: string | null;
  /** Absolute; null: none configured (the launcher falls back to the bundled samples). */
  readonly tasksDir: string | null;
  readonly tableName: string;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Absolute. */
  readonly tmpDir: string;
  readonly embedded: { readonly port: number; readonly dataDir: string };
  readonly runner: Readonly<FileRunnerOptions>;
  readonly dashboard: DashboardSettings | null;
  /** CW_DASHBOARD_TOKEN, else `dashboard.token`: also for `cw-task-runner dashboard` when the launcher serves none. */
  readonly dashboardToken: string | null;
  readonly metrics: MetricsSettings | null;
}

/** Command-line flags that override the file and the environment. */
export interface ConfigFlags {
  config?: string;
  databaseUrl?: string;
  tasksDir?: string;
  tableName?: string;
}

export interface LoadStandaloneConfigParams {
  flags?: ConfigFlags;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default `process.cwd()`. */
  cwd?: string;
}

export const defaultConfigFileName = 'cw-task-runner.yml';
export const standaloneDefaults = Object.freeze({ tmpDir: 'tmp', embeddedPort: 54329, logLevel: 'info' as LogLevel });

/** A config file larger than this is refused before parsing. */
const maxConfigBytes = 256 * 1024;
const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** `runner`: checked by `resolveRunnerConfig`, which names the field. */
type Kind = 'runner' | 'string' | 'integer' | 'boolean' | 'strings' | 'stringsOrNull' | 'env' | 'logLevel' | 'logFormat' | 'backoff' | 'embedded'
  | 'dashboard' | 'metrics';
const fileKeys: Readonly<Record<keyof ConfigFileOptions, Kind>> = {
  databaseUrl: 'string',
  tasksDir: 'string',
  tableName: 'string',
  concurrency: 'integer',
  prefetch: 'integer',
  prefetchHorizonMs: 'integer',
  completionBatchMs: 'integer',
  startBatchMs: 'integer',
  queues: 'stringsOrNull',
  pollIntervalMs: 'integer',
  retryBackoff: 'backoff',
  startRetry: 'runner',
  probeIntervalMs: 'integer',
  leaseMs: 'integer',
  shutdownGraceMs: 'integer',
  killTimeoutMs: 'integer',
  maxOptionsBytes: 'integer',
  maxResultBytes: 'integer',
  childEnvAllowlist: 'strings',
  childEnv: 'env',
  childExecArgv: 'stringsOrNull',
  childMaxOldSpaceMb: 'integer',
  childUser: 'runner',
  childGroup: 'runner',
  childLimits: 'runner',
  childPermissions: 'runner',
  spareChildren: 'integer',
  maxTasksPerChild: 'runner',
  childMaxRssMb: 'runner',
  childIdleMs: 'integer',
  defaultMode: 'runner',
  defaultTimeoutMs: 'runner',
  taskOverrides: 'runner',
  threads: 'runner',
  crashLimit: 'integer',
  host: 'string',
  logLevel: 'logLevel',
  logFormat: 'logFormat',
  taskLogLevel: 'logLevel',
  recurring: 'runner',
  retention: 'runner',
  tmpDir: 'string',
  embedded: 'embedded',
  dashboard: 'dashboard',
  metrics: 'metrics',
};

const sections: Partial<Record<Kind, Record<string, Kind>>> = {
  backoff: { baseMs: 'integer', maxMs: 'integer' },
  embedded: { port: 'integer', dataDir: 'string' },
  dashboard: { port: 'integer', host: 'string', token: 'string', readOnly: 'boolean' },
  metrics: { port: 'integer', host: 'string' },
};

function fileError(file: string, message: string): TaskRunnerError {
  return new TaskRunnerError('CONFIG_INVALID', `config file ${file}: ${message}`);
}


function checkKeys(file: string, where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    const list = unknown.map((key) => JSON.stringify(key)).join(', ');
    throw fileError(file, `unknown key${unknown.length > 1 ? 's' : ''} ${list}${where}; allowed: ${allowed.join(', ')}`);
  }
}

function checkValue(file: string, key: string, kind: Kind, value: unknown): void {
  const fail = (what: string): never => {
    throw fileError(file, `"${key}" must be ${what}, got ${JSON.stringify(value)}`);
  };
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((item) => typeof item === 'string');
  switch (kind) {
    case 'runner':
      return;
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail('a non-empty string');
      return;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) fail('an integer');
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      return;
    case 'strings':
      if (!strings(value)) fail('a list of strings');
      return;
    case 'stringsOrNull':
      if (value !== null && !strings(value)) fail('a list of strings or null');
      return;
    case 'env':
      if (value !== null && !(isRecord(value) && Object.values(value).every((item) => typeof item === 'string'))) {
        fail('a map of string values or null');
      }
      return;
    case 'logLevel':
      if (!logLevels.includes(value as LogLevel)) fail(`one of ${logLevels.join(', ')}`);
      return;
    case 'logFormat':
      if (value !== 'pretty' && value !== 'json') fail('"pretty" or "json"');
      return;
    case 'backoff':
    case 'embedded':
    case 'dashboard':
    case 'metrics': {
      if (!isRecord(value)) fail('a map');
      const record = value as Record<string, unknown>;
      const sub = sections[kind]!;
      checkKeys(file, ` in "${key}"`, record, Object.keys(sub));
      for (const [name, item] of Object.entries(record)) checkValue(file, `${key}.${name}`, sub[name]!, item);
      return;
    }
  }
}

function parseYaml(file: string, text: string): unknown {
  return parseCoreYaml(yaml, text, { maxAliasCount: 10, fail: (message) => fileError(file, message) });
}

/**
 * Reads a config file: YAML (`.yml`, `.yaml`, core schema only: no custom tags, little alias
 * expansion) or JSON (`.json`). Unknown keys are refused by name; `tasksDir`, `tmpDir` and
 * `embedded.dataDir` are resolved against the file's directory.
 *
 * @example
 * const options = await loadConfigFile('cw-task-runner.yml');
 */
export async function loadConfigFile(file: string): Promise<ConfigFileOptions> {
  const absolute = path.resolve(file);
  const extension = path.extname(absolute).toLowerCase();
  if (!['.yml', '.yaml', '.json'].includes(extension)) {
    throw fileError(absolute, 'use a .yml, .yaml or .json file');
  }
  let buffer: Buffer;
  try {
    buffer = await readFile(absolute);
  } catch (error) {
    throw fileError(absolute, `cannot read it: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (buffer.byteLength > maxConfigBytes) throw fileError(absolute, `${buffer.byteLength} bytes, over the limit of ${maxConfigBytes}`);
  const text = buffer.toString('utf8');
  let value: unknown;
  if (extension === '.json') {
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw fileError(absolute, `malformed JSON: ${(error as Error).message}`);
    }
  } else {
    value = text.trim() === '' ? {} : parseYaml(absolute, text);
  }
  if (value === null || value === undefined) value = {};
  if (!isRecord(value)) throw fileError(absolute, 'must hold a map of settings');
  checkKeys(absolute, '', value, Object.keys(fileKeys));
  for (const [key, item] of Object.entries(value)) checkValue(absolute, key, fileKeys[key as keyof ConfigFileOptions], item);
  const options = { ...value } as ConfigFileOptions;
  const dir = path.dirname(absolute);
  if (options.tasksDir !== undefined) options.tasksDir = path.resolve(dir, options.tasksDir);
  if (options.tmpDir !== undefined) options.tmpDir = path.resolve(dir, options.tmpDir);
  if (isRecord(options.childPermissions)) options.childPermissions = permissionPathsFrom(dir, options.childPermissions);
  if (options.embedded?.dataDir !== undefined) {
    options.embedded = { ...options.embedded, dataDir: path.resolve(dir, options.embedded.dataDir) };
  }
  return options;
}

/** A policy's relative paths, resolved against the config file's directory like its other paths. */
function permissionPathsFrom(dir: string, policy: Record<string, unknown>): NonNullable<ConfigFileOptions['childPermissions']> {
  const resolved: Record<string, unknown> = { ...policy };
  for (const key of ['fsRead', 'fsWrite']) {
    const list = policy[key];
    if (Array.isArray(list)) resolved[key] = list.map((item: unknown) => (typeof item === 'string' && item !== '*' ? path.resolve(dir, item) : item));
  }
  return resolved;
}

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function envInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = envValue(env, name);
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function checkDatabaseUrl(url: string): void {
  let protocol: string;
  try {
    protocol = new URL(url).protocol;
  } catch {
    protocol = '';
  }
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    throw new ConfigError('databaseUrl', 'must be a postgres:// or postgresql:// URL');
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(() => true, () => false);
}

/**
 * Resolves the standalone configuration. Precedence: flags, then environment variables
 * (`DATABASE_URL`, `CW_TASKS_DIR`, `CW_CONCURRENCY`, `CW_POLL_INTERVAL_MS`, `CW_TABLE_NAME`,
 * `CW_LOG_LEVEL`, `CW_LOG_FORMAT`), then the config file (`--config`, else `CW_CONFIG`, else `cw-task-runner.yml`
 * in the working directory when it exists), then defaults. Every value is validated here, so a
 * bad setting is reported before anything starts.
 *
 * @example
 * const config = await loadStandaloneConfig({ flags: { tableName: 'jobs' } });
 */
export async function loadStandaloneConfig(params: LoadStandaloneConfigParams = {}): Promise<StandaloneConfig> {
  const env = params.env ?? process.env;
  const cwd = params.cwd ?? process.cwd();
  const flags = params.flags ?? {};

  const explicitFile = flags.config ?? envValue(env, 'CW_CONFIG');
  let configFile: string | null = null;
  if (explicitFile !== undefined) {
    configFile = path.resolve(cwd, explicitFile);
  } else if (await exists(path.join(cwd, defaultConfigFileName))) {
    configFile = path.join(cwd, defaultConfigFileName);
  }
  const file = configFile === null ? {} : await loadConfigFile(configFile);

  const logLevel = envValue(env, 'CW_LOG_LEVEL') ?? file.logLevel ?? standaloneDefaults.logLevel;
  if (!logLevels.includes(logLevel as LogLevel)) {
    throw new ConfigError('CW_LOG_LEVEL', `must be one of ${logLevels.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const logFormat = envValue(env, 'CW_LOG_FORMAT') ?? file.logFormat ?? 'pretty';
  if (logFormat !== 'pretty' && logFormat !== 'json') {
    throw new ConfigError('CW_LOG_FORMAT', `must be "pretty" or "json", got ${JSON.stringify(logFormat)}`);
  }
  const tableName = flags.tableName ?? envValue(env, 'CW_TABLE_NAME') ?? file.tableName ?? defaults.tableName;
  parseTableName(tableName);

  const tasksDirInput = flags.tasksDir ?? envValue(env, 'CW_TASKS_DIR');
  const tasksDir = tasksDirInput !== undefined ? path.resolve(cwd, tasksDirInput) : (file.tasksDir ?? null);
  const tmpDir = file.tmpDir ?? path.resolve(cwd, standaloneDefaults.tmpDir);
  const databaseUrl = flags.databaseUrl ?? envValue(env, 'DATABASE_URL') ?? file.databaseUrl ?? null;
  if (databaseUrl !== null) checkDatabaseUrl(databaseUrl);

  const runner: FileRunnerOptions = {};
  const assign = <K extends keyof FileRunnerOptions>(key: K, value: FileRunnerOptions[K] | undefined): void => {
    if (value !== undefined) runner[key] = value;
  };
  assign('concurrency', envInteger(env, 'CW_CONCURRENCY') ?? file.concurrency);
  assign('prefetch', file.prefetch);
  assign('prefetchHorizonMs', file.prefetchHorizonMs);
  assign('completionBatchMs', file.completionBatchMs);
  assign('startBatchMs', file.startBatchMs);
  assign('taskLogLevel', file.taskLogLevel);
  assign('pollIntervalMs', envInteger(env, 'CW_POLL_INTERVAL_MS') ?? file.pollIntervalMs);
  assign('queues', file.queues);
  assign('retryBackoff', file.retryBackoff);
  // A daemon waits for its database at start as it does when the database goes away later.
  assign('startRetry', file.startRetry ?? {});
  assign('probeIntervalMs', file.probeIntervalMs);
  assign('leaseMs', file.leaseMs);
  assign('shutdownGraceMs', file.shutdownGraceMs);
  assign('killTimeoutMs', file.killTimeoutMs);
  assign('maxOptionsBytes', file.maxOptionsBytes);
  assign('maxResultBytes', file.maxResultBytes);
  assign('childEnvAllowlist', file.childEnvAllowlist);
  assign('childEnv', file.childEnv);
  assign('childExecArgv', file.childExecArgv);
  assign('childMaxOldSpaceMb', file.childMaxOldSpaceMb);
  assign('childUser', file.childUser);
  assign('childGroup', file.childGroup);
  assign('childLimits', file.childLimits);
  assign('childPermissions', file.childPermissions);
  assign('spareChildren', file.spareChildren);
  assign('maxTasksPerChild', file.maxTasksPerChild);
  assign('childMaxRssMb', file.childMaxRssMb);
  assign('childIdleMs', file.childIdleMs);
  assign('defaultMode', file.defaultMode);
  assign('defaultTimeoutMs', file.defaultTimeoutMs);
  assign('taskOverrides', file.taskOverrides);
  assign('threads', file.threads);
  assign('crashLimit', file.crashLimit);
  assign('host', file.host);
  assign('recurring', file.recurring);
  assign('retention', file.retention);
  // Validate the runner options now (ranges, combinations), so `start` fails before it starts.
  resolveRunnerConfig({ ...runner, db: 'postgres://validation-only', tasksDir: tasksDir ?? cwd, tableName });

  const port = file.embedded?.port ?? standaloneDefaults.embeddedPort;
  const listenPort = (field: string, value: number | undefined, fallback: number): number => {
    const chosen = value ?? fallback;
    if (chosen < 0 || chosen > 65_535) throw new ConfigError(field, `must be from 0 to 65535, got ${chosen}`);
    return chosen;
  };
  const dashboard: DashboardSettings | null = file.dashboard === undefined ? null : Object.freeze({
    port: listenPort('dashboard.port', file.dashboard.port, 8080),
    host: file.dashboard.host ?? '127.0.0.1',
    // The token is better kept out of a file that may be committed: CW_DASHBOARD_TOKEN wins.
    token: envValue(env, 'CW_DASHBOARD_TOKEN') ?? file.dashboard.token ?? null,
    readOnly: file.dashboard.readOnly ?? false,
  });
  const metrics: MetricsSettings | null = file.metrics === undefined ? null : Object.freeze({
    port: listenPort('metrics.port', file.metrics.port, 9464),
    host: file.metrics.host ?? '127.0.0.1',
  });
  if (port < 1 || port > 65_535) throw new ConfigError('embedded.port', `must be from 1 to 65535, got ${port}`);
  return Object.freeze({
    configFile,
    databaseUrl,
    tasksDir,
    tableName,
    logLevel: logLevel as LogLevel,
    logFormat,
    tmpDir,
    embedded: Object.freeze({ port, dataDir: file.embedded?.dataDir ?? path.join(tmpDir, 'embedded-pg') }),
    runner: Object.freeze(runner),
    dashboard,
    dashboardToken: envValue(env, 'CW_DASHBOARD_TOKEN') ?? file.dashboard?.token ?? null,
    metrics,
  });
}
