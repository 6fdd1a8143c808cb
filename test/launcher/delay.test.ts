import { describe, expect, it } from 'vitest';
import { useTestDatabase, getRow, insertRequest } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/** delay_until holds a request back, and a timer for the nearest one wakes the launcher. */
const runners = useTestRunners();

const t = useTestDatabase();

describe('delay_until', () => {
  it('does not start a request before its delay_until, and starts it soon after without polling', async () => {
    // Polling is off (60 s): only the delay timer can explain a start within seconds.
    const runner = await runners.start(t, { pollIntervalMs: 60_000 });
    const id = await runner.schedule('Echo', { text: 'later' }, { delayMs: 1_500 });
    const scheduled = await getRow(t.pool, id);
    expect(scheduled.delay_until).toBeInstanceOf(Date);

    expect(await finalCompletion(runner, id, 10_000)).toMatchObject({ result: 'FINISHED', resultText: 'later' });
    const row = await getRow(t.pool, id);
    expect(row.started_at.getTime()).toBeGreaterThanOrEqual(scheduled.delay_until.getTime());
    expect(row.started_at.getTime() - scheduled.delay_until.getTime()).toBeLessThan(5_000);
    await runner.stop();
  });

  it('leaves a far-future request alone while running others', async () => {
    const runner = await runners.start(t);
    const future = await insertRequest(t.pool, {
      options: { text: 'tomorrow' },
      delay_until: new Date(Date.now() + 86_400_000),
    });
    const now = await runner.schedule('Echo', { text: 'now' });
    await finalCompletion(runner, now);
    expect(await getRow(t.pool, future)).toMatchObject({ pid: null, tries: 0, started_at: null, result: null });
    expect((await runner.status()).counts).toMatchObject({ delayed: 1, finished: 1 });
    await runner.stop();
  });

  it('treats a delay_until in the past as runnable now', async () => {
    const runner = await runners.start(t);
    const id = await insertRequest(t.pool, {
      options: { text: 'overdue' },
      delay_until: new Date(Date.now() - 60_000),
    });
    expect(await finalCompletion(runner, id, 10_000)).toMatchObject({ result: 'FINISHED', resultText: 'overdue' });
    await runner.stop();
  });
});
