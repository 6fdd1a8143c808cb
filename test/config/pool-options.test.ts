import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStandaloneConfig } from '../../dist/config/config-file.js';
import { resolveRunnerConfig, type RunnerOptions } from '../../dist/config/runner-config.js';
import { TaskRunnerError } from '../../dist/index.js';

/** The pool options: their defaults, what they accept, and errors that name the setting. */
const base = { db: 'postgres://unused', tasksDir: '.' };
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cwtr-pool-options-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function refusal(options: Partial<RunnerOptions>): TaskRunnerError {
  try {
    resolveRunnerConfig({ ...base, ...options } as RunnerOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(TaskRunnerError);
    return error as TaskRunnerError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('pool options', () => {
  it('has the documented defaults', () => {
    const config = resolveRunnerConfig(base);
    expect(config).toMatchObject({
      spareChildren: 1,
      maxTasksPerChild: 1,
      childMaxRssMb: null,
      childIdleMs: 30_000,
      defaultMode: 'process',
      defaultTimeoutMs: null,
      taskOverrides: {},
      crashLimit: 3,
      threads: {
        idleTimeoutMs: 30_000,
        maxOldGenerationSizeMb: null,
        maxYoungGenerationSizeMb: null,
        stackSizeMb: null,
      },
    });
    expect(config.threads.maxThreads).toBeGreaterThanOrEqual(1);
  });

  it('accepts Infinity for maxTasksPerChild, and per-task overrides', () => {
    const config = resolveRunnerConfig({
      ...base,
      maxTasksPerChild: Infinity,
      taskOverrides: { 'Mail::Send': { mode: 'thread', timeoutMs: 500 }, Slow: { timeoutMs: null } },
      threads: { maxThreads: 3, maxOldGenerationSizeMb: 64 },
    });
    expect(config.maxTasksPerChild).toBe(Infinity);
    expect(config.taskOverrides).toEqual({
      'Mail::Send': { mode: 'thread', timeoutMs: 500 },
      Slow: { timeoutMs: null },
    });
    expect(config.threads).toMatchObject({ maxThreads: 3, maxOldGenerationSizeMb: 64 });
  });

  it('refuses bad values, naming the setting', () => {
    const cases: [Partial<RunnerOptions>, RegExp][] = [
      [{ maxTasksPerChild: 0 }, /maxTasksPerChild/],
      [{ maxTasksPerChild: 1.5 }, /maxTasksPerChild/],
      [{ spareChildren: -1 }, /spareChildren/],
      [{ childMaxRssMb: 1 }, /childMaxRssMb/],
      [{ crashLimit: 0 }, /crashLimit/],
      [{ defaultMode: 'cluster' as never }, /defaultMode.*"process" or "thread"/],
      [{ defaultTimeoutMs: 0 }, /defaultTimeoutMs/],
      [{ taskOverrides: { Echo: { mode: 'fiber' as never } } }, /taskOverrides\.Echo\.mode/],
      [{ taskOverrides: { Echo: { retries: 3 } as never } }, /taskOverrides\.Echo.*unknown key "retries"/],
      [{ taskOverrides: { Echo: { timeoutMs: -5 } } }, /taskOverrides\.Echo\.timeoutMs/],
      [{ threads: { maxThreads: 0 } }, /threads\.maxThreads/],
      [{ threads: { heapMb: 10 } as never }, /threads.*unknown key "heapMb"/],
    ];
    for (const [options, pattern] of cases) {
      const error = refusal(options);
      expect(error.code).toBe('CONFIG_INVALID');
      expect(error.message).toMatch(pattern);
    }
  });

  it('reads the pool options from a config file, `.inf` included, and validates them before start', async () => {
    const cwd = await mkdtemp(path.join(dir, 'file-'));
    await writeFile(
      path.join(cwd, 'cw-task-runner.yml'),
      [
        'spareChildren: 2',
        'maxTasksPerChild: .inf',
        'childMaxRssMb: 512',
        'childIdleMs: 1000',
        'defaultMode: process',
        'defaultTimeoutMs: 60000',
        'taskOverrides: { Report: { mode: thread, timeoutMs: 5000 } }',
        'threads: { maxThreads: 2, maxOldGenerationSizeMb: 128 }',
        'crashLimit: 4',
      ].join('\n'),
    );
    const config = await loadStandaloneConfig({ cwd, env: {} });
    expect(config.runner).toMatchObject({
      spareChildren: 2,
      maxTasksPerChild: Infinity,
      childMaxRssMb: 512,
      childIdleMs: 1000,
      defaultMode: 'process',
      defaultTimeoutMs: 60000,
      taskOverrides: { Report: { mode: 'thread', timeoutMs: 5000 } },
      threads: { maxThreads: 2, maxOldGenerationSizeMb: 128 },
      crashLimit: 4,
    });
    await writeFile(path.join(cwd, 'cw-task-runner.yml'), 'taskOverrides: { Report: { mode: turbo } }\n');
    await expect(loadStandaloneConfig({ cwd, env: {} })).rejects.toThrow(/taskOverrides\.Report\.mode/);
  });
});
