import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile, loadStandaloneConfig, type ConfigFileOptions } from '../../dist/config/config-file.js';
import type { ChildLimits, ChildPermissions } from '../../dist/config/confinement.js';
import {
  configFileSpecs,
  dashboardSpecs,
  embeddedSpecs,
  launcherOptionSpecs,
  metricsSpecs,
  retryBackoffSpecs,
  runnerOptionSpecs,
  startRetrySpecs,
  taskOverrideSpecs,
  threadSpecs,
  type ConfigFileKey,
  type FieldSpec,
} from '../../dist/config/option-specs.js';
import type { RecurringEntryOptions } from '../../dist/config/recurring-config.js';
import type { RetentionOptions } from '../../dist/config/retention-config.js';
import { resolveRunnerConfig } from '../../dist/config/runner-config.js';
import type {
  CreateRunnerOptions,
  RetryBackoffOptions,
  StartRetryOptions,
  TaskOverride,
  ThreadOptions,
} from '../../dist/config/runner-options.js';
import { TaskRunnerError } from '../../dist/index.js';

/** The option table against the types it describes, what resolution and the config file do, and the docs page. */

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const base = { db: 'postgres://unused', tasksDir: '.' };

/** `true` only when A and B are the same set of keys; anything else fails to compile where it is assigned `true`. */
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cwtr-option-specs-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusal(promise: Promise<unknown>): Promise<TaskRunnerError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskRunnerError);
  return error as TaskRunnerError;
}

/** The keys an error's `allowed: a, b, c` names. */
function allowedIn(message: string): string[] {
  const match = /allowed: (.*)$/.exec(message);
  expect(match, message).not.toBeNull();
  return match![1]!.split(', ');
}

describe('the option table', () => {
  it('has one spec per option of each options type, and no other (checked when the tests compile)', () => {
    const checks: boolean[] = [
      true satisfies SameKeys<keyof CreateRunnerOptions, keyof typeof runnerOptionSpecs>,
      true satisfies SameKeys<keyof ConfigFileOptions, ConfigFileKey>,
      true satisfies SameKeys<keyof RetryBackoffOptions, keyof typeof retryBackoffSpecs>,
      true satisfies SameKeys<keyof StartRetryOptions, keyof typeof startRetrySpecs>,
      true satisfies SameKeys<keyof ThreadOptions, keyof typeof threadSpecs>,
      true satisfies SameKeys<keyof TaskOverride, keyof typeof taskOverrideSpecs>,
      true satisfies SameKeys<keyof RetentionOptions, keyof typeof runnerOptionSpecs.retention.fields>,
      true satisfies SameKeys<keyof RecurringEntryOptions, keyof typeof runnerOptionSpecs.recurring.fields>,
      true satisfies SameKeys<keyof ChildLimits, keyof typeof runnerOptionSpecs.childLimits.fields>,
      true satisfies SameKeys<keyof ChildPermissions, keyof typeof runnerOptionSpecs.childPermissions.fields>,
      true satisfies SameKeys<keyof NonNullable<ConfigFileOptions['embedded']>, keyof typeof embeddedSpecs>,
      true satisfies SameKeys<keyof NonNullable<ConfigFileOptions['dashboard']>, keyof typeof dashboardSpecs>,
      true satisfies SameKeys<keyof NonNullable<ConfigFileOptions['metrics']>, keyof typeof metricsSpecs>,
    ];
    expect(checks.every(Boolean)).toBe(true);
  });

  it('documents every option on the options type it lists', async () => {
    const source = await readFile(path.join(root, 'src', 'config', 'runner-options.ts'), 'utf8');
    const undocumented = Object.keys(runnerOptionSpecs).filter(
      (name) => !new RegExp(`\\*/\\n\\s+${name}\\??:`).test(source),
    );
    expect(undocumented).toEqual([]);
  });

  it('gives every setting a description and a default the docs can show', () => {
    const all: [string, FieldSpec][] = [];
    for (const [key, spec] of configFileSpecs()) {
      all.push([key, spec]);
      for (const [name, field] of Object.entries(spec.fields ?? {})) all.push([`${key}.${name}`, field]);
    }
    for (const [name, spec] of all) {
      expect(spec.description.length, name).toBeGreaterThan(0);
      expect(spec.default !== undefined || spec.defaultText !== undefined, name).toBe(true);
    }
  });

  it('holds the defaults resolution fills in', () => {
    const config = resolveRunnerConfig(base) as unknown as Record<string, unknown>;
    const plain = Object.entries(runnerOptionSpecs as Record<string, FieldSpec>).filter(
      ([name, spec]) =>
        spec.default !== undefined &&
        spec.defaultText === undefined &&
        name in config &&
        ['integer', 'integerOrNull', 'integerOrInfinity', 'mode', 'logLevel', 'stringsOrNull'].includes(spec.kind),
    );
    expect(plain.length).toBeGreaterThan(15);
    for (const [name, spec] of plain) expect(config[name], name).toEqual(spec.default);
    const threads = config.threads as Record<string, unknown>;
    for (const name of ['idleTimeoutMs', 'maxYoungGenerationSizeMb', 'stackSizeMb'] as const) {
      expect(threads[name], name).toBe(threadSpecs[name].default);
    }
    expect(config.retryBackoff).toEqual({
      baseMs: retryBackoffSpecs.baseMs.default,
      maxMs: retryBackoffSpecs.maxMs.default,
    });
    expect(config.retention).toMatchObject({
      intervalMs: runnerOptionSpecs.retention.fields.intervalMs.default,
      batchSize: runnerOptionSpecs.retention.fields.batchSize.default,
      maxBatchesPerRun: runnerOptionSpecs.retention.fields.maxBatchesPerRun.default,
      pruneAdopted: runnerOptionSpecs.retention.fields.pruneAdopted.default,
    });
  });

  it('holds the bounds resolution checks', () => {
    for (const name of ['leaseMs', 'concurrency', 'prefetch', 'spareChildren', 'crashLimit'] as const) {
      const spec: FieldSpec = runnerOptionSpecs[name];
      const below = (spec.min ?? 0) - 1;
      expect(() => resolveRunnerConfig({ ...base, [name]: below }), name).toThrow(name);
      expect(resolveRunnerConfig({ ...base, [name]: spec.min })[name], name).toBe(spec.min);
    }
  });
});

