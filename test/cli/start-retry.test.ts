/**
 * `node dist/launcher.js` started while its database cannot be used: a private PostgreSQL that is
 * down, then one whose every connection slot is taken. The launcher logs each try and its wait,
 * and once the database can be used it starts and runs the request waiting there. With
 * `startRetry.giveUpAfterMs` it gives up with one line and exit code 1; stopped while it waits,
 * it exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor, waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { startPrivateServer, type PrivateServer } from '../helpers/private-server.js';
import { cleanEnv, launcherPath, workDir } from './cli-process.js';

interface Launched {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | null>;
}

let server: PrivateServer;
const launched: Launched[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  server = await startPrivateServer({ maxConnections: 12 });
}, 120_000);
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  for (const l of launched.splice(0)) {
    l.child.kill('SIGKILL');
    await l.exited;
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** A launcher process that is not waited for: it may not come up soon. */
async function launch(settings: string[], url = server.url('launcher')): Promise<Launched> {
  const { dir, remove } = await workDir();
  cleanups.push(remove);
  await writeFile(
    path.join(dir, 'cw-task-runner.yml'),
    [
      `tasksDir: ${JSON.stringify(fixturesDir)}`,
      'concurrency: 1',
      'pollIntervalMs: 60000',
      'shutdownGraceMs: 300',
      'killTimeoutMs: 300',
      ...settings,
    ].join('\n'),
  );
  const child = spawn(process.execPath, [launcherPath], {
    cwd: dir,
    env: cleanEnv({ DATABASE_URL: url }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const result = { child, stderr: () => stderr, exited };
  launched.push(result);
  return result;
}

const retries = (l: Launched): number =>
  (l.stderr().match(/the database cannot be used yet \(migrating the request table\): retrying/g) ?? []).length;

async function insertEcho(text: string): Promise<string> {
  const { rows } = await server.pool.query<{ id: string }>(
    `INSERT INTO task_runner_requests (task_class_name, options) VALUES ('Echo', $1) RETURNING id::text AS id`,
    [`--- {text: ${text}}`],
  );
  return rows[0]!.id;
}

async function stopped(l: Launched): Promise<number | null> {
  l.child.kill('SIGTERM');
  return l.exited;
}

describe('start while the database cannot be used', () => {
  it(
    'waits for a database that is down, logging each try, then runs the request waiting there',
    { timeout: 120_000 },
    async () => {
      const id = await insertEcho('waited for');
      await server.pause();
      let resumed = false;
      try {
        const launcher = await launch(['startRetry:', '  baseMs: 100', '  maxMs: 400']);
        await waitFor(() => retries(launcher) >= 3, { timeoutMs: 30_000, what: 'three logged retries' });
        expect(launcher.stderr()).toMatch(/try=\d+ delayMs=\d+ error=".*ECONNREFUSED/);
        expect(launcher.stderr()).not.toContain('standalone launcher ready');
        await server.resume();
        resumed = true;
        await waitFor(() => launcher.stderr().includes('standalone launcher ready'), {
          timeoutMs: 30_000,
          what: 'the launcher to be ready',
        });
        expect(launcher.stderr()).toMatch(/the database is reachable: starting tries=\d+/);
        const row = await waitForCompleted(server.pool, id, 30_000);
        expect(row).toMatchObject({ result: 'FINISHED', result_text: 'waited for' });
        expect(await stopped(launcher)).toBe(0);
      } finally {
        if (!resumed) await server.resume();
      }
    },
  );

  it('waits for a free connection slot when every one is taken', { timeout: 120_000 }, async () => {
    const id = await insertEcho('a free slot');
    // No session of an earlier launcher may free a slot once they are all taken.
    await waitFor(
      async () =>
        (
          await server.pool.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'launcher'",
          )
        ).rows[0]!.n === 0,
      { timeoutMs: 30_000, what: 'the sessions of earlier launchers to end' },
    );
    // Take every slot (superuser ones too: the tests connect as a superuser).
    const held: pg.Client[] = [];
    try {
      for (;;) {
        const client = new pg.Client({ connectionString: server.url('holder') });
        client.on('error', () => undefined);
        try {
          await client.connect();
        } catch (error) {
          expect((error as { code?: string }).code).toBe('53300');
          break;
        }
        held.push(client);
      }
      const launcher = await launch(['startRetry:', '  baseMs: 100', '  maxMs: 400']);
      await waitFor(() => retries(launcher) >= 2, { timeoutMs: 30_000, what: 'two logged retries' }).catch(
        (error: Error) => Promise.reject(new Error(`${error.message}; launcher log:\n${launcher.stderr()}`)),
      );
      expect(launcher.stderr()).toMatch(/error=".*too many clients/);
      for (const client of held.splice(0)) await client.end();
      await waitFor(() => launcher.stderr().includes('standalone launcher ready'), {
        timeoutMs: 30_000,
        what: 'the launcher to be ready',
      });
      const row = await waitForCompleted(server.pool, id, 30_000);
      expect(row).toMatchObject({ result: 'FINISHED', result_text: 'a free slot' });
      expect(await stopped(launcher)).toBe(0);
    } finally {
      for (const client of held) await client.end().catch(() => undefined);
    }
  });

  it(
    'gives up with one line and exit code 1 once startRetry.giveUpAfterMs has passed',
    { timeout: 60_000 },
    async () => {
      const launcher = await launch(
        ['startRetry:', '  baseMs: 50', '  maxMs: 100', '  giveUpAfterMs: 500'],
        'postgres://root@127.0.0.1:1/x',
      );
      expect(await launcher.exited).toBe(1);
      expect(retries(launcher)).toBeGreaterThanOrEqual(1);
      expect(launcher.stderr().trimEnd().split('\n').pop()).toMatch(
        /^cw-task-runner: cannot use the database postgres:\/\/root@127\.0\.0\.1:1\/x: gave up migrating the request table after \d+ tries in \d+ ms \(startRetry\.giveUpAfterMs 500\): .*ECONNREFUSED/,
      );
      expect(launcher.stderr()).not.toMatch(/\n\s+at /);
    },
  );

  it('stops at once, exit code 0, when SIGTERM comes while it waits', { timeout: 60_000 }, async () => {
    const launcher = await launch([], 'postgres://root@127.0.0.1:1/x');
    await waitFor(() => retries(launcher) >= 1, { timeoutMs: 30_000, what: 'a logged retry' });
    expect(await stopped(launcher)).toBe(0);
    expect(launcher.stderr()).toContain('stopped before the launcher was up');
  });

  it('refuses a startRetry that is not one, naming the field', { timeout: 60_000 }, async () => {
    const launcher = await launch(['startRetry:', '  maxMs: -1']);
    expect(await launcher.exited).toBe(2);
    expect(launcher.stderr()).toMatch(/invalid config "startRetry\.maxMs": must be an integer/);
  });
});
