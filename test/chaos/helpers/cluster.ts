/**
 * One chaos test file's world: a private PostgreSQL (never the shared server: these tests cut
 * sessions and restart it), the ledger tables, and launchers as separate processes. After each
 * test, launchers left running are killed and no task process of this file may be alive.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { waitFor } from '../../helpers/db.js';
import { startPrivateServer, type PrivateServer } from '../../helpers/private-server.js';
import { createLedger, resetLedger } from './ledger.js';
import { LauncherSet, taskProcesses, type LauncherProcess } from './launchers.js';

export interface ChaosCluster {
  readonly server: PrivateServer;
  readonly run: string;
  /** A launcher process with host identity `host`; its sessions are named `chaos-launcher`. */
  launcher(host: string, options?: Record<string, unknown>): LauncherProcess;
  reset(): Promise<void>;
  /** Task processes of this file still alive. */
  taskProcesses(): Promise<number[]>;
}

/** Options every chaos launcher shares unless a test says otherwise. */
export const baseOptions = {
  concurrency: 8,
  leaseMs: 3_000,
  probeIntervalMs: 5_000,
  pollIntervalMs: 1_000,
  retryBackoff: { baseMs: 100, maxMs: 1_000 },
  shutdownGraceMs: 30_000,
};

export function useChaosCluster(): ChaosCluster {
  let server: PrivateServer | undefined;
  const launchers = new LauncherSet();
  const run = randomBytes(4).toString('hex');
  beforeAll(async () => {
    server = await startPrivateServer({ maxConnections: 300 });
    await createLedger(server.pool);
  }, 180_000);
  afterEach(async () => {
    await launchers.killAll();
    // Children end when their launcher's IPC channel closes: give them a moment, then insist.
    const left = await waitFor(async () => ((await taskProcesses(run)).length === 0 ? 'none' : null), {
      timeoutMs: 10_000,
      intervalMs: 100,
    }).catch(async () => taskProcesses(run));
    if (Array.isArray(left)) for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(left, 'task processes alive after the test').toBe('none');
  }, 180_000);
  afterAll(async () => {
    await server?.stop();
  }, 120_000);
  const get = (): PrivateServer => {
    if (server === undefined) throw new Error('the chaos server exists only inside tests and hooks');
    return server;
  };
  return {
    get server() {
      return get();
    },
    run,
    launcher(host, options = {}) {
      const childEnv = {
        CHAOS_LEDGER_URL: get().url('chaos-ledger'),
        CHAOS_RUN: run,
        ...(options.childEnv as object | undefined),
      };
      return launchers.create(host, { db: get().url('chaos-launcher'), ...baseOptions, ...options, childEnv });
    },
    reset: () => resetLedger(get().pool),
    taskProcesses: () => taskProcesses(run),
  };
}
