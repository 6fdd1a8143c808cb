import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { StandaloneConfig } from '../config/config-file.js';
import { TaskRunnerError } from '../errors.js';
import { openEmbeddedDatabase } from '../embedded/embedded-database.js';
import type { Logger } from '../shared/logger.js';
import { asDatabaseError, openPool, type SqlDb, type SqlTables } from '../store/database.js';

/** Where the standalone launcher and the CLI find the database: the configured URL, or the embedded server. */
export interface DatabaseSource {
  readonly url: string;
  /** True for the embedded development server. */
  readonly embedded: boolean;
  /** Ends this process's use of it (stops an embedded server no one else uses). Close pools first. */
  release(): Promise<void>;
}

/** How long a command waits to connect before it reports the database unreachable. */
export const connectTimeoutMs = 10_000;

/** The URL with its password hidden, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.href;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Names a failure to reach the database with the (redacted) URL it tried, as one line; other
 * errors pass through.
 */
export function describeDatabaseError(error: unknown, url: string): unknown {
  const mapped = asDatabaseError(error);
  if (!(mapped instanceof TaskRunnerError) || mapped.code !== 'DATABASE_UNAVAILABLE') return mapped;
  const detail = mapped.message.replace(/^cannot use the database: /, '');
  return new TaskRunnerError('DATABASE_UNAVAILABLE', `cannot use the database ${redactUrl(url)}: ${detail}`, {
    cause: error,
  });
}

/**
 * Resolves the configured database, starting (or joining) the embedded PostgreSQL when none is
 * configured.
 */
export async function openDatabaseSource(config: StandaloneConfig, logger: Logger): Promise<DatabaseSource> {
  if (config.databaseUrl !== null) {
    return { url: config.databaseUrl, embedded: false, release: async () => undefined };
  }
  logger.debug('no database configured: using the embedded PostgreSQL', { dataDir: config.embedded.dataDir });
  const embedded = await openEmbeddedDatabase({ dataDir: config.embedded.dataDir, port: config.embedded.port, logger });
  return { url: embedded.connectionString, embedded: true, release: () => embedded.release() };
}

/** A small pool with a connect timeout, for commands that run a few statements and exit. */
export function openCommandPool(url: string): pg.Pool {
  return openPool({ connectionString: url, max: 2, connectionTimeoutMillis: connectTimeoutMs });
}

/** A Kysely over {@link openCommandPool}; destroying it ends the pool. */
export function openCommandDb(url: string): SqlDb {
  return new Kysely<SqlTables>({ dialect: new PostgresDialect({ pool: openCommandPool(url) }) });
}
