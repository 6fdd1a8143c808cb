import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type GaugeConfiguration } from 'prom-client';
import type { RunnerEvents } from '../launcher/events.js';
import type { Runner } from '../launcher/runner.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { OpenActivity } from '../store/activity.js';
import { Inspector } from '../store/inspector.js';

export interface CreateMetricsOptions {
  /** The runner whose table is read and whose events are counted. */
  runner: Runner;
  /** Register into this prom-client registry (an application's own). Default: a new one. */
  registry?: Registry;
  /** Prefix of every metric name. Default `cw_task_runner_`. */
  prefix?: string;
  /**
   * Also register prom-client's default process metrics (`process_cpu_user_seconds_total`,
   * `process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`, ...; standard names, no
   * prefix). Default true; skipped when the registry already has them.
   */
  defaultMetrics?: boolean;
}

/** A runner's metrics in a prom-client registry. */
export interface TaskRunnerMetrics {
  readonly registry: Registry;
  /** Stops counting events (the metrics stay registered). */
  close(): void;
}

/** What one scrape read of the table (empty figures where this launcher is not the exporter). */
interface TableSnapshot {
  exporter: boolean;
  open: OpenActivity;
  ended: Record<string, number>;
}

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const statementBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const durationBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600];

/**
 * A gauge of the whole table: it has samples only on the launcher that exports the table now.
 * Every launcher on the table is scraped, and a Prometheus user sums over them (`sum by (state)
 * (cw_task_runner_requests)`), as over any other metric of a job: figures each launcher exported
 * would be counted once per launcher. A family with no samples keeps its HELP and TYPE.
 */
class TableGauge extends Gauge<string> {
  readonly #exporting: () => boolean;

  constructor(config: GaugeConfiguration<string>, exporting: () => boolean) {
    super(config);
    this.#exporting = exporting;
  }

  override async get(): ReturnType<Gauge<string>['get']> {
    const metric = await super.get();
    return this.#exporting() ? metric : { ...metric, values: [] };
  }
}

/**
 * Prometheus metrics of a runner. Two kinds, so that nothing is added to the launch path:
 *
 * - Gauges of the table (requests by state and queue, ended requests by result, the oldest
 *   wait) are read at scrape time, by the few statements of `activity.ts` that walk only open
 *   rows or an index; one scrape runs them once (shared by the gauges). They are exported by
 *   one launcher of the table at a time, so that a sum over launchers counts each request once:
 *   of the launchers alive, the one with the smallest id (`table_exporter` says which is; when
 *   it stops another takes over at its next scrape, and when it dies without a word, once its
 *   heartbeat is older than its lease).
 * - Counters and histograms of tries (started, ended by result, pickup latency, run duration)
 *   are fed from the runner's events, which it emits anyway; a try costs a few map operations.
 *   They count what this launcher did since it started, as Prometheus counters do.
 *
 * @example
 * const metrics = createMetrics({ runner, registry: myRegistry });
 * // expose myRegistry.metrics() on your own endpoint
 */
