import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  getRow,
  insertRequest,
  waitFor,
  waitForCompleted,
  type TestDatabase,
} from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { useTestRunners } from '../helpers/runner.js';
import { cleanEnv, startLauncher, workDir, type LauncherProcess } from '../cli/cli-process.js';

/**
 * What thread mode contains and what it cannot. A thread shares the launcher's process, so a
 * task signalling "its own" process would signal the launcher: that call is refused. The heap
 * limit users set for children bounds threads too. What no in-process guard stops (a `kill`
 * process aimed at the launcher) still costs only the request that did it: the launcher that
 * comes next counts it as a crash, and parks it at the crash limit.
 */
const runners = useTestRunners();
let t: TestDatabase;
const launchers: LauncherProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  t = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(launchers.splice(0).map((launcher) => launcher.stop('SIGKILL').catch(() => undefined)));
  for (const cleanup of cleanups.splice(0)) await cleanup();
  await t.pool.query('TRUNCATE task_runner_requests');
});
afterAll(async () => {
  await t?.drop();
});

async function launcherDir(settings: string[] = []): Promise<string> {
  const { dir, remove } = await workDir();
  cleanups.push(remove);
  await writeFile(
    path.join(dir, 'cw-task-runner.yml'),
    [
      `tasksDir: ${JSON.stringify(fixturesDir)}`,
      'concurrency: 2',
      'pollIntervalMs: 500',
      'shutdownGraceMs: 300',
      'killTimeoutMs: 300',
      ...settings,
    ].join('\n'),
  );
  return dir;
}

async function launch(dir: string): Promise<LauncherProcess> {
  const launcher = await startLauncher([], { cwd: dir, env: cleanEnv({ DATABASE_URL: t.url }) });
  launchers.push(launcher);
  return launcher;
}

describe('thread mode limits', () => {
  it("refuses a thread task signalling the launcher's process, and the launcher goes on", async () => {
    const launcher = await launch(await launcherDir());
    const id = await insertRequest(t.pool, { task_class_name: 'KillLauncher', try_limit: 1 });
    const row = await waitForCompleted(t.pool, id, 15_000);
    expect(row.result).toBe('FAILED');
    expect(row.result_text).toMatch(/thread-mode task runs inside the launcher/);
    const next = await insertRequest(t.pool, { task_class_name: 'Echo', options: { text: 'alive' } });
    expect(await waitForCompleted(t.pool, next, 15_000)).toMatchObject({ result: 'FINISHED', result_text: 'alive' });
    expect(launcher.child.exitCode).toBeNull();
    expect(await launcher.stop('SIGTERM')).toBe(0);
  });

  it("bounds a thread's heap by childMaxOldSpaceMb when threads set no limit of their own", async () => {
    const runner = await runners.start(t, { childMaxOldSpaceMb: 64, taskOverrides: { Hog: { mode: 'thread' } } });
    const id = await runner.schedule('Hog', { maxMb: 60 }, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id, 30_000);
    expect(row.result).toBe('CRASHED');
    expect(row.result_text).toMatch(/memory|heap/i);
    await runner.stop();
  });

  it('counts a launcher killed by its thread try against that request, and parks it at the crash limit', async () => {
    const dir = await launcherDir(['crashLimit: 2']);
    const id = await insertRequest(t.pool, {
      task_class_name: 'KillLauncher',
      options: { via: 'shell' },
      try_limit: 5,
    });
    for (let death = 1; death <= 2; death++) {
      const launcher = await launch(dir);
      // The pidfile of a SIGKILLed launcher is stale: the next launcher takes over the directory.
      expect(await launcher.exited).toBeNull();
      expect(launcher.child.signalCode).toBe('SIGKILL');
      launchers.splice(launchers.indexOf(launcher), 1);
    }
    const survivor = await launch(dir);
    const row = await waitFor(
      async () => {
        const r = await getRow(t.pool, id);
        return r.completed_at !== null ? r : null;
      },
      { timeoutMs: 15_000, what: 'the request to be parked' },
    );
    expect(row).toMatchObject({ result: 'PARKED', crashes: 2, tries: 2, pid: null });
    expect(survivor.child.exitCode).toBeNull();
    expect(await survivor.stop('SIGTERM')).toBe(0);
  });
});
