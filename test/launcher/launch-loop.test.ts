import { describe, expect, it } from 'vitest';
import { LaunchLoop } from '../../dist/launcher/launch-loop.js';
import { silentLogger } from '../../dist/shared/logger.js';
import type { LaunchStatementTiming } from '../../dist/launcher/launch-loop.js';
import type { AppliedOutcome, AttemptOutcome } from '../../dist/store/request-store.js';
import { getRow, useTestDatabase, waitFor } from '../helpers/db.js';
import { insertRunning, outcomeOf, storeOn, testLauncher } from '../helpers/store.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * The launch loop writes outcomes in batches; what one statement carries must never cost another
 * row its outcome. Each outcome ends in exactly one of: applied, not ours any more (stale), or
 * given up, and the loop says which.
 */
const t = useTestDatabase();

function loopOn(store: ReturnType<typeof storeOn>, delays: { batchDelayMs?: number; startDelayMs?: number } = {}) {
  const started: string[] = [];
  const applied: AppliedOutcome[] = [];
  const stale: AttemptOutcome[] = [];
  const gaveUp: AttemptOutcome[] = [];
  const errors: string[] = [];
  const statements: LaunchStatementTiming[] = [];
  const loop = new LaunchLoop({
    store,
    launcherId: testLauncher,
    claimOrder: () => null,
    onClaimed: () => undefined,
    onClaimFailed: () => undefined,
    onOutcomes: (written, notOurs) => {
      applied.push(...written);
      stale.push(...notOurs);
    },
    onStarts: (written) => started.push(...written),
    onGaveUp: (outcome) => gaveUp.push(outcome),
    onError: (error) => errors.push(error.message),
    onStatement: (timing) => statements.push(timing),
    batchDelayMs: delays.batchDelayMs ?? 50,
    startDelayMs: delays.startDelayMs ?? 0,
    logger: silentLogger,
  });
  return { loop, started, applied, stale, gaveUp, errors, statements };
}

describe('the launch loop', () => {
  it('writes the outcomes of one batch in one statement and says how each row stands', async () => {
    const store = storeOn(t.db);
    const ids = [await insertRunning(t.pool), await insertRunning(t.pool), await insertRunning(t.pool)];
    const { loop, applied, statements } = loopOn(store);
    loop.addOutcome(outcomeOf(ids[0]!, 1, { result: 'FINISHED', resultText: 'ok', endNow: true }));
    loop.addOutcome(outcomeOf(ids[1]!, 1));
    loop.addOutcome(outcomeOf(ids[2]!, 1, { result: 'CRASHED', crash: true }));
    await waitFor(() => applied.length === 3, { what: 'three outcomes' });
    // Timed once per statement, not per outcome.
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({ claim: false, outcomes: 3, starts: 0, failure: null });
    expect(statements[0]!.durationMs).toBeGreaterThan(0);
    expect(applied.sort((a, b) => Number(a.id) - Number(b.id))).toEqual([
      { id: ids[0], result: 'FINISHED', ended: true },
      { id: ids[1], result: 'FAILED', ended: false },
      { id: ids[2], result: 'CRASHED', ended: false },
    ]);
    expect(await loop.flush(1_000)).toBe(true);
    loop.close();
  });

  it('isolates a value PostgreSQL refuses: the others land as they are, that one in its plainest form', async () => {
    const store = storeOn(t.db);
    const ids = [await insertRunning(t.pool), await insertRunning(t.pool), await insertRunning(t.pool)];
    const { loop, applied, gaveUp, statements } = loopOn(store);
    loop.addOutcome(outcomeOf(ids[0]!, 1, { result: 'FINISHED', resultText: 'first', endNow: true }));
    // An exit code no integer column holds: the whole batched statement fails on it.
    loop.addOutcome(outcomeOf(ids[1]!, 1, { result: 'CRASHED', crash: true, attempt: { exitCode: 2 ** 40 } }));
    loop.addOutcome(outcomeOf(ids[2]!, 1, { result: 'FINISHED', resultText: 'third', endNow: true }));
    await waitFor(() => applied.length === 3, { what: 'three outcomes' });
    expect(gaveUp).toEqual([]);
    // The refused batch is told as a failed write (the metrics' batch write failures).
    expect(statements.filter((s) => s.failure !== null)).toEqual([
      expect.objectContaining({ failure: 'refused', outcomes: 3, claim: false }),
    ]);
    expect(await getRow(t.pool, ids[0]!)).toMatchObject({ result: 'FINISHED', result_text: 'first', pid: null });
    expect(await getRow(t.pool, ids[2]!)).toMatchObject({ result: 'FINISHED', result_text: 'third', pid: null });
    expect(await getRow(t.pool, ids[1]!)).toMatchObject({
      result: 'FAILED',
      pid: null,
      result_text: 'the outcome of this try (CRASHED) could not be stored; the database refused it',
    });
    loop.close();
  });

  it("tells an outcome whose row is no longer this launcher's apart from one written", async () => {
    const store = storeOn(t.db);
    const mine = await insertRunning(t.pool);
    const recovered = await insertRunning(t.pool, { launcher_id: 'someone-else' });
    const { loop, applied, stale } = loopOn(store);
    loop.addOutcome(outcomeOf(mine, 1, { result: 'FINISHED', endNow: true }));
    loop.addOutcome(outcomeOf(recovered, 1, { result: 'FINISHED', endNow: true }));
    await waitFor(() => applied.length + stale.length === 2, { what: 'both outcomes' });
    expect(applied.map((a) => a.id)).toEqual([mine]);
    expect(stale.map((s) => s.id)).toEqual([recovered]);
    expect(await getRow(t.pool, recovered)).toMatchObject({ launcher_id: 'someone-else', completed_at: null });
    loop.close();
  });
});

