import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getRow, insertRequests, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { railsClient } from '../helpers/rails.js';
import { useTestRunners } from '../helpers/runner.js';
import { historyOf } from '../helpers/store.js';

/**
 * Clearing `pid` is the seed's way to reschedule a request. Under a try that still runs, its
 * launcher (on whatever host) stops that try first and records it RESCHEDULED; only then may any
 * launcher start the next one, so two tries of one request never run at once. The task writes
 * its own ledger (TickLedger: a line at start, every 50 ms, and at the end), so an overlap shows
 * outside the database: a line of the first try after the second try's start. A first try runs a
 * minute, far longer than any wipe takes to arrive (a ruby process under load takes seconds), and
 * the next one half a second.
 */
const t = useTestDatabase();
const runners = useTestRunners();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cwtr-pid-wipe-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface LedgerLine {
  id: string;
  pid: number;
  what: string;
  run: string;
}

async function ledger(file: string): Promise<LedgerLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [id, pid, what, run] = line.split(' ');
      return { id: id!, pid: Number(pid), what: what!, run: run! };
    });
}

/**
 * The runs of request `id` in the ledger, in order of their first line: their pids, the pids of
 * those that reached their end, and every run that wrote a line after a later run had started.
 */
function triesOf(lines: readonly LedgerLine[], id: string): { pids: number[]; overlaps: string[]; ended: number[] } {
  const mine = lines.filter((line) => line.id === id);
  const runs = [...new Set(mine.map((line) => line.run))];
  const pidOf = (run: string): number => mine.find((line) => line.run === run)!.pid;
  const overlaps: string[] = [];
  for (let i = 1; i < runs.length; i += 1) {
    const nextStart = mine.findIndex((line) => line.run === runs[i]);
    const lateLines = mine.slice(nextStart).filter((line) => runs.slice(0, i).includes(line.run));
    if (lateLines.length > 0)
      overlaps.push(
        `run ${i + 1} (pid ${pidOf(runs[i]!)}) started while run of pid ${lateLines[0]!.pid} still ran (${lateLines.length} lines after)`,
      );
  }
  return { pids: runs.map(pidOf), overlaps, ended: mine.filter((line) => line.what === 'end').map((line) => line.pid) };
}

