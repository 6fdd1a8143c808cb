import { describe, expect, it } from 'vitest';
import { useTestDatabase, getRow } from '../helpers/db.js';
import { waitForExit } from '../helpers/processes.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * A child that ends without reporting is recorded as CRASHED with its exit code or signal and
 * its stderr tail, and the request runs again while tries remain. The launcher survives.
 */
const runners = useTestRunners();

const t = useTestDatabase();

describe('crashes', () => {
  it('records process.exit as CRASHED, then finishes on a later try', async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('Exit', { code: 3, crashUntilTry: 3 });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'FINISHED', tries: 3 });
    const crashes = runners.completions(runner).filter((e) => e.id === id && e.result === 'CRASHED');
    expect(crashes.map((e) => e.tries)).toEqual([1, 2]);
    expect(crashes[0]!.resultText).toMatch(/exited with code 3 without reporting a result/);
    expect(crashes[0]!.resultText).toContain('Exit task leaving on try 1');
    expect(await getRow(t.pool, id)).toMatchObject({
      result: 'FINISHED',
      tries: 3,
      pid: null,
      result_text: 'Exit survived try 3',
    });
    await runner.stop();
  });

  it("records a SIGKILL of the row's pid as CRASHED, then finishes on a later try", async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('Sleep', { ms: 60_000, wakeOnTry: 2 });
    const started = await runners.started(runner, id);
    // The pid to kill is the one in the row, as an operator would find it.
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ pid: started.pid, tries: 1, host: runner.config.host, launcher_id: runner.launcherId });
    expect(row.process_identity).toEqual(expect.any(String));
    const crashed = runner.events.waitFor('task:completed', (e) => e.id === id && e.tries === 1, 15_000);
    const finished = finalCompletion(runner, id);
    process.kill(row.pid, 'SIGKILL');
    expect(await crashed).toMatchObject({
      result: 'CRASHED',
      ended: false,
      resultText: expect.stringMatching(/was killed by SIGKILL/),
    });
    await waitForExit(row.pid);
    expect(await finished).toMatchObject({ result: 'FINISHED', tries: 2 });
    expect(await getRow(t.pool, id)).toMatchObject({
      result: 'FINISHED',
      tries: 2,
      pid: null,
      result_text: 'awake on try 2',
    });
    await runner.stop();
  });

  it('gives up after try_limit crashes and stays healthy for the next task', async () => {
    const runner = await runners.start(t);
    const id = await runner.schedule('Exit', { code: 9 }, { tryLimit: 2 });
    expect(await finalCompletion(runner, id)).toMatchObject({ result: 'CRASHED', tries: 2, ended: true });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ result: 'CRASHED', tries: 2, pid: null });
    expect(row.completed_at).toBeInstanceOf(Date);
    const echo = await runner.schedule('Echo', { text: 'still here' });
    expect(await finalCompletion(runner, echo)).toMatchObject({ result: 'FINISHED', resultText: 'still here' });
    expect(runners.errors(runner)).toEqual([]);
    await runner.stop();
  });
});
