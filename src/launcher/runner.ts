import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { resolveRecurringEntry, type RecurringEntryOptions } from '../config/recurring-config.js';
import { resolveRunnerConfig, type RunnerConfig } from '../config/runner-config.js';
import { runnerOptionSpecs } from '../config/option-specs.js';
import type { CreateRunnerOptions } from '../config/runner-options.js';
import { TaskRunnerError } from '../errors.js';
import { createLauncherId, readProcessIdentity } from '../pool/process-identity.js';
import { ServiceState, type Service } from '../shared/service.js';
import { TypedEmitter } from '../shared/typed-emitter.js';
import {
  asDatabaseError,
  databaseTimeoutMs,
  openDatabase,
  type Executor,
  type OpenDatabase,
} from '../store/database.js';
import { migrate, type MigrateResult } from '../store/migrations.js';
import { launcherHeartbeat, launcherRemove } from '../store/activity.js';
import type { PruneResult } from '../store/prune-requests.js';
import { RecurringStore } from '../store/recurring-store.js';
import { cancelRequest, type CancelResult } from '../store/cancel-request.js';
import { requestFind } from '../store/inspection.js';
import { requestRetry } from '../store/request-actions.js';
import { RequestStore } from '../store/request-store.js';
import { requestsCountByState, type StatusCounts } from '../store/state-counts.js';
import { poolClient } from '../store/sql-client.js';
import type { TaskRequestRow } from '../store/schema.js';
import { TaskRegistry, typeScriptChildrenProblem } from '../tasks/registry.js';
import type { RequestEnqueuer } from '../tasks/task.js';
import type { RunningRequest } from './dispatcher.js';
import type { RunnerEvents } from './events.js';
import { checkConfinement, LauncherParts } from './launcher-parts.js';
import { LeaseService } from './lease-service.js';
import { ProbeService, type ProbeResult } from './probe-service.js';
import { RetentionService } from './retention-service.js';
import { RecurringService } from './recurring-service.js';
import { RequestWriter, type ScheduleCallParams, type ScheduleItem } from '../client/request-writer.js';
import { traceTries } from './try-spans.js';
import { withStartRetry } from './start-retry.js';
import type { ChildRecycleReason } from '../pool/fork-pool.js';
import { announceTable, logMigration } from './table-notice.js';

export type { CreateRunnerOptions } from '../config/runner-options.js';

export interface RunnerStatus {
  launcherId: string;
  host: string;
  pid: number;
  running: RunningRequest[];
  /** Rows this launcher claimed ahead and holds in its local queue, not started yet. */
  held: number;
  counts: StatusCounts;
}

/** The launcher embedded in a host process: claims, runs, records, probes. */
export interface Runner extends Service, RequestEnqueuer {
  readonly launcherId: string;
  readonly config: RunnerConfig;
  readonly events: TypedEmitter<RunnerEvents>;
  /** The Kysely instance the runner queries through. */
  readonly db: Kysely<any>;
  schedule(taskClassName: string, options?: unknown, params?: ScheduleCallParams): Promise<string>;
  scheduleMany(items: readonly ScheduleItem[], params?: { db?: Executor }): Promise<string[]>;
  /** Runs the pid probe and lease recovery now. */
  probe(): Promise<ProbeResult>;
  /**
   * Cancels a request: a waiting one is ended at once and never starts; a running one is killed
   * by the launcher that runs it (told through NOTIFY, wherever it is) and recorded CANCELLED.
   */
  cancel(id: string | number | bigint): Promise<CancelResult>;
  /** Makes an ended or waiting request runnable now. */
  retry(id: string | number | bigint): Promise<void>;
  find(id: string | number | bigint): Promise<TaskRequestRow | null>;
  status(): Promise<RunnerStatus>;
  /** Counts this launcher keeps in memory (no query): for metrics read at scrape time. */
  readonly stats: RunnerStats;
  /**
   * Declares a recurring task (as the config's `recurring` list does): from `start()` on, this
   * launcher enqueues it at its due times, each due time once however many launchers declare it.
   *
   * @example
   * await runner.recurring({ task: 'SendDigest', cron: '0 7 * * *', timezone: 'Europe/Paris' });
   */
  recurring(entry: RecurringEntryOptions): Promise<void>;
  /**
   * Prunes ended requests past the `retention` rules now (launchers also do it every
   * `retention.intervalMs`); `dryRun` counts instead. Rejects when `retention` is false.
   */
  prune(params?: { dryRun?: boolean }): Promise<PruneResult>;
}

