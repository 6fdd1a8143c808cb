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

  it("takes options as a row's YAML text, Ruby symbols included", async () => {
    const report = await runTaskOnce({ ...base, taskClassName: 'Echo', optionsYaml: '--- \n:text: from rails\n' });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'from rails' });
  });

  it('reports a failure with its stack and a crash with its exit code', async () => {
    const failed = await runTaskOnce({ ...base, taskClassName: 'Fail', options: { reason: 'by hand' } });
    expect(failed).toMatchObject({
      outcome: 'failed',
      kind: 'task',
      text: expect.stringContaining('Fail task failed on purpose: by hand'),
    });
    const crashed = await runTaskOnce({ ...base, taskClassName: 'Exit', options: { code: 4 } });
    expect(crashed).toMatchObject({ outcome: 'crashed', exitCode: 4 });
  });

  it('passes the try number to the task', async () => {
    const report = await runTaskOnce({ ...base, taskClassName: 'FailTimes', options: { succeedOnTry: 2 }, tries: 2 });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'FailTimes succeeded on try 2' });
  });

  it("gives the task's output line by line, as the launcher logs it, and passes it on as it comes", async () => {
    const seen: string[] = [];
    const report = await runTaskOnce({
      ...base,
      taskClassName: 'Chatty',
      options: { text: 'hello' },
      onOutput: (stream, line) => seen.push(`${stream}: ${line}`),
    });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'said' });
    expect(report.output).toEqual([
      { stream: 'stdout', line: 'chatty says hello' },
      { stream: 'stderr', line: 'chatty warns' },
    ]);
    expect(seen).toEqual(['stdout: chatty says hello', 'stderr: chatty warns']);
  });

  it('keeps the first MiB of output, says what it left out, and passes all of it on', async () => {
    let seenChars = 0;
    const report = await runTaskOnce({
      ...base,
      taskClassName: 'Flood',
      options: { mb: 3 },
      onOutput: (_stream, line) => void (seenChars += line.length),
    });
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'flooded 3 MiB' });
    const kept = report.output.slice(0, -1).reduce((sum, { line }) => sum + line.length, 0);
    expect(kept).toBeLessThanOrEqual(1024 * 1024);
    expect(kept).toBeGreaterThan(1000 * 1024);
    expect(report.output.at(-1)).toEqual({
      stream: 'stderr',
      line: expect.stringMatching(
        /^\[\d+ more lines \(\d+ characters\) of output not kept: runTaskOnce keeps 1048576; onOutput got them all\]$/,
      ),
    });
    expect(seenChars).toBeGreaterThan(3 * 1024 * 1024);
  });

  it('gives the output of a try that crashed too', async () => {
    const report = await runTaskOnce({ ...base, taskClassName: 'Exit', options: { code: 4 } });
    expect(report).toMatchObject({ outcome: 'crashed', exitCode: 4 });
    expect(report.output).toEqual([{ stream: 'stderr', line: 'Exit task leaving on try 1' }]);
  });

  it('refuses an unknown task name', async () => {
    await expect(runTaskOnce({ ...base, taskClassName: 'Nope' })).rejects.toMatchObject({ code: 'TASK_UNKNOWN' });
  });
});
