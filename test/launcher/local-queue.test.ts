import { describe, expect, it } from 'vitest';
import type { Runner } from '../../dist/index.js';
import { getRow, insertRequest, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { deadPid } from '../helpers/store.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * The local queue: rows a launcher claims ahead of its free slots. It holds them only once its
 * tries are known to be short, never more than `prefetch`, gives them back untried at shutdown,
 * ends a cancelled one without starting it; a launcher that dies holding rows costs them their
 * claim's try but no crash.
 */
const runners = useTestRunners();
const t = useTestDatabase();

/** Rows `runner` holds unstarted: claimed (pid set) with no start recorded. */
async function held(runner: Runner): Promise<string[]> {
  const { rows } = await t.pool.query(
    `SELECT id::text AS id FROM task_runner_requests WHERE launcher_id = $1 AND pid IS NOT NULL AND completed_at IS NULL
       AND started_at IS NULL ORDER BY id`,
    [runner.launcherId],
  );
  return rows.map((row) => row.id);
}

/** Runs a few quick tries, so the runner knows its tries are short and claims ahead. */
async function warm(runner: Runner): Promise<void> {
  const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => runner.schedule('Echo', { text: `warm ${i}` })));
  for (const id of ids) await finalCompletion(runner, id);
}

describe('the local queue', () => {
  it('holds rows ahead once tries are known to be short, never more than prefetch', async () => {
    const runner = await runners.start(t, {
      concurrency: 2,
      prefetch: 3,
      maxTasksPerChild: Infinity,
      spareChildren: 0,
    });
    await warm(runner);
    let mostHeld = 0;
    let mostUnstartedInTable = 0;
    let done = false;
    const ids = await runner.scheduleMany(
      Array.from({ length: 150 }, (_, i) => ({ taskClassName: 'Echo', options: { text: `e${i}` } })),
    );
    const watching = (async () => {
      while (!done) {
        mostHeld = Math.max(mostHeld, (await runner.status()).held);
        mostUnstartedInTable = Math.max(mostUnstartedInTable, (await held(runner)).length);
      }
    })();
    for (const id of ids) await finalCompletion(runner, id);
    done = true;
    await watching;
    expect(mostHeld).toBeGreaterThan(0);
    expect(mostHeld).toBeLessThanOrEqual(3);
    // In the table a try that started is told apart once its start is written (the next
    // statement): until then it looks held too, so the table shows at most prefetch + concurrency.
    expect(mostUnstartedInTable).toBeLessThanOrEqual(3 + 2);
    await runner.stop();
  });

  it('holds nothing it cannot start soon: two launchers share long tries', async () => {
    const first = await runners.start(t, { concurrency: 2, prefetch: 8 });
    const second = await runners.start(t, { concurrency: 2, prefetch: 8 });
    const ids = await first.scheduleMany(
      Array.from({ length: 4 }, () => ({ taskClassName: 'Sleep', options: { ms: 1_500 } })),
    );
    for (const id of ids) await waitForCompleted(t.pool, id, 20_000);
    const { rows } = await t.pool.query(
      'SELECT launcher_id, count(*)::int AS n FROM task_runner_requests_attempts WHERE request_id = ANY($1::bigint[]) GROUP BY 1 ORDER BY 1',
      [ids],
    );
    expect(rows.map((row) => row.n)).toEqual([2, 2]);
    await Promise.all([first.stop(), second.stop()]);
  });

  it('ends a held row CANCELLED without starting it', async () => {
    const runner = await runners.start(t, {
      concurrency: 1,
      prefetch: 4,
      maxTasksPerChild: Infinity,
      spareChildren: 0,
    });
    await warm(runner);
    const sleeping = await runner.schedule('Sleep', { ms: 1_500 });
    const waiting = await runner.scheduleMany(
      [1, 2, 3].map((i) => ({ taskClassName: 'Echo', options: { text: `held ${i}` } })),
    );
    await waitFor(async () => (await held(runner)).includes(waiting[1]!), { what: 'the row to be held' });
    expect(await runner.cancel(waiting[1]!)).toMatchObject({ state: 'cancelling' });
    const cancelled = await waitForCompleted(t.pool, waiting[1]!);
    expect(cancelled).toMatchObject({ result: 'CANCELLED', result_text: 'cancelled before it started', pid: null });
    const { rows } = await t.pool.query(
      'SELECT result, mode, pid FROM task_runner_requests_attempts WHERE request_id = $1',
      [waiting[1]],
    );
    expect(rows).toEqual([{ result: 'CANCELLED', mode: null, pid: null }]);
    for (const id of [sleeping, waiting[0]!, waiting[2]!])
      expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'FINISHED' });
    await runner.stop();
  });

  it('gives held rows back untried at shutdown', async () => {
    const runner = await runners.start(t, {
      concurrency: 1,
      prefetch: 4,
      maxTasksPerChild: Infinity,
      spareChildren: 0,
      shutdownGraceMs: 15_000,
    });
    await warm(runner);
    // Long enough to outlast seeing the three rows held on a loaded machine; the grace covers it.
    const sleeping = await runner.schedule('Sleep', { ms: 3_000 });
    const waiting = await runner.scheduleMany(
      [1, 2, 3].map((i) => ({ taskClassName: 'Echo', options: { text: `held ${i}` } })),
    );
    await waitFor(async () => (await held(runner)).length === 3, { what: 'three rows held' });
    await runner.stop();
    expect(await getRow(t.pool, sleeping)).toMatchObject({ result: 'FINISHED', tries: 1 });
    for (const id of waiting) {
      expect(await getRow(t.pool, id)).toMatchObject({
        pid: null,
        tries: 0,
        completed_at: null,
        result: 'INTERRUPTED',
        result_text: 'released unstarted: the launcher is shutting down',
      });
    }
  });

  it('gives back, untried, the rows of a claim that returns after shutdown has released the held ones', async () => {
    const runner = await runners.start(t, {
      concurrency: 1,
      prefetch: 4,
      prefetchHorizonMs: 600_000,
      leaseMs: 600_000,
      maxTasksPerChild: Infinity,
      spareChildren: 0,
      shutdownGraceMs: 15_000,
    });
    await warm(runner);
    const ids = await runner.scheduleMany(
      Array.from({ length: 10 }, () => ({ taskClassName: 'Sleep', options: { ms: 400 } })),
    );
    // One row runs and four are held. Once the first try's start is written, its row is locked:
    // the statement that writes its outcome waits, and it carries a claim for one more row
    // (the second try has started by then, leaving three of four held).
    await runners.started(runner, ids[0]!);
    const lock = await t.pool.connect();
    let stopping: Promise<void> | undefined;
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT 1 FROM task_runner_requests WHERE id = $1 FOR UPDATE', [ids[0]]);
      await waitFor(() => runner.stats.unwritten >= 1 && runner.stats.held === 3, {
        what: 'an outcome and a claim to wait on the lock',
      });
      stopping = runner.stop();
      await waitFor(() => runner.stats.held === 0, { what: 'the held rows to be given back' });
    } finally {
      await lock.query('COMMIT');
      lock.release();
    }
    await stopping;
    const { rows } = await t.pool.query(
      'SELECT r.id::text AS id, r.tries, r.result, r.pid FROM task_runner_requests r WHERE r.id = ANY($1::bigint[]) ORDER BY r.id',
      [ids],
    );
    // The try that ended and the one running when the stop began finished. No other try started,
    // no row is left claimed by the stopped launcher, and the late claim's row is given back
    // untried with the held ones.
    expect(rows.filter((row) => row.result === 'FINISHED').map((row) => row.id)).toEqual(ids.slice(0, 2));
    expect(rows.filter((row) => row.pid !== null)).toEqual([]);
    for (const row of rows.slice(2)) expect(row).toMatchObject({ tries: 0 });
    expect(rows.filter((row) => row.result === 'INTERRUPTED').map((row) => row.id)).toEqual(ids.slice(2, 6));
  });

  it('starts its held rows again once a backlog of unwritten outcomes is written', async () => {
    // The lease renewal (every third of leaseMs) also starts held rows: far off here, so only the
    // written backlog can.
    const runner = await runners.start(t, {
      concurrency: 1,
      prefetch: 200,
      prefetchHorizonMs: 600_000,
      leaseMs: 600_000,
      maxTasksPerChild: Infinity,
      spareChildren: 0,
    });
    await warm(runner);
    // One long try in front; every other row is claimed and held behind it, so later claims find nothing.
    const gate = await runner.schedule('Sleep', { ms: 1_000 }, { priority: 10 });
    const rest = await runner.scheduleMany(
      Array.from({ length: 120 }, (_, i) => ({ taskClassName: 'Echo', options: { text: `r${i}` } })),
    );
    await waitFor(() => runner.stats.held === rest.length, { what: 'every row to be held behind the gate' });
    const lock = await t.pool.connect();
    try {
      // Writes of outcomes wait on this lock, so they pile up until no new try may start.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE task_runner_requests_attempts IN SHARE MODE');
      await waitFor(() => runner.stats.unwritten >= 50 && runner.stats.running === 0, {
        what: 'outcomes to pile up',
        timeoutMs: 20_000,
      });
      expect(runner.stats.held).toBeGreaterThan(0);
      await lock.query('COMMIT');
    } finally {
      lock.release();
    }
    for (const id of [gate, ...rest])
      expect(await waitForCompleted(t.pool, id, 15_000)).toMatchObject({ result: 'FINISHED' });
    await runner.stop();
  });

  it("charges a dead launcher's held rows their claim's try but no crash, and its started tries a crash", async () => {
    const runner = await runners.create(t);
    const host = runner.config.host;
    const dead = {
      pid: deadPid,
      host,
      launcher_id: '1-1-dead',
      process_identity: null,
      tries: 1,
      lease_expires_at: new Date(Date.now() + 60_000),
    };
    const started = await insertRequest(t.pool, { ...dead, started_at: new Date() });
    const heldRow = await insertRequest(t.pool, { ...dead, started_at: null });
    const result = await runner.probe();
    expect(result.crashed.sort()).toEqual([started, heldRow].sort());
    expect(await getRow(t.pool, started)).toMatchObject({ result: 'CRASHED', crashes: 1, tries: 1, pid: null });
    const row = await getRow(t.pool, heldRow);
    expect(row).toMatchObject({ result: 'CRASHED', crashes: 0, tries: 1, pid: null });
    expect(row.result_text).toMatch(/^never started: pid probe/);
    await runner.stop();
  });
});

describe('what the task:completed event reports', () => {
  it('is what the row says: a FAILED try of a row whose cancel was asked for ends it CANCELLED', async () => {
    const runner = await runners.start(t, { leaseMs: 600_000 });
    const id = await runner.schedule('Fail', { afterMs: 800, reason: 'late' }, { tryLimit: 5 });
    await runners.started(runner, id);
    // Asked for by plain SQL, with no notification: the outcome statement sees it anyway.
    await t.pool.query('UPDATE task_runner_requests SET cancel_requested_at = now() WHERE id = $1', [id]);
    const completed = await finalCompletion(runner, id);
    expect(completed).toMatchObject({ result: 'FAILED', ended: true, parked: false, requestResult: 'CANCELLED' });
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'CANCELLED', tries: 1 });
    await runner.stop();
  });
});
