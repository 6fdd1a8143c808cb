// The in-process harness: a runner built with createRunner in a process of its own, driven by the
// bench over Node's IPC channel (the bench's own, not the runner's). The bench's figures come from
// the standalone launcher (standalone-launcher.mjs); this harness serves BENCH_TRACE, which needs
// the runner's events, and BENCH_HARNESS=1, which compares the two. Messages in: measure, stop. Messages out: ready,
// progress (completed count, at most every 50 ms), started (pickup runs only), stats.
//
//   node bench/launcher-process.mjs '<json: url, table, mode, concurrency, tasksDir, report>'
import pg from 'pg';
import { createMetrics, createRunner, serveMetrics, startDashboard } from '../dist/index.js';
import { modeOptions } from './plan.mjs';
import { startTrace } from './trace.mjs';
import { epochMs } from './stats.mjs';

const params = JSON.parse(process.argv[2] ?? 'null');
if (params === null || typeof params.url !== 'string')
  throw new Error('launcher-process: pass its JSON parameters as the first argument');

/** Counts the statements this launcher sends: every query of every pooled connection. */
let statements = 0;
class CountingClient extends pg.Client {
  query(...args) {
    statements++;
    return super.query(...args);
  }
}
// The pool size the runner opens for a connection string (LISTEN has a client of its own, not counted).
const pool = new pg.Pool({
  connectionString: params.url,
  max: Math.max(4, Math.min(params.concurrency + 2, 20)),
  Client: CountingClient,
});
pool.on('error', () => undefined);

const runner = createRunner({
  db: pool,
  tableName: params.table,
  tasksDir: params.tasksDir,
  concurrency: params.concurrency,
  childExecArgv: [],
  autoMigrate: false,
  ...modeOptions(params.mode, params.concurrency),
  // BENCH_RUNNER_OPTIONS: a setting to try (see the bench's usage).
  ...JSON.parse(process.env.BENCH_RUNNER_OPTIONS ?? '{}'),
});

// BENCH_OPS=1: the launcher also serves Prometheus metrics and the dashboard, as an operator
// would run it, so a run shows what they cost on the launch path (no scrapes during the run).
const ops =
  process.env.BENCH_OPS === '1'
    ? await (async () => {
        const metrics = createMetrics({ runner });
        return {
          metrics,
          server: await serveMetrics({ registry: metrics.registry, port: 0 }),
          dashboard: await startDashboard({ db: runner.db, tableName: params.table }),
        };
      })()
    : null;

// BENCH_TRACE=prefix: this launcher's statement timeline and slot samples (see trace.mjs).
const trace = process.env.BENCH_TRACE
  ? startTrace(runner, params.concurrency, `${process.env.BENCH_TRACE}.${process.pid}.txt`)
  : null;

let completed = 0;
let window = null;
let reported = -1;
let rssQuarters = [];

runner.events.on('task:started', (event) => {
  if (params.reportStarts) process.send({ type: 'started', id: event.id, startedAtMs: event.startedAtMs });
});
let stopping = false;
runner.events.on('task:completed', (event) => {
  // Tries cut short by the stop (held rows released, a capped run's running tries) are not the load's.
  if (stopping) return;
  completed++;
  if (event.result !== 'FINISHED')
    process.send({ type: 'failed', id: event.id, result: event.result, text: event.resultText });
  if (window !== null) {
    window.lastCompletedAtMs = epochMs();
    // Resident size at each quarter of the expected tasks: a leak shows as a rising series.
    const quarter = Math.floor(((completed - window.completedBefore) * 4) / window.expected);
    if (quarter > rssQuarters.length && rssQuarters.length < 4) rssQuarters.push(process.memoryUsage.rss());
  }
});
runner.events.on('error', (event) =>
  process.send({ type: 'error', during: event.during, message: event.error.message }),
);

const progress = setInterval(() => {
  if (completed !== reported) {
    reported = completed;
    process.send({ type: 'progress', completed });
  }
}, 50);

process.on('message', async (message) => {
  if (message.type === 'measure') {
    window = {
      completedBefore: completed,
      expected: message.expected,
      cpu: process.cpuUsage(),
      statements,
      lastCompletedAtMs: null,
    };
    rssQuarters = [];
    process.send({ type: 'measuring' });
  } else if (message.type === 'stop') {
    stopping = true;
    const cpu = window === null ? null : process.cpuUsage(window.cpu);
    const counted =
      window === null
        ? null
        : {
            completed: completed - window.completedBefore,
            cpuUserUs: cpu.user,
            cpuSystemUs: cpu.system,
            statements: statements - window.statements,
            lastCompletedAtMs: window.lastCompletedAtMs,
            rssQuarters,
          };
    clearInterval(progress);
    trace?.write();
    if (ops !== null) {
      ops.metrics.close();
      await Promise.all([ops.server.close(), ops.dashboard.close()]);
    }
    await runner.stop();
    await pool.end();
    process.send(
      { type: 'stats', window: counted, completed, maxRssBytes: process.resourceUsage().maxRSS * 1024 },
      () => process.disconnect(),
    );
  }
});

await runner.start();
process.send({ type: 'ready', pid: process.pid });