describe('wiping the pid of a claimed row', () => {
  it(
    'a running try wiped by a Rails client is stopped and recorded RESCHEDULED before the next try starts',
    { timeout: 60_000 },
    async () => {
      const runner = await runners.start(t, { concurrency: 2 });
      const file = path.join(dir, 'rails.log');
      const id = await runner.schedule('TickLedger', { file, ms: 60_000, laterMs: 500 });
      const first = await runners.started(runner, id);
      await waitFor(async () => (await ledger(file)).some((line) => line.pid === first.pid), {
        what: 'the first try to write its start',
      });

      await railsClient(t.url).update('task_runner_requests', id, { pid: null });

      const row = await waitForCompleted(t.pool, id, 30_000);
      const tries = triesOf(await ledger(file), id);
      expect(tries.overlaps).toEqual([]);
      expect(tries.pids).toHaveLength(2);
      expect(tries.pids[0]).toBe(first.pid);
      expect(tries.ended).toEqual([tries.pids[1]]);
      expect(row).toMatchObject({ result: 'FINISHED', result_text: 'ok', pid: null });
      const history = await historyOf(t.pool, id);
      expect(history.map((h) => [h.result, h.pid])).toEqual([
        ['RESCHEDULED', first.pid],
        ['FINISHED', tries.pids[1]],
      ]);
      expect(history[0].launcher_id).toBe(runner.launcherId);
      await runner.stop();
    },
  );

  it(
    'a held row wiped by SQL is dropped from the local queue, released, and runs once',
    { timeout: 60_000 },
    async () => {
      // A long horizon: however slow the warm-up tries were under load, rows are held ahead.
      const runner = await runners.start(t, { concurrency: 1, prefetch: 4, prefetchHorizonMs: 600_000 });
      const file = path.join(dir, 'held.log');
      // Short tries first, so that the runner has durations to go by and holds rows ahead.
      const warm = await insertRequests(t.pool, 4, { task_class_name: 'Echo', options: { text: 'warm' } });
      await waitFor(
        async () => (await Promise.all(warm.map((w) => getRow(t.pool, w)))).every((r) => r.completed_at !== null),
        { what: 'the warm-up rows' },
      );
      // The first runs long enough for the wipe to find the second still held, however loaded the machine.
      const [busy] = await insertRequests(t.pool, 1, { task_class_name: 'TickLedger', options: { file, ms: 8_000 } });
      const [held] = await insertRequests(t.pool, 1, { task_class_name: 'TickLedger', options: { file, ms: 300 } });
      await runners.started(runner, busy!);
      const heldRow = await waitFor(
        async () => {
          const r = await getRow(t.pool, held!);
          return r.launcher_id === runner.launcherId && r.pid !== null && r.started_at === null ? r : null;
        },
        { what: 'the second row to be held in the local queue' },
      );
      expect(heldRow.tries).toBe(1);

      await t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [held]);

      await waitForCompleted(t.pool, busy!, 30_000);
      const row = await waitForCompleted(t.pool, held!, 30_000);
      const lines = await ledger(file);
      expect(triesOf(lines, held!).pids).toHaveLength(1);
      expect(triesOf(lines, busy!).pids).toHaveLength(1);
      expect(row).toMatchObject({ result: 'FINISHED', tries: 1 });
      const history = await historyOf(t.pool, held!);
      expect(history.map((h) => h.result)).toEqual(['RESCHEDULED', 'FINISHED']);
      expect(history[0].result_text).toMatch(/before it started/);
      await runner.stop();
    },
  );

  it('without LISTEN (db given as a Kysely), the next lease renewal finds the wipe', { timeout: 60_000 }, async () => {
    const runner = await runners.start(t, { db: t.db, leaseMs: 3_000 });
    const file = path.join(dir, 'polled.log');
    const id = await runner.schedule('TickLedger', { file, ms: 60_000, laterMs: 500 });
    const first = await runners.started(runner, id);
    await waitFor(async () => (await ledger(file)).some((line) => line.pid === first.pid), {
      what: 'the first try to write its start',
    });

    await t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [id]);

    const row = await waitForCompleted(t.pool, id, 30_000);
    const tries = triesOf(await ledger(file), id);
    expect(tries.overlaps).toEqual([]);
    expect(tries.pids).toHaveLength(2);
    expect(row).toMatchObject({ result: 'FINISHED' });
    expect((await historyOf(t.pool, id)).map((h) => h.result)).toEqual(['RESCHEDULED', 'FINISHED']);
    await runner.stop();
  });

  it(
    'a thread-mode try wiped by SQL is stopped (its thread ended) before the next starts',
    { timeout: 60_000 },
    async () => {
      const runner = await runners.start(t, { defaultMode: 'thread' });
      const file = path.join(dir, 'thread.log');
      const id = await runner.schedule('TickLedger', { file, ms: 60_000, laterMs: 500 });
      const first = await runners.started(runner, id);
      expect(first).toMatchObject({ mode: 'thread', pid: process.pid });
      await waitFor(async () => (await ledger(file)).some((line) => line.id === id), {
        what: 'the first try to write its start',
      });

      await t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [id]);

      const row = await waitForCompleted(t.pool, id, 30_000);
      const tries = triesOf(await ledger(file), id);
      expect(tries.overlaps).toEqual([]);
      expect(tries.pids).toHaveLength(2);
      expect(tries.ended).toHaveLength(1);
      expect(row).toMatchObject({ result: 'FINISHED' });
      const history = await historyOf(t.pool, id);
      expect(history.map((h) => [h.result, h.mode])).toEqual([
        ['RESCHEDULED', 'thread'],
        ['FINISHED', 'thread'],
      ]);
      await runner.stop();
    },
  );

  it(
    'the owner on its host stops the try, not a launcher on another host, which runs the next try only after',
    { timeout: 60_000 },
    async () => {
      const owner = await runners.start(t, { concurrency: 1, host: 'host-a' });
      const file = path.join(dir, 'hosts.log');
      const [id] = await insertRequests(t.pool, 1, {
        task_class_name: 'TickLedger',
        options: { file, ms: 60_000, laterMs: 500 },
      });
      const first = await runners.started(owner, id!);
      await waitFor(async () => (await ledger(file)).some((line) => line.pid === first.pid), {
        what: 'the first try to write its start',
      });
      const other = await runners.start(t, { concurrency: 2, host: 'host-b' });

      await t.pool.query('UPDATE task_runner_requests SET pid = NULL WHERE id = $1', [id]);

      const row = await waitForCompleted(t.pool, id!, 30_000);
      const tries = triesOf(await ledger(file), id!);
      expect(tries.overlaps).toEqual([]);
      expect(tries.pids).toHaveLength(2);
      expect(row).toMatchObject({ result: 'FINISHED' });
      const history = await historyOf(t.pool, id!);
      expect(history.map((h) => [h.result, h.host, h.launcher_id])).toEqual([
        ['RESCHEDULED', 'host-a', owner.launcherId],
        ['FINISHED', row.host, row.launcher_id],
      ]);
      expect(runners.errors(owner)).toEqual([]);
      expect(runners.errors(other)).toEqual([]);
      await Promise.all([owner.stop(), other.stop()]);
    },
  );
});
