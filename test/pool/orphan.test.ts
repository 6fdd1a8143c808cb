import { fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { childRuntimeEntry } from '../../dist/pool/runtime-entry.js';
import { childEnv, jobFor } from '../helpers/jobs.js';
import { PidTracker, waitForExit } from '../helpers/processes.js';

/**
 * A child whose launcher is gone must not run on unsupervised. Waiting for a task, it ends itself
 * when its channel (fd 3) closes, whether the launcher retires it or dies. Running one, a reused
 * child (which holds its channel as a socket) ends when the channel closes, and a fresh one (which
 * reads and writes it with blocking calls) when its launcher is gone.
 */
const childEntry = childRuntimeEntry();
const poolHost = fileURLToPath(new URL('../fixtures/scripts/pool-host.mjs', import.meta.url));
const tracker = new PidTracker();

afterEach(async () => {
  await tracker.expectAllGone();
});

function forkTracked(file: string): ChildProcess {
  const child = fork(file, [], { env: childEnv, execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  tracker.add(child.pid);
  return child;
}

/** The child runtime as the launcher starts it: `node child-entry.js` with its channel on fd 3. */
interface Runtime {
  child: ChildProcess;
  channel: Socket;
  send(message: unknown): void;
  /** Resolves with the first message `filter` accepts, or rejects after `timeoutMs`. */
  next<T>(filter: (message: any) => boolean, timeoutMs?: number): Promise<T>;
}

const key = 'k'.repeat(32);

async function startRuntime(reuse = false): Promise<Runtime> {
  const child = spawn(process.execPath, [childEntry], {
    env: childEnv,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    detached: true,
  });
  tracker.add(child.pid);
  const channel = child.stdio[3] as Socket;
  channel.setEncoding('utf8');
  channel.on('error', () => undefined);
  const messages: unknown[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  channel.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    for (const line of lines) if (line !== '') messages.push(JSON.parse(line));
    for (const wake of waiters) wake();
  });
  const runtime: Runtime = {
    child,
    channel,
    send: (message) => channel.write(`${JSON.stringify(message)}\n`),
    next: (filter, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const at = messages.findIndex(filter);
          if (at < 0) return;
          const [found] = messages.splice(at, 1);
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found as never);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching message from ${child.pid} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
  runtime.send({ type: 'init', key, reuse, reportRss: false });
  await runtime.next((m) => m?.type === 'ready' && m.key === key);
  return runtime;
}

/** Resolves with the first message `filter` accepts, or rejects after `timeoutMs`. */
function nextMessage<T>(child: ChildProcess, filter: (message: any) => boolean, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no matching message from ${child.pid} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onMessage = (message: unknown): void => {
      if (!filter(message)) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
  });
}

/** Resolves with the first stdout line starting with `prefix`. */
function nextLine(child: ChildProcess, prefix: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(
      () => reject(new Error(`no line "${prefix}…" from ${child.pid} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      const line = buffered.split('\n').find((l) => l.startsWith(prefix));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
  });
}

describe('a child whose launcher goes away', () => {
  it('exits cleanly when its channel closes while it waits for a task (a retired or orphaned spare)', async () => {
    const { child, channel } = await startRuntime();
    const exited = once(child, 'exit');
    channel.end();
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });

  it('exits when its channel closes while its task runs (a reused child)', async () => {
    const runtime = await startRuntime(true);
    const sleeping = nextLine(runtime.child, 'sleeping pid=');
    runtime.send({ type: 'run', ...(await jobFor('Sleep', { ms: 60_000 })) });
    expect(await sleeping).toBe(`sleeping pid=${runtime.child.pid}`);
    const exited = once(runtime.child, 'exit');
    runtime.channel.end();
    const [code] = await exited;
    expect(code).toBe(70);
  });

  it('reports a malformed message from the launcher instead of running anything', async () => {
    const runtime = await startRuntime();
    const report = runtime.next<{ type: string; kind: string; text: string; key: string }>((m) => m?.type === 'error');
    const exited = once(runtime.child, 'exit');
    runtime.send({ type: 'run', file: '/etc/passwd' });
    expect(await report).toMatchObject({
      type: 'error',
      kind: 'load',
      key,
      text: expect.stringMatching(/PROTOCOL_INVALID|invalid launcher message/),
      last: true,
    });
    // It goes once its last report was read: the launcher says so by closing the channel.
    runtime.channel.end();
    expect(await exited).toEqual([1, null]);
  });

  it('refuses to run before it was given its key', async () => {
    const child = spawn(process.execPath, [childEntry], {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    tracker.add(child.pid);
    const channel = child.stdio[3] as Socket;
    const exited = once(child, 'exit');
    channel.write(`${JSON.stringify({ type: 'run', ...(await jobFor('Echo', { text: 'no' })) })}\n`);
    const [code] = await exited;
    expect(code).toBe(71);
  });

  it('ends itself when its launcher is SIGKILLed', async () => {
    const host = forkTracked(poolHost);
    const { childPid } = await nextMessage<{ childPid: number }>(host, (m) => typeof m?.childPid === 'number');
    tracker.add(childPid);
    const hostExited = once(host, 'exit');
    host.kill('SIGKILL');
    await hostExited;
    // The child leads its own process group, so the kill did not reach it: only the closed
    // channel can end it.
    await waitForExit(childPid, 10_000);
  });
});
