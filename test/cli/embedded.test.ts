/**
 * The development default: no database configured, so the launcher and the CLI share an embedded
 * PostgreSQL in <tmpDir>/embedded-pg (on a port of the test's own). This is the README's main
 * path: `npm start` in one terminal, `npx cw-task-runner schedule NoOp` in another.
 */
import { access, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openEmbeddedDatabase } from '../../dist/embedded/embedded-database.js';
import { waitFor } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { isAlive } from '../helpers/processes.js';
import { cleanEnv, cliProcess, freePort, startLauncher, workDir, type LauncherProcess } from './cli-process.js';

let cwd: string;
let remove: () => Promise<void>;
let port: number;
const env = cleanEnv();
let launcher: LauncherProcess | null = null;

beforeAll(async () => {
  ({ dir: cwd, remove } = await workDir());
  port = await freePort();
  await writeFile(
    path.join(cwd, 'cw-task-runner.yml'),
    `embedded: { port: ${port} }\nshutdownGraceMs: 300\nkillTimeoutMs: 300\n`,
  );
});
afterAll(async () => {
  await launcher?.stop('SIGKILL').catch(() => undefined);
  // Whatever a failed test left running: stop the server before its directory goes.
  const server = await serverPid();
  if (server !== null) {
    process.kill(server, 'SIGINT');
    await waitFor(() => !isAlive(server), { timeoutMs: 20_000 }).catch(() => process.kill(server, 'SIGKILL'));
  }
  await remove?.();
});

const dataDir = (): string => path.join(cwd, 'tmp', 'embedded-pg');

/** The embedded server's pid while it runs, else null. */
async function serverPid(): Promise<number | null> {
  const text = await readFile(path.join(dataDir(), 'postmaster.pid'), 'utf8').catch(() => null);
  const pid = text === null ? Number.NaN : Number.parseInt(text, 10);
  return Number.isInteger(pid) && isAlive(pid) ? pid : null;
}

async function query<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  // The cluster's random password, in the mode-600 file beside the data directory.
  const password = (await readFile(`${dataDir()}.password`, 'utf8')).trim();
  const client = new pg.Client({
    connectionString: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/cw_task_runner`,
  });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('embedded PostgreSQL', () => {
  it('is created on first use by a short command, which stops it again when done', async () => {
    const result = await cliProcess(['status'], { cwd, env, timeoutMs: 120_000 });
    expect(result.stderr).toMatch(/initialising the embedded PostgreSQL data directory \(first run\)/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /requests in task_runner_requests: 0 waiting, 0 delayed, 0 running, 0 held, 0 finished, 0 given up/,
    );
    await access(path.join(dataDir(), 'PG_VERSION'));
    expect(await serverPid()).toBeNull();
    // A random password, readable by this user only.
    const password = await stat(`${dataDir()}.password`);
    expect(password.mode & 0o777).toBe(0o600);
    expect((await readFile(`${dataDir()}.password`, 'utf8')).trim()).toMatch(/^[A-Za-z0-9_-]{24}$/);
  }, 120_000);

  it('is shared: the launcher keeps it up, the CLI in another process joins it, and the launcher stops it', async () => {
    launcher = await startLauncher([], { cwd, env });
    expect(launcher.stderr()).toMatch(/no tasksDir configured: using the bundled sample tasks/);
    expect(launcher.stderr()).toMatch(
      /database="postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/cw_task_runner \(embedded\)"/,
    );
    const server = await serverPid();
    expect(server).not.toBeNull();

    const scheduled = await cliProcess(['schedule', 'NoOp', '--options', 'created_from: a second terminal'], {
      cwd,
      env,
    });
    expect(scheduled.code).toBe(0);
    const id = scheduled.stdout.trim();
    const [row] = await waitFor(
      async () => {
        const rows = await query<{ result: string | null; result_text: string | null }>(
          'SELECT result, result_text FROM task_runner_requests WHERE id = $1 AND completed_at IS NOT NULL',
          [id],
        );
        return rows.length > 0 ? rows : null;
      },
      { timeoutMs: 15_000, what: 'NoOp to finish' },
    );
    expect(row).toEqual({ result: 'FINISHED', result_text: `NOOP ${id}: OK! created from: a second terminal` });

    const status = await cliProcess(['status'], { cwd, env });
    expect(status.stdout).toMatch(new RegExp(`^launcher \\S+ \\(pid ${launcher.pid} `));
    expect(status.stdout).toMatch(/1 finished/);
    // Short commands joined the launcher's server and left it running.
    expect(await serverPid()).toBe(server);

    expect(await launcher.stop('SIGTERM')).toBe(0);
    launcher = null;
    expect(isAlive(server!)).toBe(false);
    expect(await serverPid()).toBeNull();
  }, 60_000);

  it("survives a terminal's Ctrl-C long enough for the launcher to release its running rows", async () => {
    await writeFile(
      path.join(cwd, 'cw-task-runner.yml'),
      `embedded: { port: ${port} }\ntasksDir: ${JSON.stringify(fixturesDir)}\nshutdownGraceMs: 300\nkillTimeoutMs: 300\n`,
    );
    launcher = await startLauncher([], { cwd, env, ownGroup: true });
    const scheduled = await cliProcess(['schedule', 'Sleep', '--options', 'ms: 60000'], { cwd, env });
    const id = scheduled.stdout.trim();
    await waitFor(() => launcher!.stderr().includes(`[task ${id} stdout] sleeping`), { what: 'the Sleep task to run' });
    // Ctrl-C signals the terminal's whole foreground process group.
    process.kill(-launcher.pid, 'SIGINT');
    expect(await launcher.exited).toBe(0);
    launcher = null;
    expect(await serverPid()).toBeNull();
    const status = JSON.parse((await cliProcess(['status', '--json'], { cwd, env })).stdout);
    expect(status.counts).toMatchObject({ running: 0, waiting: 1 });
  }, 60_000);

  it('says which file is wrong when the password file does not match the cluster', async () => {
    const file = `${dataDir()}.password`;
    const kept = await readFile(file, 'utf8');
    await writeFile(file, 'not-the-password\n');
    try {
      const result = await cliProcess(['status'], { cwd, env });
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /password authentication failed.*the password file beside the data directory is missing or is not this cluster's/,
      );
    } finally {
      await writeFile(file, kept);
    }
    expect(await serverPid()).toBeNull();
  }, 60_000);

  it('is handed over by the process that started it to one still using it, which stops it last', async () => {
    const first = await openEmbeddedDatabase({ dataDir: dataDir(), port });
    const second = await openEmbeddedDatabase({ dataDir: dataDir(), port });
    expect(first.startedHere).toBe(true);
    expect(second.startedHere).toBe(false);
    expect(second.connectionString).toBe(first.connectionString);
    const server = await serverPid();
    await first.release();
    expect(await serverPid()).toBe(server);
    expect(await query<{ one: number }>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await second.release();
    expect(await serverPid()).toBeNull();
  }, 60_000);
});
