import { afterEach, describe, expect, it } from 'vitest';
import { resolveRunnerConfig, type RunnerEvents } from '../../dist/index.js';
import { LauncherParts } from '../../dist/launcher/launcher-parts.js';
import { LeaseService } from '../../dist/launcher/lease-service.js';
import { readProcessIdentity } from '../../dist/pool/process-identity.js';
import { silentLogger } from '../../dist/shared/logger.js';
import { TypedEmitter } from '../../dist/shared/typed-emitter.js';
import { launcherHeartbeat } from '../../dist/store/activity.js';
import { openDatabase } from '../../dist/store/database.js';
import { RequestStore } from '../../dist/store/request-store.js';
import { poolClient } from '../../dist/store/sql-client.js';
import { TaskRegistry } from '../../dist/tasks/registry.js';
import { getRow, insertRequest, useTestDatabase, waitFor } from '../helpers/db.js';
import { childEnv, fixturesDir } from '../helpers/jobs.js';
import { isAlive, PidTracker } from '../helpers/processes.js';
import { deadPid } from '../helpers/store.js';

/**
 * The lease service's `runOnce()`, driven by the test against the real database and a launcher's
 * real parts (dispatcher, launch loop, fork pool): its period is a third of a 60 s lease, so no
 * run but the test's happens while a test lasts.
 */
const t = useTestDatabase();
const tracker = new PidTracker();
const launcherId = 'lease-service-test';
const host = 'lease-service-host';
let stopAll: (() => Promise<void>) | null = null;

afterEach(async () => {
  await stopAll?.();
  stopAll = null;
  await tracker.expectAllGone();
});

/**
 * A launcher's parts, started (claiming and running), and a lease service over them, not started.
 * It claims from the queue `leases` only: the rows other launchers hold stay where the test puts them.
 */
async function launcher(params: { heartbeat?: boolean } = {}) {
  const config = resolveRunnerConfig({
    db: t.url,
    tasksDir: fixturesDir,
    host,
    concurrency: 1,
    leaseMs: 60_000,
    pollIntervalMs: 200,
    shutdownGraceMs: 300,
    killTimeoutMs: 300,
    childEnv,
    childExecArgv: [],
    logger: silentLogger,
    queues: ['leases'],
  });
  const database = openDatabase(config.db, 4);
  const store = new RequestStore({
    db: database.db,
    sql: poolClient(database.pool!),
    table: config.table,
    backoff: config.retryBackoff,
    crashLimit: config.crashLimit,
  });
  const registry = new TaskRegistry(config.tasksDir);
  await registry.refresh();
  const events = new TypedEmitter<RunnerEvents>();
  const errors: RunnerEvents['error'][] = [];
  events.on('error', (error) => {
    errors.push(error);
  });
  events.on('task:started', (started) => {
    tracker.add(started.pid);
  });
  const report = (error: Error, during: string): void => {
    errors.push({ error, during });
  };
  const parts = new LauncherParts({
    config,
    database,
    store,
    registry,
    events,
    launcherId,
    report,
    launcherIdentity: await readProcessIdentity(process.pid),
    onRescheduleNotice: () => undefined,
  });
  const lease = new LeaseService({
    store,
    launcherId,
    host,
    leaseMs: config.leaseMs,
    loop: parts.loop,
    dispatcher: parts.dispatcher,
    heartbeat:
      params.heartbeat === true
        ? () =>
            launcherHeartbeat(database.db, config.table, {
              launcherId,
              host,
              pid: process.pid,
              concurrency: config.concurrency,
              queues: config.queues,
            })
        : null,
    events,
    logger: silentLogger,
    report,
  });
  await parts.start();
  stopAll = async () => {
    await lease.stop();
    await parts.stop();
    await database.close();
  };
  return { lease, events, errors };
}