/**
 * A try's start (its pid) waits up to `startDelayMs` for an outcome or a claim to share its
 * statement: with fresh children, a statement of its own per start nearly doubled the
 * statements per try (1.8 at c=2).
 */
describe('the start of a try', () => {
  const start = (id: string, pid: number) => ({
    id,
    tries: 1,
    pid,
    processIdentity: 'boot:2',
    threadId: null,
    startedAtMs: Date.now(),
  });

  it('rides on the statement of an outcome that comes while it waits', async () => {
    const store = storeOn(t.db);
    const [running, ended] = [await insertRunning(t.pool), await insertRunning(t.pool)];
    const { loop, started, applied, statements } = loopOn(store, { batchDelayMs: 0, startDelayMs: 60_000 });
    loop.addStart(start(running, 4242));
    loop.addOutcome(outcomeOf(ended, 1, { result: 'FINISHED', endNow: true }));
    await waitFor(() => applied.length === 1 && started.length === 1, { what: 'the outcome and the start' });
    expect(statements).toEqual([expect.objectContaining({ outcomes: 1, starts: 1, claim: false, failure: null })]);
    expect(await getRow(t.pool, running)).toMatchObject({ pid: 4242, process_identity: 'boot:2', completed_at: null });
    loop.close();
  });

  it('is written alone once startDelayMs has passed with no company', async () => {
    const store = storeOn(t.db);
    const running = await insertRunning(t.pool);
    const { loop, started, statements } = loopOn(store, { batchDelayMs: 0, startDelayMs: 300 });
    const addedAt = performance.now();
    loop.addStart(start(running, 4343));
    await waitFor(() => started.length === 1, { what: 'the start' });
    // A timer never fires early: the start waited its whole delay for company.
    expect(performance.now() - addedAt).toBeGreaterThanOrEqual(295);
    expect(statements).toEqual([expect.objectContaining({ outcomes: 0, starts: 1 })]);
    expect(await getRow(t.pool, running)).toMatchObject({ pid: 4343 });
    loop.close();
  });

  it('is written at once when the loop is flushed (shutdown)', async () => {
    const store = storeOn(t.db);
    const running = await insertRunning(t.pool);
    const { loop, started } = loopOn(store, { batchDelayMs: 0, startDelayMs: 60_000 });
    loop.addStart(start(running, 4444));
    expect(await loop.flush(10_000)).toBe(true);
    expect(started).toEqual([running]);
    loop.close();
  });
});

describe('the lease renewal beside the launch statement', () => {
  const runners = useTestRunners();
  it(
    'never deadlocks with it: renewed every 200 ms through 10,000 short tries, no error',
    { timeout: 120_000 },
    async () => {
      // Both update this launcher's running rows, in different orders: run side by side they deadlock.
      // A 600 ms lease (renewed every 200 ms): with 300 ms the lease fence's deadline left a renewal
      // 100 ms of slack, 257 of 10,000 tries were fenced on a quiet machine, each fence respawning a
      // reused child, and under a parallel test file the respawns starved the renewals until the
      // run took past 90 s.
      const runner = await runners.start(t, {
        concurrency: 16,
        leaseMs: 600,
        maxTasksPerChild: Infinity,
        spareChildren: 16,
      });
      const ids = await runner.scheduleMany(
        Array.from({ length: 10_000 }, () => ({ taskClassName: 'Sleep', options: { ms: 5 } })),
      );
      await waitFor(
        async () => {
          const { rows } = await t.pool.query(
            'SELECT count(*)::int AS n FROM task_runner_requests WHERE id = ANY($1::bigint[]) AND completed_at IS NULL',
            [ids],
          );
          return rows[0].n === 0;
        },
        { timeoutMs: 90_000, intervalMs: 200, what: 'every try to end' },
      );
      expect(runners.errors(runner).map((e) => `${e.during}: ${e.error.message}`)).toEqual([]);
      const { rows } = await t.pool.query(
        `SELECT count(*)::int AS n FROM task_runner_requests WHERE id = ANY($1::bigint[]) AND result = 'FINISHED'`,
        [ids],
      );
      expect(rows[0].n).toBe(ids.length);
      await runner.stop();
    },
  );
});
