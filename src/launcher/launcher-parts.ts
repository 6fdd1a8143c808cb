import { cancelChannelFor, channelFor } from '../config/identifiers.js';
import { isUnconfined } from '../config/confinement.js';
import type { RunnerConfig } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';
import { runtimePaths, spawnPlan, unreadableBy } from '../pool/confined-spawn.js';
import { ForkPool } from '../pool/fork-pool.js';
import { ThreadPool } from '../pool/thread-pool.js';
import { TryGroups } from '../pool/try-cgroup.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { OpenDatabase } from '../store/database.js';
import { attemptsNoteFenced } from '../store/fenced-attempts.js';
import { rescheduleNoticeFor } from '../store/schema-ddl.js';
import type { RequestStore } from '../store/request-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { TaskTraitsReader } from '../tasks/task-traits.js';
import { ClaimPolicy } from './claim-policy.js';
import { Dispatcher } from './dispatcher.js';
import type { RunnerEvents } from './events.js';
import { LaunchLoop } from './launch-loop.js';
import { NotifyListener } from './notify-listener.js';

export interface LauncherPartsParams {
  config: RunnerConfig;
  database: OpenDatabase;
  store: RequestStore;
  registry: TaskRegistry;
  events: TypedEmitter<RunnerEvents>;
  launcherId: string;
  launcherIdentity: string | null;
  /** Something failed inside the launcher; it goes on. */
  report(error: Error, during: string): void;
  /** The notify trigger says the pid of a row this launcher holds was cleared by hand. */
  onRescheduleNotice(): void;
}

/**
 * The moving parts of a started launcher, wired together. The path of a request:
 *
 *   NotifyListener / poll / delay timer ─wake→ ClaimPolicy ─order→ LaunchLoop (one statement:
 *   outcomes + starts + claim) ─rows→ Dispatcher (local queue, slots) ─try→ ForkPool | ThreadPool
 *   ─report→ Dispatcher ─outcome→ LaunchLoop ─written→ Dispatcher ─events→ the runner's emitter.
 *
 * Built at `start()`, torn down at `stop()` in the order `stop` below gives.
 */
export class LauncherParts {
  readonly dispatcher: Dispatcher;
  readonly loop: LaunchLoop;
  readonly policy: ClaimPolicy;
  readonly processPool: ForkPool;
  readonly traits: TaskTraitsReader;
  /** A control group per try, where the system allows it; closed last at stop. */
  readonly tryGroups: TryGroups;
  readonly #p: LauncherPartsParams;
  #listener: NotifyListener | null = null;
  /** History notes of fenced tries being written; `stop` waits for them (the pool closes after). */
  readonly #noting = new Set<Promise<void>>();

