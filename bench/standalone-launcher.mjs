// One standalone launcher, started exactly as a user starts it: `node <the flags of npm start>
// dist/launcher.js --config <file>`, with the bench's runner options written into that file. The
// bench reads it from outside only: completions and failures from its per-task log lines (stderr,
// into a file; the INFO line `task NoOp FINISHED ...` every task logs by default), task starts from the
// DEBUG line `task NoOp started ...` (pickup runs only), CPU time and RSS from /proc, and stops it
// with SIGTERM as an operator does.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { modeOptions } from './plan.mjs';
import { withTimeout } from './stats.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const launcherFile = path.join(here, '..', 'dist', 'launcher.js');

/**
 * The next message of `type` a launcher's listeners see, within `timeoutMs`; rejects once the
 * launcher has exited (`exited` resolves with its code and signal) without one.
 */
export function nextMessage(launcher, exited, type, timeoutMs) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const listener = (message) => {
        if (message.type !== type) return;
        launcher.listeners.delete(listener);
        resolve(message);
      };
      launcher.listeners.add(listener);
      void exited.then(({ code, signal }) =>
        reject(new Error(`bench: a launcher exited (code ${code}, signal ${signal}) before '${type}'`)),
      );
    }),
    timeoutMs,
    `a launcher's '${type}'`,
  );
}

/** The Node flags `npm start` and the bin give the launcher (package.json, the bin's shebang). */
export function startFlags() {
  const script = JSON.parse(readFileSync(path.join(here, '..', 'package.json'), 'utf8')).scripts.start;
  const match = script.match(/\bnode((?: --[^\s]+)*) dist\/launcher\.js/);
  if (match === null) throw new Error(`bench: npm start's script runs no node … dist/launcher.js: ${script}`);
  return match[1].split(' ').filter(Boolean);
}

/** A value as YAML flow text: JSON, except that Infinity is YAML's `.inf`. */
function yaml(value) {
  if (value === Infinity) return '.inf';
  if (Array.isArray(value)) return `[${value.map(yaml).join(', ')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.entries(value)
      .map(([k, v]) => `${k}: ${yaml(v)}`)
      .join(', ')}}`;
  return JSON.stringify(value);
}

/** The config file a user would write for these options, one top-level key a line. */
export function configText(options) {
  return Object.entries(options)
    .map(([key, value]) => `${key}: ${yaml(value)}\n`)
    .join('');
}

// /proc/<pid>/stat counts CPU time in clock ticks; Linux reports 100 per second to user space.
const usPerTick = 10_000;

function cpuUs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of the line (utime, stime), counted from the state field (3).
  return { user: Number(fields[11]) * usPerTick, system: Number(fields[12]) * usPerTick };
}

function statusBytes(pid, field) {
  const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return match === null ? null : Number(match[1]) * 1024;
}

/** The epoch milliseconds of a pretty log line's leading ISO time. */
function lineTimeMs(line) {
  return Date.parse(line.slice(0, line.indexOf(' ')));
}

/**
 * Starts one standalone launcher on `db` and returns a handle: `completed` (per-task lines seen),
 * `failures`, `errors`, `listeners` (called with `{ type }` messages: ready, progress, started),
 * `next(type)`, `measure(expected)`, `stop()` (resolves with the measured window) and `exited`.
 */
