import { describe, expect, it } from 'vitest';
import { runTaskOnce } from '../../dist/index.js';
import { childEnv, fixturesDir } from '../helpers/jobs.js';

/** The helper that runs one task exactly as the launcher would, child process included, no database. */
const base = { tasksDir: fixturesDir, childEnv, childExecArgv: [] };

describe('runTaskOnce', () => {
  it('runs a task in a child and returns its result', async () => {
    const report = await runTaskOnce({ ...base, taskClassName: 'Echo', options: { text: 'once' } });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'once' });
    expect(report.pid).not.toBe(process.pid);
  });

  it('takes options as a row\'s YAML text, Ruby symbols included', async () => {
    const report = await runTaskOnce({ ...base, taskClassName: 'Echo', optionsYaml: '--- \n:text: from rails\n' });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'from rails' });
  });

  it('reports a failure with its stack and a crash with its exit code', async () => {
    const failed = await runTaskOnce({ ...base, taskClassName: 'Fail', options: { reason: 'by hand' } });
    expect(failed).toMatchObject({ outcome: 'failed', kind: 'task', text: expect.stringContaining('Fail task failed on purpose: by hand') });
    const crashed = await runTaskOnce({ ...base, taskClassName: 'Exit', options: { code: 4 } });
    expect(crashed).toMatchObject({ outcome: 'crashed', exitCode: 4 });
  });

  it('passes the try number to the task', async () => {
    const report = await runTaskOnce({ ...base, taskClassName: 'FailTimes', options: { succeedOnTry: 2 }, tries: 2 });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'FailTimes succeeded on try 2' });
  });

  it('refuses an unknown task name', async () => {
    await expect(runTaskOnce({ ...base, taskClassName: 'Nope' })).rejects.toMatchObject({ code: 'TASK_UNKNOWN' });
  });
});
