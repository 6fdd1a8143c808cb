import { describe, expect, it } from 'vitest';
import { getRow, insertRequest, useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Rows a careless INSERT can make: each is dealt with once, with a reason, and costs the runner
 * nothing else (no failing claim pass, no megabytes loaded into the launcher).
 */
const runners = useTestRunners();
const t = useTestDatabase();

const attempt = async (id: string) =>
  (await t.pool.query('SELECT * FROM task_runner_requests_attempts WHERE request_id = $1', [id])).rows[0];

describe('odd rows', () => {
  it('a row delayed until infinity waits for ever without failing any claim pass', async () => {
    const runner = await runners.start(t);
    const never = await insertRequest(t.pool, { task_class_name: 'Echo', delay_until: 'infinity' as unknown as Date });
    const id = await runner.schedule('Echo', { text: 'ran' });
    expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'FINISHED' });
    // Two idle passes after the row exists: each looked for the nearest delay.
    await runner.events.waitFor('runner:idle', () => true, 10_000);
    await runner.events.waitFor('runner:idle', () => true, 10_000);
    expect(runners.errors(runner).map((e) => e.error.message)).toEqual([]);
    expect(await getRow(t.pool, never)).toMatchObject({ pid: null, completed_at: null, tries: 0 });
    await runner.stop();
  });

  it('a row whose try_limit leaves no try is ended FAILED with the reason, by the next probe', async () => {
    const runner = await runners.start(t, { probeIntervalMs: 300 });
    const zero = await insertRequest(t.pool, { task_class_name: 'Echo', try_limit: 0 });
    const negative = await insertRequest(t.pool, { task_class_name: 'Echo', try_limit: -3 });
    for (const [id, limit] of [
      [zero, 0],
      [negative, -3],
    ] as const) {
      const row = await waitForCompleted(t.pool, id, 10_000);
      expect(row).toMatchObject({ result: 'FAILED', tries: 0, pid: null });
      expect(row.result_text).toBe(`no try left: try_limit is ${limit} and tries is 0`);
    }
    await runner.stop();
  });

  it('echoes no more than the start of an unknown task name of a megabyte', async () => {
    const runner = await runners.start(t);
    const id = await insertRequest(t.pool, { task_class_name: 'X'.repeat(1024 * 1024), try_limit: 1 });
    const row = await waitForCompleted(t.pool, id);
    expect(row.result).toBe('FAILED');
    expect(row.result_text).toMatch(/^unknown task class "X{100}… \(1048576 characters\)"/);
    expect(row.result_text.length).toBeLessThan(4_000);
    await runner.stop();
  });

  it('refuses options over maxOptionsBytes by their length, without loading them or starting a child', async () => {
    const runner = await runners.start(t, { maxOptionsBytes: 1024 });
    const id = await insertRequest(t.pool, {
      task_class_name: 'Echo',
      options: `--- ${'x'.repeat(10 * 1024 * 1024)}`,
      try_limit: 5,
    });
    const row = await waitForCompleted(t.pool, id);
    expect(row).toMatchObject({ result: 'FAILED', tries: 1 });
    expect(row.result_text).toBe(
      'options are 10485764 bytes, over the limit of 1024 bytes (maxOptionsBytes); the request cannot run',
    );
    expect(await attempt(id)).toMatchObject({ result: 'FAILED', mode: null });
    await runner.stop();
  });
});

describe('leases of another host', () => {
  it('are recovered within the lease and one check, not at the next pid probe', async () => {
    const runner = await runners.start(t, { leaseMs: 1_000, probeIntervalMs: 60_000 });
    const id = await insertRequest(t.pool, {
      task_class_name: 'Echo',
      options: { text: 'recovered' },
      pid: 4242,
      host: 'another-host',
      launcher_id: 'gone',
      tries: 1,
      started_at: new Date(),
      lease_expires_at: new Date(Date.now() + 300),
    });
    const row = await waitFor(
      async () => {
        const r = await getRow(t.pool, id);
        return r.host !== 'another-host' ? r : null;
      },
      { timeoutMs: 4_000, intervalMs: 50, what: 'the row to be recovered' },
    );
    expect(row.host).not.toBe('another-host');
    expect(await waitForCompleted(t.pool, id)).toMatchObject({
      result: 'FINISHED',
      result_text: 'recovered',
      crashes: 1,
    });
    await runner.stop();
  });
});