/** In-memory counts of a started runner (zeros before `start()`). */
export interface RunnerStats {
  /** Tries running now. */
  running: number;
  /** Rows claimed ahead and held, not started. */
  held: number;
  /**
   * Outcomes of ended tries not yet written to the table (waiting for, or in, a statement). At 50
   * per slot no new try starts until the database takes them.
   */
  unwritten: number;
  /** Child processes alive (running, spare or idle). */
  children: number;
  /** Worker threads busy with a try or queued for one. */
  threadsBusy: number;
  /** Children ended after a try instead of being reused, by reason, since `start()`. */
  childRecycles: Readonly<Record<ChildRecycleReason, number>>;
}

class TaskRunner implements Runner {
  readonly events = new TypedEmitter<RunnerEvents>();
  readonly config: RunnerConfig;
  readonly #autoMigrate: boolean;
  readonly #state = new ServiceState();
  readonly #database: OpenDatabase;
  readonly #store: RequestStore;
  readonly #registry: TaskRegistry;
  readonly #writer: RequestWriter;
  readonly #random = randomBytes(4).toString('hex');
  #launcherId: string | null = null;
  #parts: LauncherParts | null = null;
  #probe: ProbeService | null = null;
  #lease: LeaseService | null = null;
  readonly #retention: RetentionService | null;
  readonly #recurring: RecurringService;
  /** Ends the tries' OpenTelemetry spans (a no-op without @opentelemetry/api). */
  #untrace: (() => void) | null = null;
  /** Aborted by `stop()`: a start still waiting for the database gives up. */
  readonly #startAbort = new AbortController();

