import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { waitForExit } from '../helpers/processes.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Node's permission model as a per-task policy: the child runtime still loads (the package and
 * the tasks directory stay readable), and the task is refused what the policy does not allow.
 * Node 20: file reads and writes, child processes and worker threads; not the network.
 */
const runners = useTestRunners();
const t = useTestDatabase();
let dir: string;
let inside: string;
let outside: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwtr-perm-'));
  inside = path.join(dir, 'allowed');
  outside = path.join(dir, 'secret.txt');
  writeFileSync(outside, 'secret');
  writeFileSync(inside, 'allowed');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function escape(
  options: Record<string, unknown>,
  overrides: Parameters<typeof runners.create>[1],
  task = 'Escape',
): Promise<any> {
  const runner = await runners.start(t, overrides);
  const id = await runner.schedule(task, options, { tryLimit: 1 });
  const row = await waitForCompleted(t.pool, id, 30_000);
  await runner.stop();
  expect(row.result, row.result_text).toBe('FINISHED');
  return JSON.parse(row.result_text);
}

describe('childPermissions', () => {
  it('without a policy a task reads, writes and spawns freely', async () => {
    const seen = await escape({ readFile: outside, writeFile: inside }, {});
    expect(seen).toMatchObject({ readFile: 6, writeFile: 'ok', spawn: 'ok' });
  });

  it('with one, the task loads and runs, and is refused what it does not allow', async () => {
    const seen = await escape(
      { readFile: outside, writeFile: path.join(dir, 'new.txt') },
      { childPermissions: { fsRead: [inside] } },
    );
    expect(seen).toMatchObject({
      readFile: 'ERR_ACCESS_DENIED',
      writeFile: 'ERR_ACCESS_DENIED',
      spawn: 'ERR_ACCESS_DENIED',
    });
    // /proc/<ppid>/environ is a file like any other: refused as well.
    expect(seen.launcherEnviron).toBe('ERR_ACCESS_DENIED');
  });

  it('allows exactly the paths and capabilities it names', async () => {
    const seen = await escape(
      { readFile: inside, writeFile: inside },
      { childPermissions: { fsRead: [dir], fsWrite: [inside], childProcess: true } },
    );
    expect(seen).toMatchObject({ readFile: 7, writeFile: 'ok', spawn: 'ok' });
    expect(readFileSync(inside, 'utf8')).toBe('written');
  });

  it('a class can declare its own policy (it applies where the operator set none)', async () => {
    const seen = await escape({}, {}, 'SelfConfined');
    expect(seen).toEqual({ ownDir: 'ok', etc: 'ERR_ACCESS_DENIED', spawn: 'ERR_ACCESS_DENIED' });
  });

  it("a class can only narrow the operator's policy: what the operator refuses stays refused", async () => {
    // The operator allows reading everything and spawning; SelfConfined allows its own directory, no spawn.
    const seen = await escape({}, { childPermissions: { fsRead: ['*'], childProcess: true } }, 'SelfConfined');
    expect(seen).toEqual({ ownDir: 'ok', etc: 'ERR_ACCESS_DENIED', spawn: 'ERR_ACCESS_DENIED' });
    // The operator allows only `dir`: SelfConfined's own directory is outside it, yet the task
    // still loads (the tasks directory stays readable to the runtime).
    const narrowed = await escape({}, { childPermissions: { fsRead: [dir], childProcess: true } }, 'SelfConfined');
    expect(narrowed).toMatchObject({ etc: 'ERR_ACCESS_DENIED', spawn: 'ERR_ACCESS_DENIED' });
  });

  it('a per-task override replaces the policy for that task only', async () => {
    const runner = await runners.start(t, {
      childPermissions: { fsRead: [] },
      taskOverrides: { Escape: { permissions: { fsRead: [outside] } } },
      spareChildren: 1,
    });
    const id = await runner.schedule('Escape', { readFile: outside }, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id, 30_000);
    expect(JSON.parse(row.result_text)).toMatchObject({ readFile: 6, spawn: 'ERR_ACCESS_DENIED' });
    const env = await runner.schedule('Echo', { x: 1 }, { tryLimit: 1 });
    expect((await waitForCompleted(t.pool, env, 30_000)).result).toBe('FINISHED');
    await runner.stop();
  });

  it('a reused child that cannot see /proc under its policy leaves after a try that started a process, and its leftovers go with it', async () => {
    const runner = await runners.start(t, {
      childPermissions: { childProcess: true },
      maxTasksPerChild: 10,
      concurrency: 1,
    });
    const first = await runner.schedule('Spawner', {}, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, first, 30_000);
    expect(row.result, row.result_text).toBe('FINISHED');
    const grandchild = Number(/grandchild pid=(\d+)/.exec(row.result_text)![1]);
    await waitForExit(grandchild);
    const second = await runner.schedule('Echo', { text: 'next' }, { tryLimit: 1 });
    expect(await waitForCompleted(t.pool, second, 30_000)).toMatchObject({ result: 'FINISHED', result_text: 'next' });
    // The child could not clean up between tries, so the next try got another one.
    expect((await runners.started(runner, second)).pid).not.toBe((await runners.started(runner, first)).pid);
    await runner.stop();
  });

  it('refuses a malformed policy, by field', () => {
    expect(() => runners.create(t, { childPermissions: { fsRead: 'x' } as never })).toThrow(
      /"childPermissions.fsRead".*list of paths/,
    );
    expect(() => runners.create(t, { childPermissions: { net: true } as never })).toThrow(
      /"childPermissions".*unknown key "net"/,
    );
    expect(() => runners.create(t, { childPermissions: { fsRead: ['/a,b'] } })).toThrow(/comma/);
    expect(() => runners.create(t, { childPermissions: { worker: 'yes' } as never })).toThrow(
      /"childPermissions.worker".*true or false/,
    );
  });
});