export async function startStandaloneLauncher(db, { table, tasksDir, mode, concurrency, reportStarts, nodeFlags }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cw-bench-launcher-'));
  const profiling = (process.env.BENCH_LAUNCHER_ARGV ?? '').split(' ').filter(Boolean);
  const options = {
    databaseUrl: db.url,
    tableName: table,
    tasksDir,
    tmpDir: dir,
    // Pickup runs read each task's start from its DEBUG line.
    logLevel: reportStarts ? 'debug' : 'info',
    concurrency,
    ...modeOptions(mode, concurrency),
    // Profiling flags are the launcher's, not its children's (which would otherwise inherit them).
    ...(profiling.length > 0 ? { childExecArgv: [] } : {}),
    // BENCH_OPS=1: metrics and the dashboard served too, as an operator runs it (no scrapes).
    ...(process.env.BENCH_OPS === '1' ? { metrics: { port: 0 }, dashboard: { port: 0 } } : {}),
    // BENCH_RUNNER_OPTIONS: a setting to try (see the bench's usage).
    ...JSON.parse(process.env.BENCH_RUNNER_OPTIONS ?? '{}'),
  };
  const configFile = path.join(dir, 'cw-task-runner.yml');
  await writeFile(configFile, configText(options));
  const flags = nodeFlags ?? startFlags();
  // stderr goes to a file, as under a service manager or `2> launcher.log`: a pipe the bench reads
  // late (it is busy inserting rows) would block the launcher's synchronous writes to stderr.
  const logFile = path.join(dir, 'launcher.log');
  const logFd = openSync(logFile, 'w');
  const child = spawn(process.execPath, [...flags, ...profiling, launcherFile, '--config', configFile], {
    cwd: dir,
    env: process.env,
    stdio: ['ignore', 'ignore', logFd],
  });
  closeSync(logFd);
  const launcher = { child, pid: child.pid, completed: 0, failures: [], errors: [], listeners: new Set() };
  const emit = (message) => {
    for (const listener of launcher.listeners) listener(message);
  };
  const exit = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  let window = null;
  let lastFinished = null;
  let rest = '';
  const onLine = (line) => {
    if (line.includes(' FINISHED ')) {
      launcher.completed++;
      lastFinished = line;
      if (window !== null) {
        // Resident size at each quarter of the expected tasks: a leak shows as a rising series.
        const quarter = Math.floor(((launcher.completed - window.completedBefore) * 4) / window.expected);
        if (quarter > window.rssQuarters.length && window.rssQuarters.length < 4)
          window.rssQuarters.push(statusBytes(child.pid, 'VmRSS'));
      }
    } else if (line.includes(' DEBUG task ') && line.includes(' started ')) {
      const id = line.match(/ id="?(\d+)/)?.[1];
      if (reportStarts && id !== undefined) emit({ type: 'started', id, startedAtMs: lineTimeMs(line) });
    } else if (line.includes(' ERROR ') || line.includes(' WARN ')) {
      if (/ ERROR {1,2}task /.test(line)) {
        launcher.completed++;
        launcher.failures.push({ result: 'FAILED', text: line });
      } else if (line.includes(' ERROR ')) launcher.errors.push({ during: 'log', message: line });
    } else if (line.includes(' standalone launcher ready ')) emit({ type: 'ready', pid: child.pid });
  };
  const log = await open(logFile, 'r');
  const buffer = Buffer.alloc(1 << 20);
  const decoder = new StringDecoder('utf8');
  let reading = null;
  // Reads what the launcher wrote since the last read: every 20 ms, and once more after it exits.
  const readNew = () =>
    (reading ??= (async () => {
      const before = launcher.completed;
      for (;;) {
        const { bytesRead } = await log.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const lines = (rest + decoder.write(buffer.subarray(0, bytesRead))).split('\n');
        rest = lines.pop();
        for (const line of lines) onLine(line);
      }
      if (launcher.completed !== before) emit({ type: 'progress', completed: launcher.completed });
    })().finally(() => (reading = null)));
  const poll = setInterval(() => void readNew(), 20);
  launcher.exited = exit.then(async (status) => {
    clearInterval(poll);
    await reading;
    await readNew();
    await log.close();
    await rm(dir, { recursive: true, force: true });
    return status;
  });

  launcher.next = (type, timeoutMs) => nextMessage(launcher, launcher.exited, type, timeoutMs);

  launcher.measure = (expected) => {
    window = { completedBefore: launcher.completed, expected, cpu: cpuUs(child.pid), rssQuarters: [] };
  };

  launcher.stop = async () => {
    const cpu = cpuUs(child.pid);
    const maxRssBytes = statusBytes(child.pid, 'VmHWM');
    const counted =
      window === null
        ? null
        : {
            completed: launcher.completed - window.completedBefore,
            cpuUserUs: cpu.user - window.cpu.user,
            cpuSystemUs: cpu.system - window.cpu.system,
            statements: null,
            lastCompletedAtMs: lastFinished === null ? null : lineTimeMs(lastFinished),
            rssQuarters: window.rssQuarters,
          };
    child.kill('SIGTERM');
    const { code, signal } = await withTimeout(launcher.exited, 60_000, 'a launcher stopping on SIGTERM');
    if (code !== 0) throw new Error(`bench: a launcher exited with code ${code} (signal ${signal}) on SIGTERM`);
    return { window: counted, maxRssBytes };
  };
  return launcher;
}
