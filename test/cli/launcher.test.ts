/**
 * The standalone launcher as a process (`node dist/launcher.js`), driven by the CLI as a process,
 * on a test database: start, schedule from "another terminal", status over the control socket,
 * the pidfile, and SIGTERM.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { getRow, waitFor, waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { isAlive } from '../helpers/processes.js';
import {
  cleanEnv,
  cliProcess,
  launcherProcesses,
  startLauncher,
  workDir,
  type LauncherProcess,
} from './cli-process.js';

const files = launcherProcesses();
const { launchers, cleanups } = files;

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

async function setup(fileSettings: string[] = []): Promise<{ cwd: string; env: NodeJS.ProcessEnv }> {
  const { dir, remove } = await workDir();
  cleanups.push(remove);
  await writeFile(
    path.join(dir, 'cw-task-runner.yml'),
    [
      `tasksDir: ${JSON.stringify(fixturesDir)}`,
      'concurrency: 2',
      'pollIntervalMs: 60000',
      'shutdownGraceMs: 300',
      'killTimeoutMs: 300',
      ...fileSettings,
    ].join('\n'),
  );
  return { cwd: dir, env: cleanEnv({ DATABASE_URL: files.t.url }) };
}

async function launch(params: { cwd: string; env: NodeJS.ProcessEnv }, args: string[] = []): Promise<LauncherProcess> {
  const launcher = await startLauncher(args, params);
  launchers.push(launcher);
  return launcher;
}

describe('node dist/launcher.js', () => {
  it('runs what the CLI schedules from another process, reports status over its socket, and stops on SIGTERM', async () => {
    const where = await setup();
    const launcher = await launch(where);
    const pidfile = path.join(where.cwd, 'tmp', 'pids', 'task_runner_daemon.pid');
    const socket = path.join(where.cwd, 'tmp', 'sockets', 'task_runner.sock');
    expect(await exists(pidfile)).toBe(true);
    expect(await exists(socket)).toBe(true);

    const scheduled = await cliProcess(['schedule', 'Echo', '--options', 'text: from another terminal'], where);
    expect(scheduled.code).toBe(0);
    const id = scheduled.stdout.trim();
    // The poll interval is a minute: only the NOTIFY of the insert can wake the launcher this fast.
    const row = await waitForCompleted(files.t.pool, id, 15_000);
    expect(row).toMatchObject({ result: 'FINISHED', result_text: 'from another terminal', tries: 1, pid: null });
    await waitFor(() => launcher.stderr().includes(`task Echo FINISHED id="${id}"`), {
      what: 'the completion log line',
    });

    const sleeper = await cliProcess(['schedule', 'Sleep', '--options', 'ms: 60000'], where);
    // The row holds the launcher's pid from claim until the child's is known.
    const sleeping = await waitFor(
      async () => {
        const pid = (await getRow(files.t.pool, sleeper.stdout.trim()))?.pid as number | null;
        return pid !== null && pid !== launcher.pid ? pid : null;
      },
      { what: 'the Sleep child to start' },
    );

    const status = await cliProcess(['status'], where);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      new RegExp(`^launcher \\S+ \\(pid ${launcher.pid} on .+\\): 1 task\\(s\\) running, 0 held\\n`),
    );
    expect(status.stdout).toMatch(
      new RegExp(`^  ${sleeper.stdout.trim()}  Sleep  try 1  pid ${sleeping}  (spare|fresh)  since \\S+$`, 'm'),
    );
    const json = JSON.parse((await cliProcess(['status', '--json'], where)).stdout);
    expect(json.launcher.pid).toBe(launcher.pid);
    expect(json.counts).toMatchObject({ running: 1 });

    const probe = await cliProcess(['probe', '--json'], where);
    expect(JSON.parse(probe.stdout)).toEqual({ crashed: [], recovered: [], ended: [] });

    expect(await launcher.stop('SIGTERM')).toBe(0);
    expect(launcher.stderr()).toMatch(/received SIGTERM: stopping gracefully/);
    expect(isAlive(sleeping)).toBe(false);
    // The interrupted request is released (try given back), not left holding a pid.
    expect(await getRow(files.t.pool, sleeper.stdout.trim())).toMatchObject({
      pid: null,
      result: 'INTERRUPTED',
      tries: 0,
      completed_at: null,
    });
    expect(await exists(pidfile)).toBe(false);
    expect(await exists(socket)).toBe(false);
    await files.t.pool.query('DELETE FROM task_runner_requests WHERE id = $1', [sleeper.stdout.trim()]);
  });

  it('serves /metrics and the dashboard when its config file has `metrics:` and `dashboard:`', async () => {
    // Port 0: the system picks free ports, and the launcher logs the URLs it serves.
    const where = await setup(['metrics:', '  port: 0', 'dashboard:', '  port: 0']);
    const launcher = await launch(where);
    const metricsUrl = await waitFor(() => /metrics served url="([^"]+)"/.exec(launcher.stderr())?.[1], {
      what: 'the metrics URL',
    });
    const dashboardUrl = await waitFor(() => /dashboard served url="([^"]+)"/.exec(launcher.stderr())?.[1], {
      what: 'the dashboard URL',
    });
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect(dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    const scheduled = await cliProcess(['schedule', 'Echo', '--options', 'text: scraped'], where);
    const id = scheduled.stdout.trim();
    await waitForCompleted(files.t.pool, id, 15_000);

    // The scrape counts the try this launcher ran (its counters are fed by its own events).
    const scraped = await waitFor(
      async () => {
        const response = await fetch(metricsUrl);
        expect(response.status).toBe(200);
        const text = await response.text();
        return /^cw_task_runner_tries_ended_total\{task="Echo",result="FINISHED"\} 1$/m.test(text) ? text : null;
      },
      { what: 'the finished try in a scrape' },
    );
    expect(scraped).toMatch(/^cw_task_runner_requests_ended\{result="FINISHED"\} \d+$/m);
    expect(scraped).toMatch(/^cw_task_runner_launch_statement_seconds_count\{claim="true"\} [1-9]\d*$/m);

    const page = await fetch(dashboardUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<title>cw-task-runner</title>');
    const script = await fetch(new URL('/assets/app.js', dashboardUrl));
    expect(script.status).toBe(200);
    const listed = (await (await fetch(new URL('/api/requests?task=Echo', dashboardUrl))).json()) as {
      rows?: { id: string }[];
    };
    expect(JSON.stringify(listed)).toContain(`"${id}"`);

    expect(await launcher.stop('SIGTERM')).toBe(0);
    // Both listeners closed with the launcher.
    await expect(fetch(metricsUrl)).rejects.toThrow();
    await expect(fetch(dashboardUrl)).rejects.toThrow();
  });

  it('refuses a second launcher in the same directory with exit code 1, naming the first', async () => {
    const where = await setup();
    const first = await launch(where);
    const second = await cliProcess(['start'], where);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `cw-task-runner: a launcher is already running here (pid ${first.pid}, pidfile ${path.join(where.cwd, 'tmp', 'pids', 'task_runner_daemon.pid')}); ` +
        'stop it first, or use another tmpDir\n',
    );
    expect(await first.stop('SIGINT')).toBe(0);
  });

  it('starts over a stale pidfile and socket left by a launcher that died', async () => {
    const where = await setup();
    await mkdir(path.join(where.cwd, 'tmp', 'pids'), { recursive: true });
    await mkdir(path.join(where.cwd, 'tmp', 'sockets'), { recursive: true });
    await writeFile(path.join(where.cwd, 'tmp', 'pids', 'task_runner_daemon.pid'), '4194305\n');
    await writeFile(path.join(where.cwd, 'tmp', 'sockets', 'task_runner.sock'), '');
    const launcher = await launch(where);
    expect((await cliProcess(['status', '--json'], where)).stdout).toContain(`"pid":${launcher.pid}`);
    expect(await launcher.stop()).toBe(0);
  });

  it('takes the same flags as `cw-task-runner start`, and a custom table it migrates first', async () => {
    const where = await setup();
    const launcher = await launch(where, ['--table', 'launcher_jobs']);
    expect(launcher.stderr()).toMatch(/created the request table table="launcher_jobs"/);
    const scheduled = await cliProcess(
      ['schedule', 'Echo', '--table', 'launcher_jobs', '--options', 'text: custom'],
      where,
    );
    const row = await waitForCompleted(files.t.pool, scheduled.stdout.trim(), 15_000, 'launcher_jobs');
    expect(row.result_text).toBe('custom');
    expect(await launcher.stop()).toBe(0);
  });

  it('fails to start with exit code 1 and one line when the database is unreachable and startRetry is false, leaving nothing behind', async () => {
    // By default it waits for the database (test/cli/start-retry.test.ts); false fails at once.
    const where = await setup(['startRetry: false']);
    const result = await cliProcess(['start', '--database-url', 'postgres://root@127.0.0.1:1/x'], where);
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n').pop()).toMatch(
      /^cw-task-runner: cannot use the database postgres:\/\/root@127\.0\.0\.1:1\/x: .*ECONNREFUSED/,
    );
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await exists(path.join(where.cwd, 'tmp', 'pids', 'task_runner_daemon.pid'))).toBe(false);
  });

  it('prints its help with --help and starts nothing', async () => {
    const where = await setup();
    const result = await cliProcess(['start', '--help'], where);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: cw-task-runner start');
    expect(await exists(path.join(where.cwd, 'tmp'))).toBe(false);
  });
});
