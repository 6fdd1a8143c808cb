import { describe, expect, it } from 'vitest';
import { getRow, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * PostgreSQL text cannot hold a NUL byte. A task's result or error holding one must be stored
 * (with each NUL shown as U+FFFD) and must cost no other row its outcome: outcomes written in
 * the same batch land as usual, at once, with no failed write.
 */
const runners = useTestRunners();
const t = useTestDatabase();

describe('texts PostgreSQL cannot store as they are', () => {
  it('stores a result holding NUL bytes, and the outcomes beside it land at once', async () => {
    const runner = await runners.start(t, { concurrency: 4, maxTasksPerChild: Infinity, spareChildren: 0 });
    const poison = await runner.schedule('Nul', {});
    const others = await Promise.all(
      Array.from({ length: 12 }, (_, i) => runner.schedule('Echo', { text: `ok ${i}` })),
    );
    for (const id of others) expect(await waitForCompleted(t.pool, id, 10_000)).toMatchObject({ result: 'FINISHED' });
    expect(await waitForCompleted(t.pool, poison, 10_000)).toMatchObject({
      result: 'FINISHED',
      result_text: 'before\uFFFDafter\uFFFD',
      tries: 1,
      pid: null,
    });
    expect(runners.errors(runner).map((e) => `${e.during}: ${e.error.message}`)).toEqual([]);
    await runner.stop();
  });

  it("stores an error message holding NUL bytes as the FAILED try's text, in the row and the history", async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('Nul', { throw: true }, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id, 10_000);
    expect(row).toMatchObject({ result: 'FAILED', tries: 1, pid: null });
    expect(row.result_text).toContain('bad before\uFFFDafter\uFFFD');
    const history = await waitFor(async () => {
      const { rows } = await t.pool.query(
        'SELECT result, result_text FROM task_runner_requests_attempts WHERE request_id = $1',
        [id],
      );
      return rows[0];
    });
    expect(history.result_text).toContain('bad before\uFFFDafter\uFFFD');
    expect(runners.errors(runner)).toEqual([]);
    await runner.stop();
    expect(await getRow(t.pool, id)).toMatchObject({ result: 'FAILED' });
  });
});
