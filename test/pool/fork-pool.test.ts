import { describe, expect, it } from 'vitest';
import type { ForkPool, ForkPoolParams } from '../../dist/pool/fork-pool.js';
import { waitFor } from '../helpers/db.js';
import { jobFor } from '../helpers/jobs.js';
import { useTestPools } from '../helpers/pools.js';
import { isAlive } from '../helpers/processes.js';

const pools = useTestPools();
const createPool = (params: Partial<ForkPoolParams> = {}): ForkPool => pools.create(params);
const run = pools.run;

describe('ForkPool', () => {
  it('runs a fixture task in a real child and reports it finished', async () => {
    const pool = createPool();
    const attempt = run(pool, await jobFor('Echo', { text: 'hello from a child' }));
    const report = await attempt.report;
    expect(report).toEqual({
      outcome: 'finished',
      pid: expect.any(Number),
      threadId: null,
      peakMemoryBytes: expect.any(Number),
      resultText: 'hello from a child',
    });
    const start = attempt.start();
    expect(start).toMatchObject({ pid: report.pid, threadId: null, mode: 'fresh', startedAt: expect.any(Date) });
    expect(report.pid).not.toBe(process.pid);
    if (process.platform === 'linux') expect(start!.processIdentity).toMatch(/^[0-9a-f-]+:\d+$/);
  });

  it('runs a nested task and hands it the request', async () => {
    const pool = createPool();
    const report = await run(pool, await jobFor('Nested::Inner', { text: 'deep' })).report;
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'inner: deep' });
    const retried = await run(pool, await jobFor('FailTimes', { succeedOnTry: 3 }, { tries: 3 })).report;
    expect(retried).toMatchObject({ outcome: 'finished', resultText: 'FailTimes succeeded on try 3' });
  });

  it('runs a task module with a top-level await and a CommonJS task file whose module.exports is the class', async () => {
    // The runtime takes task files with require() where Node can (see tasks/load-task.ts); a
    // top-level await makes require() refuse before any of the module runs, and import() takes over.
    const awaited = await run(createPool(), await jobFor('Awaited', {})).report;
    expect(awaited).toMatchObject({ outcome: 'finished', resultText: 'settled at load' });
    const plain = await run(createPool(), await jobFor('PlainCommonJs', { text: 'hi' })).report;
    expect(plain).toMatchObject({ outcome: 'finished', resultText: 'commonjs: hi' });
  });

  it('reports a throwing task as failed, with the error and its stack', async () => {
    const report = await run(createPool(), await jobFor('Fail', { reason: 'testing' })).report;
    expect(report).toMatchObject({ outcome: 'failed', kind: 'task' });
    if (report.outcome !== 'failed') throw new Error('unreachable');
    expect(report.text).toContain('Error: Fail task failed on purpose: testing');
    expect(report.text).toMatch(/\n\s+at .*Fail\.mjs:\d+/);
  });

  it('reports an exception thrown outside run() as failed', async () => {
    const report = await run(createPool(), await jobFor('Fail', { reason: 'async', later: true })).report;
    expect(report).toMatchObject({ outcome: 'failed', kind: 'task' });
    if (report.outcome !== 'failed') throw new Error('unreachable');
    expect(report.text).toMatch(/uncaught exception: Error: Fail task failed on purpose: async/);
  });

  it('reports process.exit(3) as crashed with exit code 3 and the stderr tail', async () => {
    const report = await run(createPool(), await jobFor('Exit', { code: 3 })).report;
    expect(report).toMatchObject({ outcome: 'crashed', exitCode: 3, signal: null });
    if (report.outcome !== 'crashed') throw new Error('unreachable');
    expect(report.stderrTail).toContain('Exit task leaving on try 1');
    expect(report.text).toMatch(/exited with code 3 without reporting a result/);
  });

  it('reports a SIGKILLed child as crashed with signal SIGKILL', async () => {
    const pool = createPool();
    const attempt = run(pool, await jobFor('Sleep', { ms: 60_000 }), {
      // Killed mid-task: once the task has said it sleeps.
      onOutput: (_stream, line) => {
        if (line.startsWith('sleeping pid=')) process.kill(Number(line.slice('sleeping pid='.length)), 'SIGKILL');
      },
    });
    const report = await attempt.report;
    expect(report).toMatchObject({ outcome: 'crashed', exitCode: null, signal: 'SIGKILL', pid: attempt.start()!.pid });
    if (report.outcome !== 'crashed') throw new Error('unreachable');
    expect(report.text).toMatch(/was killed by SIGKILL/);
    expect(attempt.lines).toContain(`stdout: sleeping pid=${report.pid}`);
  });

  it('never has more children alive than its concurrency', async () => {
    const pool = createPool({ concurrency: 2 });
    const started: number[] = [];
    const aliveAtStart: number[] = [];
    const jobs = await Promise.all([1, 2, 3, 4, 5].map(() => jobFor('Sleep', { ms: 300 })));
    const reports = jobs.map(
      (job) =>
        run(pool, job, {
          onStart: ({ pid }) => {
            started.push(pid);
            aliveAtStart.push(started.filter(isAlive).length);
            expect(pool.pids.length).toBeLessThanOrEqual(2);
          },
        }).report,
    );
    expect(pool.busy).toBe(5);
    expect(pool.freeSlots).toBe(0);
    const done = await Promise.all(reports);
    expect(done.map((r) => r.outcome)).toEqual(Array(5).fill('finished'));
    expect(started).toHaveLength(5);
    expect(new Set(started).size).toBe(5); // one fresh process per try
    expect(Math.max(...aliveAtStart)).toBe(2);
    // A slot is held until its child has exited, which may be just after the report.
    await waitFor(() => pool.busy === 0, { timeoutMs: 5_000, what: 'every slot to be free' });
    expect(pool.freeSlots).toBe(2);
  });

  it('fails a task whose file exports no task class', async () => {
    const report = await run(createPool(), await jobFor('BadExport')).report;
    expect(report).toMatchObject({ outcome: 'failed', kind: 'load' });
    if (report.outcome !== 'failed') throw new Error('unreachable');
    expect(report.text).toMatch(/does not export a task class for "BadExport"/);
  });

  it('reads YAML options with the parser bundled beside the child runtime, and plain ones with none', async () => {
    const pool = createPool();
    const loaded = async (options: unknown): Promise<{ options: unknown; loaded: string[] }> => {
      const report = await run(pool, await jobFor('YamlLoaded', options)).report;
      if (report.outcome !== 'finished') throw new Error(`YamlLoaded did not finish: ${JSON.stringify(report)}`);
      return JSON.parse(report.resultText!);
    };
    // A nested map is beyond the plain-options path: the child needs the parser, and loads the
    // one-file bundle (about 12 ms of CPU), not the package's forty modules (about 45 ms).
    const nested = await loaded({ url: 'https://example.com/a?b=1', list: [1, 2.5], deep: { x: 'y' } });
    expect(nested.options).toEqual({ url: 'https://example.com/a?b=1', list: [1, 2.5], deep: { x: 'y' } });
    expect(nested.loaded).toHaveLength(1);
    expect(nested.loaded[0]).toMatch(/[/\\]dist[/\\]pool[/\\]runtime[/\\]yaml\.cjs$/);
    // No options and flat plain ones need no parser at all.
    expect(await loaded({})).toEqual({ options: {}, loaded: [] });
    expect(await loaded({ created_from: 'a shell', ms: 5 })).toEqual({
      options: { created_from: 'a shell', ms: 5 },
      loaded: [],
    });
  });

  // Node before 20.16 has no process.getBuiltinModule: the runtime then imports the built-ins.
  const requireLoadsEsm = (process.features as { require_module?: boolean }).require_module === true;
  it.skipIf(!('getBuiltinModule' in process) || !requireLoadsEsm)(
    'starts a child for one try with no socket, stream, perf_hooks or async module loader loaded (a bare node loads none)',
    async () => {
      // An ES import of node:fs alone loads the streams (its lazy getters run), and a net.Socket on
      // fd 3 loads net: each cost a fresh child milliseconds of CPU (see shared/builtins.ts). A
      // runtime that is an ES module, or a task file taken with import(), starts the asynchronous
      // module loader with fs/promises (see scripts/bundle-child-runtime.mjs and tasks/load-task.ts).
      const report = await run(createPool(), await jobFor('BuiltinsLoaded', {})).report;
      expect(report).toMatchObject({ outcome: 'finished' });
      if (report.outcome !== 'finished') throw new Error('unreachable');
      expect(JSON.parse(report.resultText!)).toEqual([]);
    },
  );

  it('fails invalid options in the child, as a permanent kind', async () => {
    const report = await run(createPool(), await jobFor('Echo', {}, { optionsYaml: '--- !ruby/object:Foo\nbar: 1\n' }))
      .report;
    expect(report).toMatchObject({ outcome: 'failed', kind: 'options' });
    if (report.outcome !== 'failed') throw new Error('unreachable');
    expect(report.text).toMatch(/Ruby object tag !ruby\/object:Foo is not supported/);
  });

  it('fails a result over maxResultBytes explicitly instead of storing it', async () => {
    const report = await run(createPool(), await jobFor('HugeResult', { bytes: 5_000 }, { maxResultBytes: 1_000 }))
      .report;
    expect(report).toMatchObject({ outcome: 'failed', kind: 'result' });
    if (report.outcome !== 'failed') throw new Error('unreachable');
    expect(report.text).toMatch(/task result is 5000 bytes, over the limit of 1000 bytes/);
    const fits = await run(createPool(), await jobFor('HugeResult', { bytes: 900 }, { maxResultBytes: 1_000 })).report;
    expect(fits).toMatchObject({ outcome: 'finished', resultText: 'x'.repeat(900) });
  });

  it('close() terminates running children with SIGTERM', async () => {
    const pool = createPool();
    let sleeping!: () => void;
    const asleep = new Promise<void>((resolve) => {
      sleeping = resolve;
    });
    const attempt = run(pool, await jobFor('Sleep', { ms: 60_000 }), { onOutput: () => sleeping() });
    await asleep;
    await pool.close();
    expect(await attempt.report).toMatchObject({ outcome: 'crashed', signal: 'SIGTERM' });
    expect(await pool.drain(1_000)).toBe(true);
    expect(isAlive(attempt.start()!.pid)).toBe(false);
  });

  it('close() escalates to SIGKILL when a child ignores SIGTERM', async () => {
    const pool = createPool({ killTimeoutMs: 300 });
    let ignoring!: () => void;
    const ready = new Promise<void>((resolve) => {
      ignoring = resolve;
    });
    const attempt = run(pool, await jobFor('IgnoreTerm'), {
      onOutput: (_stream, line) => {
        if (line.startsWith('ignoring SIGTERM')) ignoring();
      },
    });
    await ready;
    await pool.close();
    expect(await attempt.report).toMatchObject({ outcome: 'crashed', signal: 'SIGKILL' });
    expect(attempt.lines).toContain('stdout: SIGTERM ignored');
  });

  it('after close(), queued tries resolve as crashed without starting', async () => {
    const pool = createPool({ concurrency: 1 });
    const first = run(pool, await jobFor('Sleep', { ms: 60_000 }));
    const queued = run(pool, await jobFor('Echo', { text: 'never' }));
    await pool.close();
    expect(await first.report).toMatchObject({ outcome: 'crashed' });
    expect(await queued.report).toMatchObject({
      outcome: 'crashed',
      pid: null,
      text: 'pool closed before the task started',
    });
    expect(queued.start()).toBeNull();
  });
});
