import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { childEnv, jobFor } from '../helpers/jobs.js';
import { PidTracker, waitForExit } from '../helpers/processes.js';

/**
 * A child whose launcher is gone must not run on unsupervised: it ends itself when its IPC
 * channel closes, whether the launcher disconnects or dies.
 */
const childEntry = fileURLToPath(new URL('../../dist/pool/runtime/child-entry.js', import.meta.url));
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

/** Resolves with the first message `filter` accepts, or rejects after `timeoutMs`. */
function nextMessage<T>(child: ChildProcess, filter: (message: any) => boolean, timeoutMs = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no matching message from ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
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
    const timer = setTimeout(() => reject(new Error(`no line "${prefix}…" from ${child.pid} within ${timeoutMs} ms`)), timeoutMs);
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
  it('exits cleanly when the IPC channel closes while it waits for a task (a retired or orphaned spare)', async () => {
    const child = forkTracked(childEntry);
    await nextMessage(child, (m) => m?.type === 'ready');
    const exited = once(child, 'exit');
    child.disconnect();
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
  });

  it('exits when the IPC channel closes while its task runs', async () => {
    const child = forkTracked(childEntry);
    await nextMessage(child, (m) => m?.type === 'ready');
    const sleeping = nextLine(child, 'sleeping pid=');
    child.send({ type: 'run', ...(await jobFor('Sleep', { ms: 60_000 })) });
    expect(await sleeping).toBe(`sleeping pid=${child.pid}`);
    const exited = once(child, 'exit');
    child.disconnect();
    const [code] = await exited;
    expect(code).toBe(70);
  });

  it('reports a malformed message from the launcher instead of running anything', async () => {
    const child = forkTracked(childEntry);
    await nextMessage(child, (m) => m?.type === 'ready');
    const report = nextMessage<{ type: string; kind: string; text: string }>(child, (m) => m?.type === 'error');
    child.send({ type: 'run', file: '/etc/passwd' });
    expect(await report).toMatchObject({ type: 'error', kind: 'load', text: expect.stringMatching(/PROTOCOL_INVALID|invalid launcher message/) });
    await once(child, 'exit');
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