describe('the config file takes its keys from the table', () => {
  async function file(text: string): Promise<string> {
    const sub = await mkdtemp(path.join(dir, 'file-'));
    const target = path.join(sub, 'cw-task-runner.yml');
    await writeFile(target, text);
    return target;
  }

  it('accepts every top-level key of the table and names them all when it refuses one', async () => {
    const error = await refusal(loadConfigFile(await file('nope: 1\n')));
    expect(error.message).toMatch(/unknown key "nope"/);
    expect(allowedIn(error.message)).toEqual([...configFileSpecs().keys()]);
    const launcherKeys = Object.values(launcherOptionSpecs).map((spec) => spec.fileKey);
    expect(allowedIn(error.message)).toEqual(expect.arrayContaining(launcherKeys));
  });

  it('refuses an unknown key inside each map, naming the keys the table gives it', async () => {
    const maps: [string, string, Record<string, unknown>][] = [
      ['retryBackoff', 'retryBackoff: { nope: 1 }', retryBackoffSpecs],
      ['embedded', 'embedded: { nope: 1 }', embeddedSpecs],
      ['dashboard', 'dashboard: { nope: 1 }', dashboardSpecs],
      ['metrics', 'metrics: { nope: 1 }', metricsSpecs],
      ['threads', 'threads: { nope: 1 }', threadSpecs],
      ['taskOverrides', 'taskOverrides: { Echo: { nope: 1 } }', taskOverrideSpecs],
      ['retention', 'retention: { nope: 1 }', runnerOptionSpecs.retention.fields],
      ['recurring', 'recurring: [{ task: Echo, cron: "* * * * *", nope: 1 }]', runnerOptionSpecs.recurring.fields],
      ['childLimits', 'childLimits: { nope: 1 }', runnerOptionSpecs.childLimits.fields],
      ['childPermissions', 'childPermissions: { nope: 1 }', runnerOptionSpecs.childPermissions.fields],
    ];
    for (const [name, text, fields] of maps) {
      const target = await file(`${text}\n`);
      const error = await refusal(loadStandaloneConfig({ cwd: path.dirname(target), env: {} }));
      expect(error.message, name).toMatch(/"nope"/);
      expect(allowedIn(error.message), name).toEqual(Object.keys(fields));
    }
    const startRetry = await file('startRetry: { nope: 1 }\n');
    const error = await refusal(loadStandaloneConfig({ cwd: path.dirname(startRetry), env: {} }));
    expect(error.message).toContain(`is not an option (${Object.keys(startRetrySpecs).join(', ')})`);
  });

  it('leaves a nullable setting to resolution, which names it', async () => {
    const none = await file('childMaxOldSpaceMb: null\n');
    expect((await loadStandaloneConfig({ cwd: path.dirname(none), env: {} })).runner.childMaxOldSpaceMb).toBeNull();
    const text = await file('childMaxOldSpaceMb: "512"\n');
    const error = await refusal(loadStandaloneConfig({ cwd: path.dirname(text), env: {} }));
    expect(error.message).toMatch(/"childMaxOldSpaceMb": must be an integer from 16/);
  });

  it('reads the environment variables the table names', async () => {
    const cwd = await mkdtemp(path.join(dir, 'env-'));
    const config = await loadStandaloneConfig({
      cwd,
      env: {
        [runnerOptionSpecs.concurrency.env]: '3',
        [runnerOptionSpecs.pollIntervalMs.env]: '250',
        [runnerOptionSpecs.tableName.env]: 'env_jobs',
        [runnerOptionSpecs.tasksDir.env]: 'tasks',
        [runnerOptionSpecs.db.env]: 'postgres://env/db',
        [launcherOptionSpecs.logLevel.env]: 'warn',
        [launcherOptionSpecs.logFormat.env]: 'json',
      },
    });
    expect(config).toMatchObject({
      runner: { concurrency: 3, pollIntervalMs: 250 },
      tableName: 'env_jobs',
      tasksDir: path.join(cwd, 'tasks'),
      databaseUrl: 'postgres://env/db',
      logLevel: 'warn',
      logFormat: 'json',
    });
  });
});

describe('docs/configuration.md', () => {
  it('is what the table generates, and names every config-file key', async () => {
    const run = promisify(execFile);
    const script = path.join(root, 'scripts', 'config-docs.mjs');
    const result = await run(process.execPath, [script, '--check'], { cwd: root }).then(
      () => 'current',
      (error: { stderr?: string }) => error.stderr ?? String(error),
    );
    expect(result).toBe('current');
  });
});
