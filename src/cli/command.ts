import { loadStandaloneConfig, type ConfigFlags, type StandaloneConfig } from '../config/config-file.js';
import { hostname } from 'node:os';
import { createStreamLogger, type Logger } from '../shared/logger.js';
import type { RunnerClient } from '../client/create-client.js';
import type { OptionSpecs, ParsedCommandLine } from './args.js';

/** Where the CLI writes and what it reads; tests pass their own. */
export interface CliIo {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  /** Default `process.env` (read by the config module only). */
  env?: NodeJS.ProcessEnv;
  /** Default `process.cwd()`. */
  cwd?: string;
}

export interface CommandContext {
  readonly io: CliIo;
  readonly values: ParsedCommandLine['values'];
  readonly positionals: string[];
  readonly flags: ConfigFlags;
  /** Flags, environment and config file, resolved and validated. */
  loadConfig(): Promise<StandaloneConfig>;
  /** Log lines go to stderr, so stdout carries only the command's output. */
  logger(config: StandaloneConfig): Logger;
}

/** The heavy part of the CLI (driver, runner), loaded when a command runs. */
export function loadRuntime(): Promise<typeof import('./runtime.js')> {
  return import('./runtime.js');
}

export interface CliCommand {
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** `schedule <TaskName> [options]` */
  readonly usage: string;
  /** Paragraphs after the usage line. */
  readonly description: string;
  readonly options: OptionSpecs;
  /** `--flag VALUE   what it does` lines. */
  readonly optionHelp: readonly string[];
  run(context: CommandContext): Promise<number>;
}

export function createContext(io: CliIo, parsed: ParsedCommandLine, flags: ConfigFlags): CommandContext {
  let config: Promise<StandaloneConfig> | null = null;
  return {
    io,
    values: parsed.values,
    positionals: parsed.positionals,
    flags,
    loadConfig: () => (config ??= loadStandaloneConfig({ flags, env: io.env, cwd: io.cwd })),
    logger: (resolved) =>
      createStreamLogger(io.stderr, {
        level: resolved.logLevel,
        format: resolved.logFormat,
        base: { pid: process.pid, host: resolved.runner.host ?? hostname() },
      }),
  };
}

/**
 * Runs `body` with a connection string to the configured database (the embedded one, started or
 * joined and migrated, when none is configured), releasing it afterwards; connection failures come back as
 * one-line DATABASE_UNAVAILABLE errors naming the (redacted) URL.
 */
export async function withDatabase<T>(
  config: StandaloneConfig,
  logger: Logger,
  body: (url: string) => Promise<T>,
): Promise<T> {
  const { describeDatabaseError, migrate, openCommandDb, openDatabaseSource } = await loadRuntime();
  const source = await openDatabaseSource(config, logger);
  try {
    // The embedded database is this tool's own: its table is created on first use by any command.
    // A configured database is migrated only by `migrate` and `start`.
    if (source.embedded) {
      const db = openCommandDb(source.url);
      await migrate(db, { tableName: config.tableName }).finally(() => db.destroy());
    }
    return await body(source.url);
  } catch (error) {
    throw describeDatabaseError(error, source.url);
  } finally {
    await source.release();
  }
}

/** Runs `body` with a client on the configured database (see `withDatabase`), closing both after. */
export function withClient<T>(
  config: StandaloneConfig,
  logger: Logger,
  body: (client: RunnerClient) => Promise<T>,
): Promise<T> {
  return withDatabase(config, logger, async (url) => {
    const { createClient, openCommandPool } = await loadRuntime();
    const pool = openCommandPool(url);
    const client = createClient({ db: pool, tableName: config.tableName });
    try {
      return await body(client);
    } finally {
      await client.close();
      await pool.end();
    }
  });
}