export function createMetrics(options: CreateMetricsOptions): TaskRunnerMetrics {
  const { runner } = options;
  const registry = options.registry ?? new Registry();
  const p = options.prefix ?? 'cw_task_runner_';
  const inspector = new Inspector({ db: runner.db, table: runner.config.table });
  const registers = [registry];
  if ((options.defaultMetrics ?? true) && registry.getSingleMetric('process_cpu_user_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry });
  }

  // One read of the table per scrape, however many gauges ask; only the exporter reads more
  // than who the exporter is.
  const ownId = (): string | null => {
    try {
      return runner.launcherId;
    } catch {
      return null; // not started: no launcher row, so never the exporter
    }
  };
  let exporting = false;
  let snapshot: { at: number; data: Promise<TableSnapshot> } | null = null;
  const read = () => {
    if (snapshot === null || Date.now() - snapshot.at > 1_000) {
      const data = (async (): Promise<TableSnapshot> => {
        const id = ownId();
        const exporter = id !== null && (await inspector.tableExporter(runner.config.leaseMs)) === id;
        exporting = exporter;
        if (!exporter) return { exporter, open: { depth: [], oldestWaitingMs: null }, ended: {} };
        const [open, ended] = await Promise.all([inspector.open(), inspector.endedByResult()]);
        return { exporter, open, ended };
      })();
      snapshot = { at: Date.now(), data };
      data.catch(() => (snapshot = null));
    }
    return snapshot.data;
  };
  const isExporting = () => exporting;

  new Gauge({
    name: `${p}table_exporter`,
    registers,
    help: 'Whether this launcher exports the table gauges now (1) or another launcher does (0): of the launchers alive, the smallest id',
    async collect() {
      this.set((await read()).exporter ? 1 : 0);
    },
  });
  new TableGauge(
    {
      name: `${p}requests`,
      help: 'Open requests by state (waiting: runnable now; delayed; running: started; held: claimed by a launcher, not started) and queue',
      labelNames: ['state', 'queue'],
      registers,
      async collect() {
        const { open } = await read();
        this.reset();
        for (const d of open.depth) {
          this.inc({ state: 'waiting', queue: d.queue }, d.waiting);
          this.inc({ state: 'delayed', queue: d.queue }, d.delayed);
          this.inc({ state: 'running', queue: d.queue }, d.running);
          this.inc({ state: 'held', queue: d.queue }, d.held);
        }
      },
    },
    isExporting,
  );
  new TableGauge(
    {
      name: `${p}requests_ended`,
      help: 'Ended requests by result',
      labelNames: ['result'],
      registers,
      async collect() {
        const { ended } = await read();
        this.reset();
        for (const [result, n] of Object.entries(ended)) this.set({ result }, n);
      },
    },
    isExporting,
  );
  new TableGauge(
    {
      name: `${p}oldest_waiting_seconds`,
      help: 'How long the longest-waiting runnable request has waited (0 when none waits)',
      registers,
      async collect() {
        const { open } = await read();
        this.set((open.oldestWaitingMs ?? 0) / 1000);
      },
    },
    isExporting,
  );
  const stat = (name: string, help: string, pick: (s: Runner['stats']) => number) =>
    new Gauge({
      name: `${p}${name}`,
      help,
      registers,
      collect() {
        this.set(pick(runner.stats));
      },
    });
  stat('tries_running', 'Tries this launcher runs now', (s) => s.running);
  stat('tries_held', 'Rows this launcher claimed ahead and holds, not started', (s) => s.held);
  stat(
    'outcomes_unwritten',
    'Outcomes of ended tries waiting to be written (at 50 per slot no new try starts)',
    (s) => s.unwritten,
  );
  stat('children', 'Child processes of this launcher alive (running, spare or idle)', (s) => s.children);
  stat('threads_busy', 'Worker threads of this launcher busy with a try', (s) => s.threadsBusy);
  new Counter({
    name: `${p}child_recycles_total`,
    registers,
    labelNames: ['reason'],
    help: 'Children ended after a try instead of being reused: tasks (maxTasksPerChild reached; every try with the default 1), memory (over childMaxRssMb), ended (the try crashed, timed out or was killed)',
    collect() {
      // Read from the pool's own tally at scrape time: the pool knows nothing of metrics.
      this.reset();
      for (const [reason, n] of Object.entries(runner.stats.childRecycles)) this.inc({ reason }, n);
    },
  });

  const started = new Counter({
    name: `${p}tries_started_total`,
    help: 'Tries started',
    labelNames: ['task', 'mode'],
    registers,
  });
  const ended = new Counter({
    name: `${p}tries_ended_total`,
    help: 'Tries ended, by their own result',
    labelNames: ['task', 'result'],
    registers,
  });
  const errors = new Counter({
    name: `${p}errors_total`,
    help: 'Failures inside the launcher (database writes, probes), by what it was doing',
    labelNames: ['during'],
    registers,
  });
  const pickup = new Histogram({
    name: `${p}pickup_latency_seconds`,
    help: 'From a request becoming runnable to its try starting',
    labelNames: ['task', 'mode'],
    buckets: latencyBuckets,
    registers,
  });
  const duration = new Histogram({
    name: `${p}run_duration_seconds`,
    help: 'Duration of tries, start to end',
    labelNames: ['task', 'mode'],
    buckets: durationBuckets,
    registers,
  });

  const statement = new Histogram({
    name: `${p}launch_statement_seconds`,
    labelNames: ['claim'],
    buckets: statementBuckets,
    registers,
    help: 'Round trip of the launcher\'s statement (outcomes, starts and a claim in one); claim="true": the claim statement latency',
  });
  const writeFailures = new Counter({
    name: `${p}batch_write_failures_total`,
    labelNames: ['reason'],
    registers,
    help: 'Launch statements carrying outcomes or starts that failed: connection (all kept and retried) or refused (split and written one by one)',
  });

  // Start time and mode of each running try, to measure it when it ends.
  const running = new Map<string, { startedAtMs: number; mode: string }>();
  const events: TypedEmitter<RunnerEvents> = runner.events;
  const onStarted = (e: RunnerEvents['task:started']) => {
    started.inc({ task: e.taskClassName, mode: e.mode });
    pickup.observe({ task: e.taskClassName, mode: e.mode }, Math.max(0, e.startedAtMs - e.runnableAtMs) / 1000);
    running.set(e.id, { startedAtMs: e.startedAtMs, mode: e.mode });
  };
  const onCompleted = (e: RunnerEvents['task:completed']) => {
    ended.inc({ task: e.taskClassName, result: e.result });
    const start = running.get(e.id);
    if (start === undefined) return;
    running.delete(e.id);
    duration.observe({ task: e.taskClassName, mode: start.mode }, Math.max(0, Date.now() - start.startedAtMs) / 1000);
  };
  const onError = (e: RunnerEvents['error']) => errors.inc({ during: e.during });
  const onStatement = (e: RunnerEvents['launch:statement']) => {
    statement.observe({ claim: e.claim ? 'true' : 'false' }, e.durationMs / 1000);
    if (e.failure !== null && e.outcomes + e.starts > 0) writeFailures.inc({ reason: e.failure });
  };
  events.on('launch:statement', onStatement);
  events.on('task:started', onStarted);
  events.on('task:completed', onCompleted);
  events.on('error', onError);
  return {
    registry,
    close() {
      events.off('task:started', onStarted);
      events.off('task:completed', onCompleted);
      events.off('error', onError);
      events.off('launch:statement', onStatement);
      running.clear();
    },
  };
}
