import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readProcessIdentity } from '../../dist/pool/process-identity.js';
import { createTestDatabase, getRow, insertRequest, type TestDatabase } from '../helpers/db.js';
import { isAlive } from '../helpers/processes.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * The seed's pid probe: rows of this host whose process is gone (or whose pid now names another
 * process) are marked CRASHED and become runnable; rows of other hosts are judged by their lease
 * only; wiping a pid by hand reschedules a row.
 */
const runners = useTestRunners();

let t: TestDatabase;
let unrelated: ChildProcess;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests');
  unrelated = spawn('sleep', ['300'], { stdio: 'ignore' });
});
afterEach(() => {
  unrelated.kill('SIGKILL');
});

/** A pid that named a process a moment ago and names none now. */
function deadPid(): number {
  const { pid } = spawnSync('true');
  expect(pid).toBeGreaterThan(0);
  expect(isAlive(pid!)).toBe(false);
  return pid!;
}

/** A row running try 1 under a launcher that is not a live one on this host. */
function runningRow(host: string, fields: Record<string, unknown>): Promise<string> {
  return insertRequest(t.pool, {
    task_class_name: 'Echo',
    options: { text: 'recovered' },
    tries: 1,
    try_limit: 5,
    host,
    launcher_id: 'gone-launcher',
    started_at: new Date(),
    lease_expires_at: new Date(Date.now() + 3_600_000),
    ...fields,
  });
}

describe('the pid probe', () => {
  it('marks a dead pid of this host CRASHED when called, and the row runs again', async () => {
    const runner = runners.create(t);
    const id = await runningRow(runner.config.host, { pid: deadPid(), process_identity: null });
    expect(await runner.probe()).toEqual({ crashed: [id], recovered: [], ended: [] });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'CRASHED', pid: null, completed_at: null, tries: 1 });
    expect(row.result_text).toMatch(
      /pid probe: process \d+ on host .* stopped without reporting \(the process is gone\)/,
    );

    const finished = finalCompletion(runner, id);
    await runner.start();
    expect(await finished).toMatchObject({ result: 'FINISHED', tries: 2, resultText: 'recovered' });
    await runner.stop();
  });

  it('runs at launcher start', async () => {
    const runner = runners.create(t);
    const id = await runningRow(runner.config.host, { pid: deadPid() });
    const recovered = runner.events.waitFor('probe:recovered', (e) => e.ids.includes(id), 10_000);
    const finished = finalCompletion(runner, id);
    await runner.start();
    expect(await recovered).toMatchObject({ reason: 'probe' });
    expect(await finished).toMatchObject({ result: 'FINISHED', tries: 2 });
    await runner.stop();
  });

  it('is not fooled by a reused pid: a live process with another identity counts as gone', async () => {
    const runner = runners.create(t);
    const pid = unrelated.pid!;
    const realIdentity = await readProcessIdentity(pid);
    const reused = await runningRow(runner.config.host, { pid, process_identity: 'not-this-boot:12345' });
    const genuine = await runningRow(runner.config.host, { pid, process_identity: realIdentity });
    const result = await runner.probe();
    expect(result.crashed).toEqual([reused]);
    expect((await getRow(t.pool, reused)).result_text).toMatch(/its pid now belongs to another process/);
    expect(await getRow(t.pool, genuine)).toMatchObject({ pid, result: null });
    expect(isAlive(pid)).toBe(true); // the probe only looks; it never signals
    await runner.stop();
  });

  it('never touches a row of another host whose lease is alive', async () => {
    const runner = runners.create(t);
    const id = await runningRow('another-host.example', { pid: deadPid(), launcher_id: 'remote-launcher' });
    const before = await getRow(t.pool, id);
    expect(await runner.probe()).toEqual({ crashed: [], recovered: [], ended: [] });
    expect(await getRow(t.pool, id)).toEqual(before);
    await runner.stop();
  });

  it("recovers a row of another host once its launcher's lease has expired", async () => {
    const runner = runners.create(t);
    const id = await runningRow('another-host.example', {
      pid: 4242,
      launcher_id: 'remote-launcher',
      lease_expires_at: new Date(Date.now() - 5_000),
    });
    const event = runner.events.waitFor('probe:recovered', (e) => e.reason === 'lease', 5_000);
    expect(await runner.probe()).toEqual({ crashed: [], recovered: [id], ended: [] });
    expect(await event).toEqual({ ids: [id], reason: 'lease' });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'CRASHED', pid: null });
    await runner.stop();
  });

  it('reschedules a row whose pid is wiped by hand, as in the seed, once the lease of its gone launcher has run out', async () => {
    // Owned by a launcher elsewhere that is gone, its process alive: nothing but the wipe can free
    // it, and not before the lease says that launcher cannot still be running the try; polling is off.
    const runner = await runners.start(t, { pollIntervalMs: 60_000, leaseMs: 900 });
    const leaseEnd = new Date(Date.now() + 1_500);
    const id = await runningRow('another-host.example', {
      pid: unrelated.pid,
      launcher_id: 'remote-launcher',
      lease_expires_at: leaseEnd,
    });
    expect(await runner.probe()).toEqual({ crashed: [], recovered: [], ended: [] });
    const finished = finalCompletion(runner, id, 10_000);
    await t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [id]);
    expect(await finished).toMatchObject({ result: 'FINISHED', tries: 1, resultText: 'recovered' });
    const row = await getRow(t.pool, id);
    expect(row.started_at.getTime()).toBeGreaterThanOrEqual(leaseEnd.getTime());
    const { rows } = await t.pool.query(
      'SELECT try, result, result_text FROM task_runner_requests_attempts WHERE request_id = $1 ORDER BY id',
      [id],
    );
    expect(rows.map((r) => r.result)).toEqual(['RESCHEDULED', 'FINISHED']);
    expect(rows[0].result_text).toMatch(
      /launcher remote-launcher on host another-host\.example stopped renewing its lease/,
    );
    await runner.stop();
  });
});
