// Drives standalone launchers (standalone-launcher.mjs) through one load: boot, warm up, measure a
// bulk of no-op tasks or a paced trickle, stop, collect. Every throughput, pickup, memory and
// multi-launcher figure comes from here.
import { fork } from 'node:child_process';
import pg from 'pg';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '../dist/index.js';
import { benchTable, committedTransactions, resetTable } from './database.mjs';
import { tick } from './progress.mjs';
import { epochMs } from './stats.mjs';
import { nextMessage, startFlags, startStandaloneLauncher } from './standalone-launcher.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const tasksDir = path.join(here, '..', 'dist', 'tasks', 'samples');
const noOp = { taskClassName: 'NoOp', options: { created_from: 'bench' } };
const insertChunk = 5_000;

/** The in-process harness (bench/launcher-process.mjs), behind the standalone launcher's interface. */
function startHarness(db, params) {
  const child = fork(
    path.join(here, 'launcher-process.mjs'),
    [JSON.stringify({ url: db.url, table: benchTable, tasksDir, ...params })],
    {
      execArgv: [
        ...(params.nodeFlags ?? startFlags()),
        ...(process.env.BENCH_LAUNCHER_ARGV ?? '').split(' ').filter(Boolean),
      ],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    },
  );
  const launcher = { child, completed: 0, failures: [], errors: [], listeners: new Set() };
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  launcher.exited = exited;
  child.on('message', (message) => {
    if (message.type === 'progress') launcher.completed = message.completed;
    else if (message.type === 'failed') launcher.failures.push(message);
    else if (message.type === 'error') launcher.errors.push(message);
    for (const listener of launcher.listeners) listener(message);
  });
  launcher.next = (type, timeoutMs) => nextMessage(launcher, exited, type, timeoutMs);
  launcher.measure = (expected) => {
    child.send({ type: 'measure', expected });
    return launcher.next('measuring', 10_000);
  };
  launcher.stop = async () => {
    child.send({ type: 'stop' });
    const stats = await launcher.next('stats', 60_000);
    await exited;
    return stats;
  };
  return Promise.resolve(launcher);
}

/**
 * The standalone launcher, as users start it; BENCH_TRACE (which needs the runner's events in
 * process) and BENCH_HARNESS=1 (to compare the two) run the in-process harness instead.
 */
function startLauncher(db, params) {
  if (process.env.BENCH_HARNESS === '1' || process.env.BENCH_TRACE) return startHarness(db, params);
  return startStandaloneLauncher(db, { table: benchTable, tasksDir, ...params });
}

/** Resolves when the launchers together have completed `count` tasks, or at the deadline. */
function completedTogether(launchers, count, deadlineMs) {
  return new Promise((resolve) => {
    let timer = null;
    const check = () => {
      const sum = launchers.reduce((total, l) => total + l.completed, 0);
      tick(`${sum}/${count}`);
      if (sum < count && Date.now() < deadlineMs) return false;
      for (const l of launchers) l.listeners.delete(check);
      clearTimeout(timer);
      resolve(sum);
      return true;
    };
    if (check()) return;
    timer = setTimeout(check, Math.max(0, deadlineMs - Date.now()));
    for (const l of launchers) l.listeners.add(check);
  });
}

async function insertAll(scheduler, count) {
  let firstCommitMs = null;
  for (let done = 0; done < count; done += insertChunk) {
    const n = Math.min(insertChunk, count - done);
    await scheduler.scheduleMany(Array.from({ length: n }, () => noOp));
    firstCommitMs ??= epochMs();
  }
  return firstCommitMs;
}

async function pacedInsert(scheduler, jobs, gapMs) {
  const commits = new Map();
  for (let i = 0; i < jobs; i++) {
    const due = performance.now() + gapMs;
    const id = await scheduler.schedule(noOp.taskClassName, noOp.options);
    commits.set(id, epochMs());
    tick(`${i + 1}/${jobs}`);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())));
  }
  return commits;
}

/**
 * One load on `launchers` standalone launchers, each with `mode` and `concurrency` (and `nodeFlags`
 * instead of `npm start`'s when given).
 *
 * - bulk (`tasks`): all rows inserted at once; throughput from the first insert's commit to the
 *   last completion, capped at `maxSeconds` (the figure is then what completed by the cap).
 * - paced (`pickup: { jobs, gapMs }`): one row at a time on an idle runner; pickup latency is
 *   each task's `startedAtMs` minus the moment its INSERT's commit returned to the enqueuer.
 */
