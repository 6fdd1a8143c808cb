import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { startPrivateServer, type PrivateServer } from '../helpers/private-server.js';
import { cleanEnv, startLauncher, workDir, type LauncherProcess } from '../cli/cli-process.js';

/**
 * Every connection the launcher holds may be cut while tries run: by pg_terminate_backend, or by
 * a fast restart of the server. The launcher (a process of its own, as in production) must live
 * through it and the run must finish with nothing lost and nothing run twice. The server is this
 * file's own. A file ledger outside the database records every start and end of a try.
 */
let server: PrivateServer;
let ledgerDir: string;
const launchers: LauncherProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
const victim = 'cwtr-connection-loss';

beforeAll(async () => {
  server = await startPrivateServer();
  ledgerDir = await mkdtemp(path.join(tmpdir(), 'cwtr-ledger-'));
});
afterEach(async () => {
  await Promise.all(launchers.splice(0).map((launcher) => launcher.stop('SIGKILL').catch(() => undefined)));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});
afterAll(async () => {
  await server?.stop();
  await rm(ledgerDir, { recursive: true, force: true });
});

async function launch(): Promise<LauncherProcess> {
  const { dir, remove } = await workDir();
  cleanups.push(remove);
  await writeFile(
    path.join(dir, 'cw-task-runner.yml'),
    [
      `tasksDir: ${JSON.stringify(fixturesDir)}`,
      'concurrency: 4',
      'maxTasksPerChild: .inf',
      'pollIntervalMs: 1000',
      'shutdownGraceMs: 5000',
      'killTimeoutMs: 300',
    ].join('\n'),
  );
  const launcher = await startLauncher([], { cwd: dir, env: cleanEnv({ DATABASE_URL: server.url(victim) }) });
  launchers.push(launcher);
  return launcher;
}

/** A count from the server, or null while it is restarting. */
async function finishedCount(): Promise<number | null> {
  try {
    const { rows } = await server.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM task_runner_requests WHERE result = 'FINISHED'`,
    );
    return rows[0]!.n;
  } catch {
    return null;
  }
}

/** Waits for `check`, failing at once (with its log) if the launcher died meanwhile. */
async function waitWhileAlive(launcher: LauncherProcess, check: () => Promise<boolean>, what: string): Promise<void> {
  await waitFor(
    async () => {
      if (launcher.child.exitCode !== null || launcher.child.signalCode !== null) {
        throw new Error(
          `the launcher died (${launcher.child.exitCode ?? launcher.child.signalCode}) waiting for ${what}; log:\n${launcher.stderr().slice(-3000)}`,
        );
      }
      return check();
    },
    { timeoutMs: 60_000, intervalMs: 50, what },
  );
}

async function schedule(count: number, ms: number): Promise<string> {
  const file = path.join(ledgerDir, `ledger-${Date.now()}.txt`);
  await writeFile(file, '');
  await server.pool.query('TRUNCATE task_runner_requests');
  await server.pool.query(
    `INSERT INTO task_runner_requests (task_class_name, options) SELECT 'FileLedger', $1 FROM generate_series(1, $2)`,
    [JSON.stringify({ file, ms }), count],
  );
  return file;
}

/** Every request ran exactly once and is FINISHED on its first try. */
async function expectEachRanOnce(file: string, count: number): Promise<void> {
  const lines = (await readFile(file, 'utf8'))
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' '));
  const starts = new Map<string, number>();
  for (const [id, , , what] of lines) if (what === 'start') starts.set(id!, (starts.get(id!) ?? 0) + 1);
  const twice = [...starts].filter(([, n]) => n > 1).map(([id]) => id);
  expect(twice, 'requests started more than once').toEqual([]);
  expect(starts.size).toBe(count);
  const { rows } = await server.pool.query(
    `SELECT result, tries, count(*)::int AS n FROM task_runner_requests GROUP BY result, tries ORDER BY result, tries`,
  );
  expect(rows).toEqual([{ result: 'FINISHED', tries: 1, n: count }]);
}

describe('losing the database connections', { timeout: 180_000 }, () => {
  it('survives every session of the launcher being terminated, eight times, while tries run', async () => {
    const file = await schedule(400, 15);
    const launcher = await launch();
    for (const share of [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]) {
      await waitWhileAlive(
        launcher,
        async () => ((await finishedCount()) ?? 0) >= 400 * share,
        `${share * 100}% finished`,
      );
      expect(await server.terminate(victim)).toBeGreaterThan(0);
    }
    await waitWhileAlive(launcher, async () => (await finishedCount()) === 400, 'every request to finish');
    await expectEachRanOnce(file, 400);
    expect(await launcher.stop('SIGTERM')).toBe(0);
  });

  it('survives three fast restarts of the server while tries run, and records every outcome', async () => {
    const file = await schedule(600, 2);
    const launcher = await launch();
    for (const done of [100, 250, 400]) {
      await waitWhileAlive(launcher, async () => ((await finishedCount()) ?? 0) >= done, `${done} finished`);
      await server.restart();
    }
    await waitWhileAlive(launcher, async () => (await finishedCount()) === 600, 'every request to finish');
    await expectEachRanOnce(file, 600);
    expect(await launcher.stop('SIGTERM')).toBe(0);
  });
});
