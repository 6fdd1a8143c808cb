import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as yaml from 'yaml';
import { ConfigError } from '../errors.js';
import type { LogLevel } from '../shared/logger.js';
import { isRecord } from '../shared/values.js';
import { parseCoreYaml } from '../shared/core-yaml.js';
import { checkFileSettings, fileError } from './config-file-checks.js';
import { parseTableName } from './identifiers.js';
import {
  dashboardSpecs,
  embeddedSpecs,
  launcherOptionSpecs,
  metricsSpecs,
  runnerOptionSpecs,
  type OptionSpec,
} from './option-specs.js';
import { defaults, resolveRunnerConfig, type RunnerOptions } from './runner-config.js';

export type LogFormat = 'pretty' | 'json';

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

/**
 * The keys a config file passes to the runner as they are: every option whose file key is its own
 * name (`tasksDir` and `tableName` are the launcher's to resolve first). `startRetry` has a
 * default of its own in the standalone launcher.
 */
const fileRunnerOptionKeys = (Object.keys(runnerOptionSpecs) as (keyof typeof runnerOptionSpecs)[]).filter(
  (key): key is Exclude<keyof FileRunnerOptions, 'startRetry'> =>
    (runnerOptionSpecs[key] as OptionSpec).fileKey === key &&
    key !== 'tasksDir' &&
    key !== 'tableName' &&
    key !== 'startRetry',
);

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
export const standaloneDefaults = Object.freeze({
  tmpDir: launcherOptionSpecs.tmpDir.default as string,
  embeddedPort: embeddedSpecs.port.default as number,
  logLevel: launcherOptionSpecs.logLevel.default as LogLevel,
});

/** A config file larger than this is refused before parsing. */
const maxConfigBytes = 256 * 1024;
const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

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
  if (buffer.byteLength > maxConfigBytes)
    throw fileError(absolute, `${buffer.byteLength} bytes, over the limit of ${maxConfigBytes}`);
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
  checkFileSettings(absolute, value);
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
function permissionPathsFrom(
  dir: string,
  policy: Record<string, unknown>,
): NonNullable<ConfigFileOptions['childPermissions']> {
  const resolved: Record<string, unknown> = { ...policy };
  for (const key of ['fsRead', 'fsWrite']) {
    const list = policy[key];
    if (Array.isArray(list))
      resolved[key] = list.map((item: unknown) =>
        typeof item === 'string' && item !== '*' ? path.resolve(dir, item) : item,
      );
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
  return access(file).then(
    () => true,
    () => false,
  );
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

  const logLevel = envValue(env, launcherOptionSpecs.logLevel.env) ?? file.logLevel ?? standaloneDefaults.logLevel;
  if (!logLevels.includes(logLevel as LogLevel)) {
    throw new ConfigError('CW_LOG_LEVEL', `must be one of ${logLevels.join(', ')}, got ${JSON.stringify(logLevel)}`);
  }
  const logFormat =
    envValue(env, launcherOptionSpecs.logFormat.env) ?? file.logFormat ?? launcherOptionSpecs.logFormat.default;
  if (logFormat !== 'pretty' && logFormat !== 'json') {
    throw new ConfigError('CW_LOG_FORMAT', `must be "pretty" or "json", got ${JSON.stringify(logFormat)}`);
  }
  const tableName =
    flags.tableName ?? envValue(env, runnerOptionSpecs.tableName.env) ?? file.tableName ?? defaults.tableName;
  parseTableName(tableName);

  const tasksDirInput = flags.tasksDir ?? envValue(env, runnerOptionSpecs.tasksDir.env);
  const tasksDir = tasksDirInput !== undefined ? path.resolve(cwd, tasksDirInput) : (file.tasksDir ?? null);
  const tmpDir = file.tmpDir ?? path.resolve(cwd, standaloneDefaults.tmpDir);
  const databaseUrl = flags.databaseUrl ?? envValue(env, runnerOptionSpecs.db.env) ?? file.databaseUrl ?? null;
  if (databaseUrl !== null) checkDatabaseUrl(databaseUrl);

  const runner: FileRunnerOptions = {};
  const assign = <K extends keyof FileRunnerOptions>(key: K, value: FileRunnerOptions[K] | undefined): void => {
    if (value !== undefined) (runner as Record<K, FileRunnerOptions[K]>)[key] = value;
  };
  for (const key of fileRunnerOptionKeys) {
    const spec: OptionSpec = runnerOptionSpecs[key];
    const fromEnv = spec.env !== undefined && spec.kind === 'integer' ? envInteger(env, spec.env) : undefined;
    assign(key, fromEnv ?? file[key]);
  }
  // A daemon waits for its database at start as it does when the database goes away later.
  assign('startRetry', file.startRetry ?? {});
  // Validate the runner options now (ranges, combinations), so `start` fails before it starts.
  resolveRunnerConfig({ ...runner, db: 'postgres://validation-only', tasksDir: tasksDir ?? cwd, tableName });

  const port = file.embedded?.port ?? standaloneDefaults.embeddedPort;
  const listenPort = (field: string, value: number | undefined, fallback: number): number => {
    const chosen = value ?? fallback;
    if (chosen < 0 || chosen > 65_535) throw new ConfigError(field, `must be from 0 to 65535, got ${chosen}`);
    return chosen;
  };
  const dashboard: DashboardSettings | null =
    file.dashboard === undefined
      ? null
      : Object.freeze({
          port: listenPort('dashboard.port', file.dashboard.port, dashboardSpecs.port.default),
          host: file.dashboard.host ?? dashboardSpecs.host.default,
          // The token is better kept out of a file that may be committed: CW_DASHBOARD_TOKEN wins.
          token: envValue(env, 'CW_DASHBOARD_TOKEN') ?? file.dashboard.token ?? null,
          readOnly: file.dashboard.readOnly ?? dashboardSpecs.readOnly.default,
        });
  const metrics: MetricsSettings | null =
    file.metrics === undefined
      ? null
      : Object.freeze({
          port: listenPort('metrics.port', file.metrics.port, metricsSpecs.port.default),
          host: file.metrics.host ?? metricsSpecs.host.default,
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
