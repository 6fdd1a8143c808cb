import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanTasksDir, TaskRegistry, UnknownTaskError } from '../../dist/index.js';

const fixtures = fileURLToPath(new URL('../fixtures/tasks/', import.meta.url));
const fixtureNames = [
  'Awaited',
  'BadExport',
  'BuiltinsLoaded',
  'Chatty',
  'Describe',
  'Echo',
  'Env',
  'Escape',
  'Escapee',
  'Exit',
  'Fail',
  'FailTimes',
  'FileLedger',
  'Flood',
  'Forge',
  'ForgeFence',
  'Grab',
  'Grandchild',
  'Hog',
  'HugeError',
  'HugeResult',
  'IgnoreTerm',
  'KillLauncher',
  'Late',
  'Leak',
  'Ledger',
  'Nested::Inner',
  'Nul',
  'OpenFiles',
  'ParentPost',
  'PlainCommonJs',
  'Returns',
  'SelfConfined',
  'Sleep',
  'SlowStatic',
  'Spawner',
  'Spew',
  'Spin',
  'ThreadEcho',
  'ThreadSignal',
  'ThreadWish',
  'TickLedger',
  'TopLevelPeek',
  'YamlLoaded',
];

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'cwtr-registry-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('scanTasksDir', () => {
  it('maps file names to task names, folders joined by ::', async () => {
    const scan = await scanTasksDir(fixtures, false);
    expect([...scan.files.keys()].sort()).toEqual(fixtureNames);
    expect(scan.files.get('Echo')).toBe(path.join(fixtures, 'Echo.mjs'));
    expect(scan.files.get('Nested::Inner')).toBe(path.join(fixtures, 'Nested', 'Inner.mjs'));
    expect(scan.duplicates).toEqual([]);
  });

  it('skips what is not a task file and reports duplicate names', async () => {
    const dir = path.join(scratch, 'mixed');
    await mkdir(path.join(dir, 'bad-folder'), { recursive: true });
    await mkdir(path.join(dir, 'Deep', 'Er'), { recursive: true });
    const files = [
      'Good.js',
      'Dup.js',
      'Dup.mjs',
      'Common.cjs',
      'bad-name.js',
      'types.d.ts',
      'Thing.test.js',
      'README.md',
      'Typed.ts',
      'bad-folder/Task.js',
      'Deep/Er/Est.mjs',
    ];
    for (const file of files) await writeFile(path.join(dir, file), 'export default class X { run() {} }\n');

    const scan = await scanTasksDir(dir, false);
    expect([...scan.files.keys()].sort()).toEqual(['Common', 'Deep::Er::Est', 'Dup', 'Good']);
    expect(scan.duplicates).toHaveLength(1);
    expect(scan.files.get('Dup')).not.toBe(scan.duplicates[0]);
    // With a TypeScript loader, .ts task files count too (declaration files never do).
    expect([...(await scanTasksDir(dir, true)).files.keys()].sort()).toEqual([
      'Common',
      'Deep::Er::Est',
      'Dup',
      'Good',
      'Typed',
    ]);
  });

  it('refuses a missing directory with a code', async () => {
    await expect(scanTasksDir(path.join(scratch, 'missing'))).rejects.toMatchObject({ code: 'TASK_INVALID' });
  });
});

describe('TaskRegistry', () => {
  const registry = new TaskRegistry(fixtures);

  it('resolves names, nested ones included', async () => {
    expect(await registry.resolve('Echo')).toBe(path.join(fixtures, 'Echo.mjs'));
    expect(await registry.resolve('Nested::Inner')).toBe(path.join(fixtures, 'Nested', 'Inner.mjs'));
  });

  it('refuses an unknown name, listing the known ones', async () => {
    const error = await registry.resolve('Missing').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownTaskError);
    expect(error).toMatchObject({ code: 'TASK_UNKNOWN', taskClassName: 'Missing' });
    expect((error as Error).message).toContain('unknown task class "Missing"');
    for (const name of fixtureNames) expect((error as Error).message).toContain(name);
  });

  it.each([
    '../../etc/passwd',
    'Echo.mjs',
    'NoOp.js',
    '/abs',
    path.join(fixtures, 'Echo.mjs'),
    'Nested/Inner',
    'Nested::..::Echo',
    './Echo',
    'echo',
    '',
    'Echo\0',
  ])('never treats a name as a path: %j', async (name) => {
    await expect(registry.resolve(name)).rejects.toBeInstanceOf(UnknownTaskError);
  });

  it('finds a task file deployed after the first scan', async () => {
    const dir = path.join(scratch, 'later');
    await mkdir(dir);
    await writeFile(path.join(dir, 'First.mjs'), 'export default class First { run() {} }\n');
    const later = new TaskRegistry(dir);
    expect(await later.names()).toEqual(['First']);
    await writeFile(path.join(dir, 'Second.mjs'), 'export default class Second { run() {} }\n');
    expect(await later.resolve('Second')).toBe(path.join(dir, 'Second.mjs'));
  });
});

describe('a task run by hand', () => {
  it('is constructed with options and run, as the seed suggests', async () => {
    const echoFile = '../fixtures/tasks/Echo.mjs'; // plain JS, untyped
    const { default: Echo } = await import(echoFile);
    const { default: NoOp } = await import('../../dist/tasks/samples/NoOp.js');
    expect(await new Echo({ text: 'by hand' }).run()).toBe('by hand');
    const noop = new NoOp({ created_from: 'a test' });
    expect(noop.id).toBeNull();
    expect(noop.run()).toBe('NOOP null: OK! created from: a test');
  });
});