describe('LeaseService.runOnce', () => {
  it('finds a row another launcher took gone: stops its try and writes nothing for it', async () => {
    const { lease, events, errors } = await launcher();
    const started = events.waitFor('task:started', () => true, 15_000);
    const id = await insertRequest(t.pool, { task_class_name: 'Sleep', options: { ms: 60_000 }, queue: 'leases' });
    const { pid } = await started;
    expect(await lease.runOnce()).toMatchObject({ accepted: true, renewed: [id], lost: [], recovered: [] });

    // What another launcher's lease recovery does to the row, written by hand.
    await t.pool.query(
      `UPDATE task_runner_requests SET pid = NULL, launcher_id = 'elsewhere', host = 'elsewhere',
      result = 'CRASHED', result_text = 'taken away', delay_until = 'infinity' WHERE id = $1`,
      [id],
    );
    expect(await lease.runOnce()).toMatchObject({
      accepted: true,
      renewed: [],
      lost: [id],
      rescheduled: [],
      recovered: [],
    });
    await waitFor(() => !isAlive(pid), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'the try of the taken row to be stopped',
    });
    expect(await getRow(t.pool, id)).toMatchObject({
      launcher_id: 'elsewhere',
      result: 'CRASHED',
      result_text: 'taken away',
      pid: null,
    });
    const history = await t.pool.query(
      'SELECT count(*)::int AS n FROM task_runner_requests_attempts WHERE request_id = $1',
      [id],
    );
    expect(history.rows[0].n).toBe(0);
    expect(errors).toEqual([]);
  });

  it("recovers the rows of another host's launcher whose lease ran out, and says so", async () => {
    const { lease, events } = await launcher();
    const expired = await insertRequest(t.pool, {
      pid: deadPid,
      host: 'gone-host',
      launcher_id: 'gone-launcher',
      tries: 1,
      started_at: new Date(Date.now() - 10_000),
      lease_expires_at: new Date(Date.now() - 1_000),
    });
    const held = await insertRequest(t.pool, {
      pid: deadPid,
      host: 'live-host',
      launcher_id: 'live-launcher',
      tries: 1,
      started_at: new Date(Date.now() - 10_000),
      lease_expires_at: new Date(Date.now() + 60_000),
    });
    const said = events.waitFor('probe:recovered', (e) => e.reason === 'lease', 5_000);
    expect(await lease.runOnce()).toMatchObject({ accepted: true, renewed: [], recovered: [expired] });
    expect(await said).toEqual({ ids: [expired], reason: 'lease' });
    expect(await getRow(t.pool, expired)).toMatchObject({ result: 'CRASHED', pid: null, completed_at: null });
    expect(await getRow(t.pool, held)).toMatchObject({ pid: deadPid, launcher_id: 'live-launcher', result: null });
  });

  it('releases a row of its own whose pid was cleared by hand while it has no try of it', async () => {
    const { lease } = await launcher();
    // Leased to this launcher but unknown to its dispatcher: a row it held before a restart, say.
    const wiped = await insertRequest(t.pool, {
      pid: null,
      host,
      launcher_id: launcherId,
      tries: 1,
      started_at: new Date(Date.now() - 5_000),
      lease_expires_at: new Date(Date.now() + 60_000),
    });
    const result = await lease.runOnce();
    expect(result).toMatchObject({ accepted: true, rescheduled: [wiped], released: [wiped] });
    // Runnable again: no pid, no lease.
    expect(await getRow(t.pool, wiped)).toMatchObject({ lease_expires_at: null, pid: null, completed_at: null });
    expect(await lease.runOnce()).toMatchObject({ accepted: true, renewed: [], rescheduled: [], released: [] });
  });
});

describe('LeaseService start and stop', () => {
  const beat = async (): Promise<Date | undefined> => {
    const { rows } = await t.pool.query(
      'SELECT heartbeat_at FROM task_runner_requests_launchers WHERE launcher_id = $1',
      [launcherId],
    );
    return rows[0]?.heartbeat_at;
  };

  it('registers the launcher at start and beats its heartbeat with each run; stop is safe twice', async () => {
    const { lease, errors } = await launcher({ heartbeat: true });
    expect(await beat()).toBeUndefined();
    await lease.start();
    await lease.start();
    const first = await beat();
    expect(first).toBeInstanceOf(Date);
    await lease.runOnce();
    expect((await beat())!.getTime()).toBeGreaterThanOrEqual(first!.getTime());
    await lease.stop();
    await lease.stop();
    expect(errors).toEqual([]);
  });
});