export async function runLoad(
  db,
  admin,
  { mode, concurrency, launchers: count = 1, tasks = 0, maxSeconds = 60, pickup = null, nodeFlags = null },
) {
  await resetTable(db.url);
  const launchers = await Promise.all(
    Array.from({ length: count }, () =>
      startLauncher(db, { mode, concurrency, reportStarts: pickup !== null, nodeFlags }),
    ),
  );
  const scheduler = createClient({ db: db.url, tableName: benchTable });
  try {
    await Promise.all(launchers.map((l) => l.next('ready', 60_000)));
    // Warm-up: every slot has run a task, so children are booted and threads spawned.
    const warmup = Math.max(2 * concurrency * count, 20);
    await insertAll(scheduler, warmup);
    if ((await completedTogether(launchers, warmup, Date.now() + 120_000)) < warmup)
      throw new Error('bench: the warm-up tasks did not finish within 120 s');
    const expected = pickup === null ? tasks : pickup.jobs;
    await Promise.all(launchers.map((l) => l.measure(Math.ceil(expected / count))));
    const before = launchers.reduce((total, l) => total + l.completed, 0);
    const xactBefore = await committedTransactions(admin, db.name, 0);
    const starts = new Map();
    for (const l of launchers)
      l.listeners.add((m) => {
        if (m.type === 'started') starts.set(m.id, m.startedAtMs);
      });
    let firstCommitMs;
    let commits = null;
    if (pickup === null) {
      firstCommitMs = await insertAll(scheduler, tasks);
    } else {
      commits = await pacedInsert(scheduler, pickup.jobs, pickup.gapMs);
    }
    await completedTogether(launchers, before + expected, Date.now() + maxSeconds * 1000);
    await scheduler.close();
    const stats = await Promise.all(launchers.map((l) => l.stop()));
    const xactAfter = await committedTransactions(admin, db.name);
    const windows = stats.map((s) => s.window);
    const completed = windows.reduce((total, w) => total + w.completed, 0);
    const lastMs = Math.max(...windows.map((w) => w.lastCompletedAtMs ?? 0));
    const { rows } = await childPeak(db);
    const failures = launchers.flatMap((l) => l.failures);
    const errors = launchers.flatMap((l) => l.errors);
    const result = {
      mode,
      concurrency,
      launchers: count,
      launcherFlags: (nodeFlags ?? startFlags()).join(' '),
      harness: process.env.BENCH_HARNESS === '1' || Boolean(process.env.BENCH_TRACE),
      tasks: expected,
      completed,
      capped: completed < expected,
      failures: failures.length,
      errors: errors.map((e) => `${e.during}: ${e.message}`).slice(0, 5),
      cpuUsPerTask: windows.reduce((t, w) => t + w.cpuUserUs + w.cpuSystemUs, 0) / Math.max(1, completed),
      statementsPerTask: windows.some((w) => w.statements === null)
        ? null
        : windows.reduce((t, w) => t + w.statements, 0) / Math.max(1, completed),
      transactionsPerTask: (xactAfter - xactBefore) / Math.max(1, completed),
      launcherPeakRssBytes: Math.max(...stats.map((s) => s.maxRssBytes)),
      launcherRssQuartersBytes: windows[0].rssQuarters,
      childPeakRssBytes: rows[0]?.peak ?? null,
    };
    if (failures.length > 0)
      throw new Error(
        `bench: ${failures.length} no-op tasks did not finish (first: ${failures[0].result} ${failures[0].text})`,
      );
    if (pickup === null) {
      result.seconds = (lastMs - firstCommitMs) / 1000;
      result.tasksPerSecond = completed / result.seconds;
    } else {
      result.pickupMs = [...commits].filter(([id]) => starts.has(id)).map(([id, at]) => starts.get(id) - at);
    }
    return result;
  } finally {
    await scheduler.close().catch(() => undefined);
    for (const l of launchers) if (l.child.exitCode === null && l.child.signalCode === null) l.child.kill('SIGKILL');
  }
}

async function childPeak(db) {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    return await client.query(
      `SELECT max(peak_memory_bytes)::float8 AS peak FROM ${benchTable}_attempts WHERE mode <> 'thread'`,
    );
  } finally {
    await client.end();
  }
}