  constructor(params: LauncherPartsParams) {
    this.#p = params;
    const { config, store, events, launcherId, launcherIdentity, report } = params;
    const confined = !isUnconfined(config.childConfinement);
    const readable = [...runtimePaths(), config.tasksDir];
    this.tryGroups = TryGroups.open({ logger: config.logger });
    this.processPool = new ForkPool({
      tryGroups: this.tryGroups,
      concurrency: config.concurrency,
      spareChildren: config.spareChildren,
      maxTasksPerChild: config.maxTasksPerChild,
      maxRssBytes: config.childMaxRssMb === null ? null : config.childMaxRssMb * 1024 * 1024,
      idleMs: config.childIdleMs,
      env: config.childEnv,
      execArgv: config.childExecArgv,
      killTimeoutMs: config.killTimeoutMs,
      maxResultBytes: config.maxResultBytes,
      logger: config.logger,
      // Unconfined children are started plainly: no wrapper, no flags.
      confinement: confined ? config.childConfinement : null,
      readable,
    });
    this.traits = new TaskTraitsReader({
      env: config.childEnv,
      // Loading a task file runs its top-level code: where children are confined, so is that.
      inspectorCommand: confined
        ? (entry, args) => {
            const plan = spawnPlan(entry, config.childExecArgv, config.childConfinement, readable);
            return { ...plan, args: [...plan.args, ...args] };
          }
        : null,
      // A TypeScript loader among them lets a child read a `.ts` file no thread can load.
      execArgv: config.childExecArgv,
      onWarning: (warning) => config.logger.warn(`task traits: ${warning}`),
    });
    const dispatcher = new Dispatcher({
      processPool: this.processPool,
      threadPool: () =>
        new ThreadPool({
          maxThreads: config.threads.maxThreads,
          idleTimeoutMs: config.threads.idleTimeoutMs,
          resourceLimits: {
            maxOldGenerationSizeMb: config.threads.maxOldGenerationSizeMb,
            maxYoungGenerationSizeMb: config.threads.maxYoungGenerationSizeMb,
            stackSizeMb: config.threads.stackSizeMb,
          },
          env: config.childEnv,
          launcherPid: process.pid,
          launcherIdentity,
          logger: config.logger,
          tryGroups: this.tryGroups,
        }),
      traits: this.traits,
      registry: params.registry,
      config,
      events,
      onTryEnded: (durationMs) => this.policy.tryEnded(durationMs),
      onFencedElsewhere: (notes) => {
        const noting = attemptsNoteFenced(params.database.db, config.table, { launcherId, notes })
          .then(
            () => undefined,
            (error: Error) => report(error, 'noting fenced tries in their history'),
          )
          .finally(() => this.#noting.delete(noting));
        this.#noting.add(noting);
      },
    });
    this.policy = new ClaimPolicy({
      concurrency: config.concurrency,
      prefetch: config.prefetch,
      prefetchHorizonMs: config.prefetchHorizonMs,
      pollIntervalMs: config.pollIntervalMs,
      nextDelayMs: () => store.requestsNextDelayMs({ queues: config.queues }),
      onWake: () => this.loop.kick(),
      onIdle: () => events.emit('runner:idle', { running: dispatcher.running }),
      onError: (error) => report(error, 'looking for delayed rows'),
    });
    this.loop = new LaunchLoop({
      store,
      launcherId,
      claimOrder: () => {
        const order = this.policy.order({
          running: dispatcher.running,
          queued: dispatcher.queued,
          blocked: dispatcher.blocked,
        });
        return order === null
          ? null
          : {
              ...order,
              host: config.host,
              launcherPid: process.pid,
              launcherIdentity,
              queues: config.queues,
              leaseMs: config.leaseMs,
              maxOptionsBytes: config.maxOptionsBytes,
            };
      },
      onClaimed: (rows, asked) => {
        dispatcher.accept(rows);
        this.policy.claimed(asked, rows.length);
      },
      onClaimFailed: () => this.policy.failed(),
      onOutcomes: (applied, stale) => dispatcher.recorded(applied, stale),
      onStarts: (ids) => dispatcher.startsRecorded(ids),
      onGaveUp: (outcome, error) => dispatcher.gaveUp(outcome, error),
      onError: report,
      onStatement: (timing) => events.emit('launch:statement', timing),
      batchDelayMs: config.completionBatchMs,
      startDelayMs: config.startBatchMs,
      logger: config.logger,
    });
    dispatcher.records = this.loop;
    this.dispatcher = dispatcher;
  }

  /** Listens, warms the pool and starts claiming (after the start-up probe). */
  async start(): Promise<void> {
    const { config, database } = this.#p;
    // What holds for a try's processes here, said once.
    if (this.tryGroups.kind === null && process.platform === 'linux')
      config.logger.warn(`control groups: ${this.tryGroups.summary}`);
    else config.logger.info(`control groups: ${this.tryGroups.summary}`);
    const listenSource = config.listenDb ?? database.connectionString ?? database.pool;
    if (listenSource !== null) {
      const notice = rescheduleNoticeFor(this.#p.launcherId);
      this.#listener = new NotifyListener({
        source: listenSource,
        channels: {
          [channelFor(config.table)]: (payload) => {
            if (payload === notice) this.#p.onRescheduleNotice();
            else this.policy.wake();
          },
          [cancelChannelFor(config.table)]: (id) => void this.dispatcher.cancel(id),
        },
        onConnected: () => this.policy.wake(),
        logger: config.logger,
      });
      await this.#listener.start();
    } else {
      config.logger.warn('no LISTEN connection (db is a Kysely instance; set listenDb): polling only', {
        pollIntervalMs: config.pollIntervalMs,
      });
    }
    this.processPool.warm();
    this.policy.start();
  }

  /**
   * Graceful stop: no more claims; held rows given back at once; running tries get
   * `shutdownGraceMs`, then are terminated; every outcome flushed. Returns how many tries were
   * interrupted.
   */
  async stop(): Promise<number> {
    const { config } = this.#p;
    await this.policy.stop();
    this.loop.stopClaiming();
    await this.#listener?.stop();
    this.dispatcher.releaseQueued();
    let interrupted = 0;
    if (!(await this.dispatcher.drain(config.shutdownGraceMs))) {
      interrupted = this.dispatcher.running;
      config.logger.warn('grace period over: terminating running tasks', { running: interrupted });
      await this.dispatcher.interrupt();
    }
    await this.dispatcher.close();
    if (!(await this.loop.flush(Math.max(5_000, config.shutdownGraceMs)))) {
      config.logger.error(
        'outcomes could not be written before stopping: their rows keep their pid until a probe recovers them',
        {
          unwritten: this.loop.unwritten,
        },
      );
    }
    this.loop.close();
    await Promise.all([...this.#noting]);
    await this.traits.close();
    await this.tryGroups.close();
    return interrupted;
  }
}

/**
 * Before any child starts: the child user can read what the runtime loads (else every try would
 * fail with a bare EACCES), and what thread mode leaves unconfined is said once.
 */
export async function checkConfinement(config: RunnerConfig): Promise<void> {
  const { identity } = config.childConfinement;
  if (identity !== null) {
    const bad = await unreadableBy(identity, [...runtimePaths(), config.tasksDir]);
    if (bad.length > 0) {
      throw new TaskRunnerError(
        'CONFIG_INVALID',
        `childUser ${identity.user} (uid ${identity.uid}, gid ${identity.gid}) cannot read what its children load: ${bad.join('; ')}. ` +
          'The package directory (dist, package.json, node_modules/yaml) and the tasks directory, with every directory above them, ' +
          'must be readable and enterable by that user (for example chmod o+rX, or a group it is in).',
      );
    }
  }
  const threaded =
    config.defaultMode === 'thread' ||
    Object.values(config.taskOverrides).some((override) => override.mode === 'thread');
  if (threaded && !isUnconfined(config.childConfinement)) {
    config.logger.warn(
      'thread-mode tasks run inside the launcher: childUser, childLimits and childPermissions do not apply to them',
    );
  }
}
