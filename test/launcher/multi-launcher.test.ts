import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, insertRequests, waitFor, type TestDatabase } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Several launchers share one table: every request runs exactly once. Each Ledger task writes a
 * row naming its request into `ledger`, so a request run twice, or never, shows there.
 */
const runners = useTestRunners();
// At least 1000 by default; CWTR_LEDGER_TASKS changes it for a quick local run.
const taskCount = Number(process.env.CWTR_LEDGER_TASKS ?? 1_000);

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await t.pool.query(
    'CREATE TABLE ledger (request_id bigint NOT NULL, pid integer NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())',
  );
});
afterAll(async () => {
  await t?.drop();
});
beforeEach(async () => {
  await t.pool.query('TRUNCATE task_runner_requests, ledger');
});

/**
 * Waits until no request is left unfinished. Throughput depends on the machine and its load, so
 * the limit is on progress: it fails once nothing has completed for `stallMs`.
 */
async function waitForAllCompleted(stallMs = 60_000): Promise<void> {
  let remaining = Number.POSITIVE_INFINITY;
  let lastProgress = Date.now();
  await waitFor(
    async () => {
      const { rows } = await t.pool.query(
        'SELECT count(*)::int AS n FROM task_runner_requests WHERE completed_at IS NULL',
      );
      const now: number = rows[0].n;
      if (now < remaining) lastProgress = Date.now();
      remaining = now;
      if (Date.now() - lastProgress > stallMs)
        throw new Error(`no request completed for ${stallMs} ms; ${remaining} left`);
      return remaining === 0;
    },
    { timeoutMs: 1_200_000, intervalMs: 250, what: `${taskCount} Ledger requests to complete` },
  );
}

async function runShared(launchers: number): Promise<void> {
  // Rows first, then launchers started together: they race for the same rows from the start.
  const ids = await insertRequests(t.pool, taskCount, {
    task_class_name: 'Ledger',
    options: { url: t.url },
    try_limit: 1,
  });
  expect(ids).toHaveLength(taskCount);
  const all = Array.from({ length: launchers }, () => runners.create(t, { concurrency: 2 }));
  const claimedBy = new Map<string, number>();
  for (const runner of all) {
    runner.events.on('task:claimed', ({ ids: claimed }) => {
      for (const id of claimed) claimedBy.set(id, (claimedBy.get(id) ?? 0) + 1);
    });
  }
  await Promise.all(all.map((runner) => runner.start()));

  await waitForAllCompleted();
  await Promise.all(all.map((runner) => runner.stop()));

  const unfinished = await t.pool.query(`SELECT id, result, tries, result_text FROM task_runner_requests
    WHERE result IS DISTINCT FROM 'FINISHED' OR tries <> 1 ORDER BY id LIMIT 5`);
  expect(unfinished.rows).toEqual([]);
  const ledger = await t.pool.query(`SELECT count(*)::int AS entries, count(DISTINCT request_id)::int AS requests,
    count(*) FILTER (WHERE request_id NOT IN (SELECT id FROM task_runner_requests))::int AS strangers FROM ledger`);
  expect(ledger.rows[0]).toEqual({ entries: taskCount, requests: taskCount, strangers: 0 });
  expect(claimedBy.size).toBe(taskCount);
  expect([...claimedBy.values()].every((n) => n === 1)).toBe(true);
  // Every launcher took part.
  const perLauncher = await t.pool.query('SELECT launcher_id, count(*)::int AS n FROM task_runner_requests GROUP BY 1');
  expect(perLauncher.rows).toHaveLength(launchers);
  expect(all.flatMap((runner) => runners.errors(runner))).toEqual([]);
}

describe('launchers sharing a table', () => {
  it(`2 launchers run ${taskCount} requests exactly once`, { timeout: 1_260_000 }, async () => {
    await runShared(2);
  });

  it(`4 launchers run ${taskCount} requests exactly once`, { timeout: 1_260_000 }, async () => {
    await runShared(4);
  });
});
