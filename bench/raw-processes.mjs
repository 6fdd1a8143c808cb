// Raw limits of the machine's processes and threads, with none of the runner in the way: what a
// fork costs, what the child runtime's boot adds, and what one message round trip to a child or
// a thread costs. The runner's figures are read as ratios to these.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { childRuntimeEntry } from '../dist/pool/runtime-entry.js';
import { tick } from './progress.mjs';
import { summary } from './stats.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
// The script the fork pool runs (the build's bundle of the child runtime).
const childEntry = childRuntimeEntry();

/** Spawned as the fork pool spawns its children: same env, arguments, stdio and process group. */
function spawnLike(script, { env, execArgv, args = [] }) {
  return spawn(process.execPath, [...execArgv, script, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
}

function exited(child) {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
}

/**
 * Node started and exited, `concurrency` at a time, for `seconds`: processes per second. With
 * `taskFile`, each child loads that file with require() before it exits (raw/load-task.cjs).
 */
export async function bareForkRate({ concurrency, seconds, env, execArgv, taskFile = null }) {
  const script = path.join(here, 'raw', taskFile === null ? 'empty.cjs' : 'load-task.cjs');
  const args = taskFile === null ? [] : [taskFile];
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const child = spawnLike(script, { env, execArgv, args });
        child.stdout.resume();
        child.stderr.resume();
        const code = await exited(child);
        if (code !== 0) throw new Error(`bench: ${path.basename(script)} ${args.join(' ')} exited with code ${code}`);
        count++;
        tick(`${count} forks`);
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/** Fork to `ready` of the real child runtime (init sent on fd 3), one at a time: milliseconds. */
export async function childRuntimeBootMs({ samples, env, execArgv }) {
  const times = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    const child = spawnLike(childEntry, { env, execArgv });
    child.stdout.resume();
    child.stderr.resume();
    const channel = child.stdio[3];
    channel.setEncoding('utf8');
    const key = randomBytes(16).toString('hex');
    const ready = new Promise((resolve, reject) => {
      channel.on('data', (text) => {
        if (text.includes('"ready"')) resolve();
      });
      child.once('exit', () => reject(new Error('bench: the child runtime exited before ready')));
    });
    channel.write(`${JSON.stringify({ type: 'init', key, reuse: false, reportRss: false })}\n`);
    await ready;
    times.push(performance.now() - started);
    channel.end();
    await exited(child);
    tick(`${i + 1}/${samples}`);
  }
  return summary(times);
}

async function pump(seconds, lanes) {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let count = 0;
  await Promise.all(
    lanes.map(async (roundTrip) => {
      for (let id = 0; performance.now() < deadline; id++) {
        await roundTrip(id);
        count++;
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

/**
 * `concurrency` bare children, one message in flight each (a reused child runs one task at a
 * time): JSON line out on fd 3, JSON line back. Round trips per second, all children together.
 */
export async function bareChildRoundTrip({ concurrency, seconds, env, execArgv }) {
  const children = Array.from({ length: concurrency }, () =>
    spawnLike(path.join(here, 'raw', 'echo-child.mjs'), { env, execArgv }),
  );
  const lanes = children.map((child) => {
    const channel = child.stdio[3];
    channel.setEncoding('utf8');
    let waiting = null;
    channel.on('data', () => waiting?.());
    return (id) =>
      new Promise((resolve) => {
        waiting = resolve;
        channel.write(`${JSON.stringify({ type: 'run', id })}\n`);
      });
  });
  // The first answer of each proves it booted; boots are not part of the rate.
  await Promise.all(lanes.map((lane) => lane(-1)));
  const rate = await pump(seconds, lanes);
  for (const child of children) child.stdio[3].end();
  await Promise.all(children.map(exited));
  return rate;
}

/** `threads` worker threads, one message in flight each (as the thread pool runs one try per thread). */
export async function bareThreadRoundTrip({ threads, seconds }) {
  const workers = Array.from({ length: threads }, () => new Worker(path.join(here, 'raw', 'echo-thread.mjs')));
  const lanes = workers.map((worker) => {
    let waiting = null;
    worker.on('message', () => waiting?.());
    return (id) =>
      new Promise((resolve) => {
        waiting = resolve;
        worker.postMessage({ type: 'run', id });
      });
  });
  await Promise.all(lanes.map((lane) => lane(-1)));
  const rate = await pump(seconds, lanes);
  await Promise.all(workers.map((worker) => worker.terminate()));
  return rate;
}