  constructor(options: CreateRunnerOptions) {
    this.config = resolveRunnerConfig(options);
    this.#autoMigrate = options.autoMigrate ?? runnerOptionSpecs.autoMigrate.default;
    this.#database = openDatabase(this.config.db, Math.max(4, Math.min(this.config.concurrency + 2, 20)), {
      statementTimeoutMs: databaseTimeoutMs(this.config.leaseMs),
    });
    this.#store = new RequestStore({
      db: this.#database.db,
      sql: this.#database.pool === null ? undefined : poolClient(this.#database.pool),
      table: this.config.table,
      backoff: this.config.retryBackoff,
      crashLimit: this.config.crashLimit,
    });
    this.#registry = new TaskRegistry(this.config.tasksDir);
    this.#writer = new RequestWriter({
      db: this.#database.db,
      table: this.config.table,
      registry: this.#registry,
      maxOptionsBytes: this.config.maxOptionsBytes,
    });
    this.#recurring = new RecurringService({
      store: new RecurringStore(this.#database.db, this.config.table),
      entries: this.config.recurring,
      maxOptionsBytes: this.config.maxOptionsBytes,
      events: this.events,
      logger: this.config.logger,
      report: (error, during) => this.#report(error, during),
    });
    const { retention } = this.config;
    this.#retention =
      retention === null
        ? null
        : new RetentionService({
            db: this.#database.db,
            table: this.config.table,
            retention,
            events: this.events,
            logger: this.config.logger,
            report: (error, during) => this.#report(error, during),
            shouldStop: () => this.#state.stopping,
          });
  }

  recurring(entry: RecurringEntryOptions): Promise<void> {
    return this.#recurring.add(resolveRecurringEntry('recurring()', entry));
  }

  async prune(params: { dryRun?: boolean } = {}): Promise<PruneResult> {
    if (this.#retention === null) {
      throw new TaskRunnerError('CONFIG_INVALID', 'retention is false (every row is kept): there is nothing to prune');
    }
    return this.#retention.runOnce(params);
  }

  get db(): Kysely<any> {
    return this.#database.db;
  }

  get launcherId(): string {
    if (this.#launcherId === null) throw new Error('launcherId is known once start() has resolved');
    return this.#launcherId;
  }

  schedule(taskClassName: string, options?: unknown, params?: ScheduleCallParams): Promise<string> {
    return this.#writer.schedule(taskClassName, options, params);
  }

  scheduleMany(items: readonly ScheduleItem[], params?: { db?: Executor }): Promise<string[]> {
    return this.#writer.scheduleMany(items, params);
  }

  async probe(): Promise<ProbeResult> {
    return (await this.#probeService()).runOnce();
  }

  async cancel(id: string | number | bigint): Promise<CancelResult> {
    const result = await cancelRequest(this.#database.db, this.config.table, String(id));
    if (result.state === 'cancelling' && result.launcherId === this.#launcherId)
      this.#parts?.dispatcher.cancel(String(id));
    return result;
  }

  retry(id: string | number | bigint): Promise<void> {
    return requestRetry(this.#database.db, this.config.table, String(id));
  }

  find(id: string | number | bigint): Promise<TaskRequestRow | null> {
    return requestFind(this.#database.db, this.config.table, String(id));
  }

  get stats(): RunnerStats {
    const parts = this.#parts;
    if (parts === null)
      return {
        running: 0,
        held: 0,
        unwritten: 0,
        children: 0,
        threadsBusy: 0,
        childRecycles: { tasks: 0, memory: 0, ended: 0 },
      };
    const children = parts.processPool.pids.length;
    return {
      running: parts.dispatcher.running,
      held: parts.dispatcher.queued,
      unwritten: parts.dispatcher.unwritten,
      children,
      threadsBusy: Math.max(0, parts.dispatcher.poolBusy - parts.processPool.busy),
      childRecycles: parts.processPool.recycles,
    };
  }

  async status(): Promise<RunnerStatus> {
    return {
      launcherId: await this.#id(),
      host: this.config.host,
      pid: process.pid,
      running: this.#parts?.dispatcher.list() ?? [],
      held: this.#parts?.dispatcher.queued ?? 0,
      counts: await requestsCountByState(this.#database.db, this.config.table),
    };
  }

  async #id(): Promise<string> {
    this.#launcherId ??= await createLauncherId(this.#random);
    return this.#launcherId;
  }

  /**
   * Opens the store (migrated, or read, with `startRetry`), reads the tasks directory, then starts
   * the services in order: the probe (what a previous launcher on this host left behind is
   * recovered before anything is claimed), the lease, the tries' spans, the launcher's parts
   * (listening and claiming), recurring entries and retention.
   */
  start(): Promise<void> {
    return this.#state.start(async () => {
      const { config } = this;
      // Before anything is opened: a child user that cannot load the runtime is a config error.
      await checkConfinement(config);
      const launcherId = await this.#id();
      await this.#openStore();
      await this.#scanTasks();
      const parts = new LauncherParts({
        config,
        database: this.#database,
        store: this.#store,
        registry: this.#registry,
        events: this.events,
        launcherId,
        launcherIdentity: await readProcessIdentity(process.pid),
        report: (error, during) => this.#report(error, during),
        // A pid cleared under one of our tries: renew now, which finds it and stops the try.
        onRescheduleNotice: () => this.#lease?.renewSoon(),
      });
      this.#parts = parts;
      await (await this.#probeService()).start();
      this.#lease = this.#leaseService(launcherId, parts);
      await this.#lease.start();
      this.#untrace = traceTries(this.events);
      await parts.start();
      // Recurring entries and retention: both safe with any number of launchers (see their files).
      await this.#recurring.start().catch((error: Error) => this.#report(error, 'registering recurring tasks'));
      await this.#retention?.start();
      config.logger.info('launcher started', {
        launcherId,
        host: config.host,
        concurrency: config.concurrency,
        table: config.table.qualified,
      });
      this.events.emit('runner:started', { launcherId, host: config.host, pid: process.pid });
    });
  }

  /**
   * Migrates the request table (or, without `autoMigrate`, reads it), waiting for a database that
   * is down or full at start when `startRetry` says so (see start-retry.ts), and says once how the
   * table came to be. Closes the database when it cannot be reached.
   */
  async #openStore(): Promise<void> {
    const { config } = this;
    let migrated: MigrateResult | null = null;
    try {
      await withStartRetry({
        retry: config.startRetry,
        logger: config.logger,
        signal: this.#startAbort.signal,
        what: this.#autoMigrate ? 'migrating the request table' : 'reading the request table',
        attempt: async () => {
          if (this.#autoMigrate) migrated = await this.#migrate();
          else await requestsCountByState(this.#database.db, this.config.table);
        },
      });
    } catch (error) {
      await this.#database.close().catch(() => undefined);
      throw asDatabaseError(error);
    }
    if (migrated !== null) logMigration(config.logger, config.table.qualified, migrated);
    await announceTable({
      db: this.#database.db,
      table: config.table,
      retention: config.retention,
      ownSessions: this.#database.connectionString !== null,
      logger: config.logger,
    }).catch((error: Error) => this.#report(error, 'reading how the request table came to be'));
  }

  /** Reads the tasks directory; warns of what would fail later (duplicate names, `.ts` tasks with no loader). */
  async #scanTasks(): Promise<void> {
    const { config } = this;
    const scan = await this.#registry.refresh();
    for (const file of scan.duplicates) {
      config.logger.warn('task file ignored: another file has the same task name', { file });
    }
    const typeScript = typeScriptChildrenProblem(scan, config.childExecArgv, config.childEnv);
    if (typeScript !== null) config.logger.warn(typeScript);
  }

  async #probeService(): Promise<ProbeService> {
    const { config } = this;
    this.#probe ??= new ProbeService({
      store: this.#store,
      host: config.host,
      launcherId: await this.#id(),
      intervalMs: config.probeIntervalMs,
      events: this.events,
      logger: config.logger,
      report: (error, during) => this.#report(error, during),
    });
    return this.#probe;
  }

  #leaseService(launcherId: string, parts: LauncherParts): LeaseService {
    const { config } = this;
    return new LeaseService({
      store: this.#store,
      launcherId,
      host: config.host,
      leaseMs: config.leaseMs,
      loop: parts.loop,
      dispatcher: parts.dispatcher,
      // The launchers table says who is alive (status, dashboard); beaten with the lease.
      heartbeat: () =>
        launcherHeartbeat(this.#database.db, config.table, {
          launcherId,
          host: config.host,
          pid: process.pid,
          concurrency: config.concurrency,
          queues: config.queues,
        }),
      events: this.events,
      logger: config.logger,
      report: (error, during) => this.#report(error, during),
    });
  }

  /**
   * Migrations may build indexes on a large table for longer than the runner's statements may
   * take (see `databaseTimeoutMs`): over a connection string they get a connection of their own.
   */
  async #migrate(): Promise<MigrateResult> {
    const { connectionString } = this.#database;
    const own = connectionString === null ? null : openDatabase(connectionString, 1);
    try {
      return await migrate((own ?? this.#database).db, { tableName: this.config.table.qualified });
    } finally {
      await own?.close();
    }
  }

  #report(error: Error, during: string): void {
    this.config.logger.error(`${during} failed`, { error: error.message });
    this.events.emit('error', { error, during });
  }

  /**
   * Graceful shutdown: stop claiming, give back the rows held unstarted, give running tasks
   * `shutdownGraceMs` to finish, then terminate the rest (SIGTERM, SIGKILL after
   * `killTimeoutMs`) and release their rows (INTERRUPTED, try given back). Rows are never left
   * holding a pid.
   */
  stop(): Promise<void> {
    this.#startAbort.abort();
    return this.#state.stop(
      async () => {
        const { config } = this;
        await this.#probe?.stop();
        await this.#lease?.stop();
        await this.#retention?.stop();
        await this.#recurring.stop();
        const interrupted = (await this.#parts?.stop()) ?? 0;
        this.#untrace?.();
        this.#untrace = null;
        if (this.#launcherId !== null) {
          const released = await this.#store
            .requestsReleaseByLauncher({ launcherId: this.#launcherId, text: 'released by launcher shutdown' })
            .catch((error: Error) => {
              this.#report(error, 'releasing rows at shutdown');
              return [] as string[];
            });
          if (released.length > 0) config.logger.warn('released rows at shutdown', { ids: released.join(',') });
          await launcherRemove(this.#database.db, config.table, this.#launcherId).catch(() => undefined);
        }
        await this.#database.close();
        config.logger.info('launcher stopped', { interrupted });
        this.events.emit('runner:stopped', { launcherId: this.#launcherId ?? '', interrupted });
      },
      () => this.#database.close(),
    );
  }
}

/**
 * Creates a runner: the launcher embedded in your process.
 *
 * @example
 * const runner = createRunner({ db: process.env.DATABASE_URL!, tasksDir: './dist/tasks' });
 * await runner.start();
 * await runner.schedule('NoOp', { created_from: 'example' });
 * // ... at shutdown:
 * await runner.stop();
 */
export function createRunner(options: CreateRunnerOptions): Runner {
  return new TaskRunner(options);
}
