import type { StandaloneConfig } from '../config/config-file.js';
import { TaskRunnerError } from '../errors.js';
import { readProcessIdentity } from '../pool/process-identity.js';
import { logsAt, type Logger } from '../shared/logger.js';
import { migrate } from '../store/migrations.js';
import { RequestResult } from '../store/schema.js';
import { createRunner, type Runner } from '../launcher/runner.js';
import { withStartRetry } from '../launcher/start-retry.js';
import { ControlServer } from './control-server.js';
import { controlSocketPath } from './control-protocol.js';
import {
  describeDatabaseError,
  openCommandDb,
  openDatabaseSource,
  redactUrl,
  type DatabaseSource,
} from './database-source.js';
import { bundledTasksDir } from './bundled-tasks.js';
import { startDashboard } from '../dashboard/dashboard-server.js';
import { createMetrics } from '../metrics/metrics.js';
import { serveMetrics } from '../metrics/metrics-server.js';
import { acquirePidfile, pidfilePath, type Pidfile } from './pidfile.js';
import { logMigration } from '../launcher/table-notice.js';

export interface StandaloneLauncherParams {
  config: StandaloneConfig;
  logger: Logger;
  /** Aborted when a stop is asked for during the start: a wait for the database then ends. */
  signal?: AbortSignal;
}

/** A running standalone launcher: the runner plus its pidfile, control socket and database. */
export interface StandaloneLauncher {
  readonly runner: Runner;
  readonly tasksDir: string;
  /** Null when the socket could not be created (the launcher runs without it). */
  readonly socketPath: string | null;
  /** Graceful stop, then the socket, the embedded server (if this process runs it) and the pidfile. Safe to call twice. */
  stop(): Promise<void>;
}

function preview(text: string | null): string {
  if (text === null) return '';
  const line = text.replace(/\s+/g, ' ');
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * What `cw-task-runner start` and `node dist/launcher.js` run: takes the pidfile (refusing when a
 * launcher already runs here), opens the database (the embedded one when none is configured),
 * migrates the request table, starts the runner, and answers on the control socket. Installs no
 * signal handler: the CLI does, and calls `stop()`.
 *
 * @example
 * const launcher = await startStandaloneLauncher({ config: await loadStandaloneConfig(), logger });
 * process.once('SIGTERM', () => void launcher.stop());
 */
export async function startStandaloneLauncher(params: StandaloneLauncherParams): Promise<StandaloneLauncher> {
  const { config, logger } = params;
  const undo: (() => Promise<void>)[] = [];
  const unwind = async (): Promise<void> => {
    for (const step of undo.reverse()) {
      await step().catch((error: Error) => logger.error('cleanup failed', { error: error.message }));
    }
  };
  try {
    const pidfile: Pidfile = await acquirePidfile(pidfilePath(config.tmpDir), await readProcessIdentity(process.pid));
    undo.push(() => pidfile.release());

    const source: DatabaseSource = await openDatabaseSource(config, logger);
    undo.push(() => source.release());

    const tasksDir = config.tasksDir ?? bundledTasksDir();
    if (config.tasksDir === null) logger.info('no tasksDir configured: using the bundled sample tasks', { tasksDir });
    const runner = createRunner({
      ...config.runner,
      db: source.url,
      tasksDir,
      tableName: config.tableName,
      logger,
      autoMigrate: false,
    });
    undo.push(() => runner.stop());
    // The first contact with the database: waited for (startRetry) while it is down or full.
    const db = openCommandDb(source.url);
    try {
      const result = await withStartRetry({
        retry: runner.config.startRetry,
        logger,
        what: 'migrating the request table',
        signal: params.signal,
        attempt: () => migrate(db, { tableName: config.tableName }),
      });
      logMigration(logger, config.tableName, result);
    } catch (error) {
      throw describeDatabaseError(error, source.url);
    } finally {
      await db.destroy();
    }

    // A line per task, or no listener at all when its level is dropped (no work per task then).
    if (logsAt(logger, 'debug'))
      runner.events.on('task:started', (e) =>
        logger.debug(`task ${e.taskClassName} started`, { id: e.id, try: e.tries, pid: e.pid }),
      );
    const taskLevel = runner.config.taskLogLevel;
    if (logsAt(logger, taskLevel))
      runner.events.on('task:completed', (e) => {
        if (e.result === RequestResult.FINISHED)
          logger[taskLevel](`task ${e.taskClassName} FINISHED`, {
            id: e.id,
            try: e.tries,
            result: preview(e.resultText),
          });
      });

    let socketPath: string | null = controlSocketPath(config.tmpDir);
    const control = new ControlServer({
      socketPath,
      handlers: { status: () => runner.status(), probe: () => runner.probe() },
      logger,
    });
    try {
      await control.start();
      undo.push(() => control.stop());
    } catch (error) {
      if (!(error instanceof TaskRunnerError) || error.code !== 'CONFIG_INVALID') throw error;
      logger.warn(`running without a control socket: ${error.message}`);
      socketPath = null;
    }

    // Metrics and the dashboard listen before the runner starts, so a port taken or a token
    // missing fails the start before anything is claimed, and the first try is counted.
    if (config.metrics !== null) {
      const metrics = createMetrics({ runner });
      undo.push(async () => metrics.close());
      const server = await serveMetrics({
        registry: metrics.registry,
        port: config.metrics.port,
        host: config.metrics.host,
      });
      undo.push(() => server.close());
      logger.info('metrics served', { url: server.url });
    }
    if (config.dashboard !== null) {
      const dashboard = await startDashboard({
        db: runner.db,
        tableName: config.tableName,
        ...config.dashboard,
        staleMs: runner.config.leaseMs,
        logger,
      });
      undo.push(() => dashboard.close());
      logger.info('dashboard served', {
        url: dashboard.url.replace(/\?token=.*$/, config.dashboard.token === null ? '' : '?token=…'),
      });
    }

    const stopStart = (): void => void runner.stop();
    params.signal?.addEventListener('abort', stopStart, { once: true });
    try {
      await runner.start();
    } catch (error) {
      throw describeDatabaseError(error, source.url);
    } finally {
      params.signal?.removeEventListener('abort', stopStart);
    }
    logger.info('standalone launcher ready', {
      pid: process.pid,
      database: redactUrl(source.url) + (source.embedded ? ' (embedded)' : ''),
      tasksDir,
      socket: socketPath ?? '(none)',
    });

    let stopping: Promise<void> | null = null;
    return {
      runner,
      tasksDir,
      socketPath,
      // Control socket first (no more requests), then the runner (graceful), then what it used.
      stop: () => (stopping ??= unwind()),
    };
  } catch (error) {
    await unwind();
    throw error;
  }
}
