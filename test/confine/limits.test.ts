import { describe, expect, it } from 'vitest';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Resource limits are set on the child before Node starts (prlimit, or ulimit in a shell), so
 * they bind the task from its first line. A task that goes past one is recorded with the limit
 * named: CRASHED for CPU time (SIGXCPU) and address space (V8 dies), FAILED with a note for
 * open files (EMFILE is an error the task sees and may catch).
 */
const runners = useTestRunners();
const t = useTestDatabase();

async function runOnce(task: string, options: unknown, overrides: Parameters<typeof runners.create>[1]): Promise<any> {
  const runner = await runners.start(t, overrides);
  const id = await runner.schedule(task, options, { tryLimit: 1 });
  const row = await waitForCompleted(t.pool, id, 30_000);
  await runner.stop();
  return row;
}

describe('childLimits', () => {
  it('are in place before the task runs: /proc/self/limits shows them, soft and hard', async () => {
    const row = await runOnce('Escape', {}, { childLimits: { openFiles: 200, cpuSeconds: 30, addressSpaceMb: 4096 } });
    expect(row.result).toBe('FINISHED');
    expect(JSON.parse(row.result_text).limits).toEqual({
      'Max cpu time': '30:31',
      'Max open files': '200:200',
      'Max address space': `${4096 * 1024 * 1024}:${4096 * 1024 * 1024}`,
    });
  });

  it('CPU seconds: a spinning task is CRASHED by SIGXCPU with the limit named', async () => {
    const row = await runOnce('Spin', {}, { childLimits: { cpuSeconds: 1 } });
    expect(row).toMatchObject({ result: 'CRASHED' });
    expect(row.result_text).toMatch(/killed by SIGXCPU .*CPU time limit \(1 s\) exceeded/);
  });

  it('CPU seconds: a task that ignores SIGXCPU is killed at the hard bound, one second later', async () => {
    const row = await runOnce('Spin', { ignoreXcpu: true }, { childLimits: { cpuSeconds: 1 } });
    expect(row).toMatchObject({ result: 'CRASHED' });
    expect(row.result_text).toMatch(/killed by SIGKILL.*CPU time limit's hard bound \(2 s\)/);
  });

  it('open files: the EMFILE the task meets is its error, with the limit named beside it', async () => {
    const row = await runOnce('OpenFiles', {}, { childLimits: { openFiles: 64 } });
    expect(row).toMatchObject({ result: 'FAILED' });
    expect(row.result_text).toMatch(/EMFILE/);
    expect(row.result_text).toMatch(/open files limit is 64: childLimits\.openFiles/);
  });

  it('address space: a task cannot reserve past it (its allocation fails), and the limit is named', async () => {
    const row = await runOnce('Grab', {}, { childLimits: { addressSpaceMb: 1536 } });
    // A refused ArrayBuffer is a RangeError the task sees; V8 running out itself is a crash.
    if (row.result === 'FAILED') expect(row.result_text).toMatch(/Array buffer allocation failed|RangeError/);
    else expect(row.result_text).toMatch(/address space limit \(1536 MiB\) reached/);
    // A heap growing past it: V8 dies (SIGSEGV on Node 20), CRASHED with the limit named.
    const hog = await runOnce('Hog', {}, { childLimits: { addressSpaceMb: 1536 } });
    expect(hog).toMatchObject({ result: 'CRASHED' });
    expect(hog.result_text).toMatch(/address space limit \(1536 MiB\) (probably )?reached/);
    const free = await runOnce('Grab', { maxMb: 256 }, { childLimits: { addressSpaceMb: 1536 } });
    expect(free).toMatchObject({ result: 'FINISHED', result_text: 'held 256 MiB' });
  });

  it('a task override replaces a limit; a class can only lower it', async () => {
    const runner = await runners.start(t, {
      childLimits: { openFiles: 300, cpuSeconds: 30 },
      taskOverrides: { Escape: { limits: { openFiles: 500 } } },
    });
    const overridden = await runner.schedule('Escape', {}, { tryLimit: 1 });
    // SelfConfined declares cpuSeconds 1 and openFiles 128: lower than the config's, so they hold.
    const declared = await runner.schedule('SelfConfined', { spin: true }, { tryLimit: 1 });
    const escape = await waitForCompleted(t.pool, overridden, 30_000);
    expect(JSON.parse(escape.result_text).limits).toMatchObject({
      'Max open files': '500:500',
      'Max cpu time': '30:31',
    });
    const spun = await waitForCompleted(t.pool, declared, 30_000);
    expect(spun.result_text).toMatch(/CPU time limit \(1 s\) exceeded/);
    await runner.stop();
  });

  it('with no limits set, children are plain node processes (no wrapper in between)', async () => {
    const runner = await runners.start(t, {});
    const id = await runner.schedule('Sleep', { ms: 3000 }, { tryLimit: 1 });
    const started = await runners.started(runner, id);
    const { readFileSync } = await import('node:fs');
    const argv = readFileSync(`/proc/${started.pid}/cmdline`, 'utf8').split('\0');
    expect(argv[0]).toBe(process.execPath);
    expect(argv.some((arg) => arg.includes('permission'))).toBe(false);
    await runner.stop();
  });

  it('refuses limits out of range, by field', () => {
    expect(() => runners.create(t, { childLimits: { openFiles: 10 } })).toThrow(/"childLimits.openFiles".*from 64/);
    expect(() => runners.create(t, { childLimits: { addressSpaceMb: 512 } })).toThrow(
      /"childLimits.addressSpaceMb".*from 1024/,
    );
    expect(() => runners.create(t, { childLimits: { memory: 1 } as never })).toThrow(
      /"childLimits".*unknown key "memory"/,
    );
    expect(() => runners.create(t, { taskOverrides: { X: { limits: { cpuSeconds: 0 } } } })).toThrow(
      /"taskOverrides.X.limits.cpuSeconds"/,
    );
  });
});

describe('runTaskOnce', () => {
  it('applies the same limits as a runner would', async () => {
    const { runTaskOnce } = await import('../../dist/index.js');
    const { fixturesDir } = await import('../helpers/jobs.js');
    const report = await runTaskOnce({
      tasksDir: fixturesDir,
      taskClassName: 'Spin',
      childExecArgv: [],
      childLimits: { cpuSeconds: 1 },
    });
    expect(report).toMatchObject({ outcome: 'crashed', signal: 'SIGXCPU' });
    expect((report as { text: string }).text).toMatch(/CPU time limit \(1 s\) exceeded/);
  });
});
