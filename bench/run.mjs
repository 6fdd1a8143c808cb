// Launch-throughput bench: tasks started and finished per second, end to end through PostgreSQL,
// per concurrency, beside the machine's raw limits (bare fork rate, bare claim rate) and the
// enqueue rate. Writes bench/results/<time>.json. Not a test: nothing here asserts a speed.
//
//   npm run bench                      # embedded PostgreSQL unless DATABASE_URL is set
//   BENCH_TASKS=500 BENCH_FAST_TASKS=5000 BENCH_CONCURRENCY=1,2,4 BENCH_MODES=fresh,thread npm run bench
//
// Modes: fresh (a new child per task), spare (pre-booted children, one task each), reused (one
// child runs many tasks), thread (worker threads). Fresh and spare run BENCH_TASKS tasks, the
// fast modes BENCH_FAST_TASKS.
import { fork } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createRunner, createScheduler, dropTaskRunnerRequestTable, migrate } from '../dist/index.js';
import { openBenchDatabase } from './database.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const freshTasks = Number(process.env.BENCH_TASKS ?? 300);
const fastTasks = Number(process.env.BENCH_FAST_TASKS ?? 3000);
const concurrencies = (process.env.BENCH_CONCURRENCY ?? '1,2,4').split(',').map(Number);
const modeOptions = {
  fresh: { spareChildren: 0, maxTasksPerChild: 1 },
  spare: { spareChildren: 2, maxTasksPerChild: 1 },
  reused: { spareChildren: 0, maxTasksPerChild: Infinity },
  thread: { defaultMode: 'thread' },
};
const modes = (process.env.BENCH_MODES ?? Object.keys(modeOptions).join(',')).split(',');
for (const mode of modes) if (!(mode in modeOptions)) throw new Error(`unknown BENCH_MODES entry ${mode}; known: ${Object.keys(modeOptions).join(', ')}`);
const childEntry = path.join(here, '..', 'dist', 'pool', 'runtime', 'child-entry.js');

/** Mean time from fork to the child runtime's `ready` message. */
async function childBootMs(count, env) {
  let total = 0;
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const child = fork(childEntry, [], { env, execArgv: [], stdio: 'ignore' });
    await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('message', resolve);
    });
    total += performance.now() - started;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.disconnect();
    await exited;
  }
  return total / count;
}
const childEnv = { PATH: process.env.PATH ?? '' };

async function bareForkRate(count, env) {
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => {
      const child = fork('-e', ['0'], { env, execArgv: [], stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', resolve);
    });
  }
  return count / ((performance.now() - started) / 1000);
}

async function bareClaimRate(url, table, count, batch) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`INSERT INTO ${table} (task_class_name) SELECT 'NoOp' FROM generate_series(1, $1)`, [count]);
  const started = performance.now();
  let claimed = 0;
  while (claimed < count) {
    const { rowCount } = await client.query(
      `WITH picked AS MATERIALIZED (SELECT id FROM ${table} WHERE completed_at IS NULL AND pid IS NULL
         ORDER BY priority DESC, id LIMIT $1 FOR UPDATE SKIP LOCKED)
       UPDATE ${table} t SET pid = 1, tries = t.tries + 1 FROM picked WHERE t.id = picked.id`, [batch]);
    if (rowCount === 0) break;
    claimed += rowCount;
  }
  const rate = claimed / ((performance.now() - started) / 1000);
  await client.query(`DELETE FROM ${table}`);
  await client.end();
  return rate;
}

async function launchThroughput(url, table, mode, concurrency) {
  const tasks = mode === 'fresh' || mode === 'spare' ? freshTasks : fastTasks;
  const scheduler = createScheduler({ db: url, tableName: table });
  const runner = createRunner({
    db: url, tableName: table, tasksDir: path.join(here, '..', 'dist', 'tasks', 'samples'), concurrency,
    childEnv, childExecArgv: [], pollIntervalMs: 1000, autoMigrate: false, ...modeOptions[mode],
  });
  const enqueueStarted = performance.now();
  const ids = await scheduler.scheduleMany(Array.from({ length: tasks }, () => ({ taskClassName: 'NoOp', options: { created_from: 'bench' } })));
  const enqueueRate = ids.length / ((performance.now() - enqueueStarted) / 1000);
  const latencies = [];
  const startedAt = new Map();
  runner.events.on('task:started', (e) => startedAt.set(e.id, performance.now()));
  let done = 0;
  const finished = new Promise((resolve) => runner.events.on('task:completed', () => { if (++done === tasks) resolve(); }));
  const t0 = performance.now();
  await runner.start();
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  for (const at of startedAt.values()) latencies.push(at - t0);
  await runner.stop();
  await scheduler.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DELETE FROM ${table}`);
  await client.end();
  return { mode, concurrency, tasks, tasksPerSecond: tasks / seconds, enqueueRowsPerSecond: enqueueRate };
}

const database = await openBenchDatabase();
const table = 'bench_requests';
const admin = createScheduler({ db: database.url, tableName: table });
await dropTaskRunnerRequestTable(admin.db, table);
await migrate(admin.db, { tableName: table });
await admin.close();
const raw = {
  bareForkPerSecondCleanEnv: await bareForkRate(30, childEnv),
  bareForkPerSecondFullEnv: await bareForkRate(30, process.env),
  childBootMsCleanEnv: await childBootMs(20, childEnv),
  childBootMsFullEnv: await childBootMs(20, process.env),
  bareClaimRowsPerSecond1: await bareClaimRate(database.url, table, 2000, 1),
  bareClaimRowsPerSecond50: await bareClaimRate(database.url, table, 20000, 50),
};
const rows = [];
for (const mode of modes) {
  for (const concurrency of concurrencies) rows.push(await launchThroughput(database.url, table, mode, concurrency));
}
const report = {
  at: new Date().toISOString(), node: process.version, cpus: os.cpus().length, server: database.server, raw, rows,
};
await database.close();
const dir = path.join(here, 'results');
await mkdir(dir, { recursive: true });
const file = path.join(dir, `${report.at.replace(/[:.]/g, '-')}.json`);
await writeFile(file, JSON.stringify(report, null, 2));
const fmt = (n) => n.toFixed(0).padStart(8);
console.log(`machine: ${report.cpus} cpus, node ${report.node}, ${report.server} PostgreSQL`);
console.log(`bare fork/s: clean env ${fmt(raw.bareForkPerSecondCleanEnv)}  full env ${fmt(raw.bareForkPerSecondFullEnv)}`);
console.log(`child runtime boot ms: clean env ${fmt(raw.childBootMsCleanEnv)}  full env ${fmt(raw.childBootMsFullEnv)}`);
console.log(`bare claim rows/s: 1 per statement ${fmt(raw.bareClaimRowsPerSecond1)}  50 per statement ${fmt(raw.bareClaimRowsPerSecond50)}`);
console.log('mode   concurrency   tasks   tasks/s   enqueue rows/s');
for (const r of rows) console.log(`${r.mode.padEnd(6)} ${String(r.concurrency).padStart(11)} ${String(r.tasks).padStart(7)} ${fmt(r.tasksPerSecond)}  ${fmt(r.enqueueRowsPerSecond)}`);
console.log(`written: ${path.relative(process.cwd(), file)}`);
