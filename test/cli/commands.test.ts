import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../dist/index.js';
import { getRow, insertRequest } from '../helpers/db.js';
import { cleanEnv, cli, cliOnTestDatabase } from './cli-process.js';

const s = cliOnTestDatabase();

/** A pid that no process has: one past the kernel's limit. */
const deadPid = 4_194_304 + 1;

describe('migrate', () => {
  it('creates a table with a custom name, then finds it up to date', async () => {
    const first = await cli(['migrate', '--table', 'cli_jobs'], s.at);
    expect(first).toMatchObject({ code: 0, stdout: 'created table cli_jobs\n' });
    const again = await cli(['--table', 'cli_jobs', 'migrate'], s.at);
    expect(again).toMatchObject({ code: 0, stdout: 'table cli_jobs is up to date\n' });
    const { rows } = await s.t.pool.query("SELECT to_regclass('cli_jobs') AS found");
    expect(rows[0].found).toBe('cli_jobs');
  });

  it('upgrades a table that lacks the design columns (a Rails-era table)', async () => {
    await s.t.pool
      .query(`CREATE TABLE rails_jobs (id bigserial PRIMARY KEY, created_at timestamptz, task_class_name text,
      pid integer, started_at timestamptz, completed_at timestamptz, result text, tries integer NOT NULL DEFAULT 0,
      try_limit integer NOT NULL DEFAULT 5, options text, delay_until timestamptz, result_text text)`);
    const result = await cli(['migrate', '--table', 'rails_jobs'], s.at);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^upgraded table rails_jobs: added queue, priority, host, launcher_id/);
  });
});

describe('schedule', () => {
  it('inserts a request and prints its id', async () => {
    const result = await cli(['schedule', 'Echo', '--options', 'text: hello from the cli'], s.at);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^\d+\n$/);
    const row = await getRow(s.t.pool, result.stdout.trim());
    expect(row).toMatchObject({
      task_class_name: 'Echo',
      tries: 0,
      try_limit: 5,
      priority: 0,
      queue: 'default',
      pid: null,
      delay_until: null,
    });
    expect(parseOptions(row.options, 1024)).toEqual({ text: 'hello from the cli' });
  });

  it('takes a delay, a try limit, a priority and a queue', async () => {
    const before = Date.now();
    const result = await cli(
      [
        'schedule',
        'Echo',
        '--options',
        '{"text": "json works too"}',
        '--delay',
        '5m',
        '--try-limit',
        '2',
        '--priority',
        '-3',
        '--queue',
        'mail',
      ],
      s.at,
    );
    expect(result.code).toBe(0);
    const row = await getRow(s.t.pool, result.stdout.trim());
    expect(row).toMatchObject({ try_limit: 2, priority: -3, queue: 'mail' });
    expect(parseOptions(row.options, 1024)).toEqual({ text: 'json works too' });
    const delay = (row.delay_until as Date).getTime() - before;
    expect(delay).toBeGreaterThanOrEqual(300_000 - 1_000);
    expect(delay).toBeLessThan(300_000 + 30_000);
    const dated = await cli(['schedule', 'Echo', '--delay', '2031-02-03T04:05:06Z'], s.at);
    expect((await getRow(s.t.pool, dated.stdout.trim())).delay_until.toISOString()).toBe('2031-02-03T04:05:06.000Z');
  });

  it('names nested task files with :: and refuses unknown names, listing the known ones', async () => {
    const unknown = await cli(['schedule', 'Echoo'], s.at);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown task class "Echoo"; known tasks: .*Echo/);
    const { rows } = await s.t.pool.query(
      "SELECT count(*)::int AS n FROM task_runner_requests WHERE task_class_name = 'Echoo'",
    );
    expect(rows[0].n).toBe(0);
  });

  it('checks names against the bundled samples when no tasks directory is configured, unless --skip-check', async () => {
    const bare = cleanEnv({ DATABASE_URL: s.t.url });
    const noop = await cli(['schedule', 'NoOp'], { cwd: s.cwd, env: bare });
    expect(noop.code).toBe(0);
    const echo = await cli(['schedule', 'Echo'], { cwd: s.cwd, env: bare });
    expect(echo.code).toBe(2);
    expect(echo.stderr).toMatch(/known tasks: NoOp \(in .*tasks[/\\]samples\)/);
    const skipped = await cli(['schedule', 'Elsewhere::Task', '--skip-check'], { cwd: s.cwd, env: bare });
    expect(skipped.code).toBe(0);
    expect((await getRow(s.t.pool, skipped.stdout.trim())).task_class_name).toBe('Elsewhere::Task');
  });

  it('leaves the table alone when given a malicious table name', async () => {
    const before = await s.t.pool.query('SELECT count(*)::int AS n FROM task_runner_requests');
    const result = await cli(
      ['schedule', 'Echo', '--table', 'task_runner_requests; drop table task_runner_requests'],
      s.at,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/invalid table name/);
    const after = await s.t.pool.query('SELECT count(*)::int AS n FROM task_runner_requests');
    expect(after.rows[0].n).toBe(before.rows[0].n);
  });

  it('says how to fix a missing table', async () => {
    const result = await cli(['schedule', 'Echo', '--table', 'never_migrated'], s.at);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/relation "never_migrated" does not exist \(run `cw-task-runner migrate`\)/);
  });
});

describe('status without a launcher', () => {
  it('reads the counts from the database', async () => {
    await s.t.pool.query('CREATE TABLE status_jobs (LIKE task_runner_requests INCLUDING ALL)');
    await s.t.pool.query('CREATE TABLE status_jobs_attempts (LIKE task_runner_requests_attempts INCLUDING ALL)');
    await s.t.pool.query('CREATE TABLE status_jobs_launchers (LIKE task_runner_requests_launchers INCLUDING ALL)');
    await insertRequest(s.t.pool, {}, 'status_jobs');
    await insertRequest(s.t.pool, { delay_until: new Date(Date.now() + 3_600_000) }, 'status_jobs');
    await insertRequest(s.t.pool, { completed_at: new Date(), result: 'FINISHED', tries: 1 }, 'status_jobs');
    await insertRequest(s.t.pool, { completed_at: new Date(), result: 'FAILED', tries: 5 }, 'status_jobs');
    const text = await cli(['status', '--table', 'status_jobs'], s.at);
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(
      'no launcher is running here (nothing answers on tmp/sockets/task_runner.sock)\n' +
        'requests in status_jobs: 1 waiting, 1 delayed, 0 running, 0 held, 1 finished, 1 given up (0 cancelled, 0 parked)\n' +
        'last 5 minutes: 0 finished, 0 failed, 0 crashed, 0 other tries (0.0 finished/min)\n' +
        `oldest waiting request: ${text.stdout.match(/oldest waiting request: (.*)\n/)?.[1]}\n` +
        'open requests by queue and task (waiting / delayed / running / held):\n  default  Echo  1 / 1 / 0 / 0\nlaunchers alive: 0\n',
    );
    const json = await cli(['status', '--table', 'status_jobs', '--json'], s.at);
    expect(JSON.parse(json.stdout)).toMatchObject({
      launcher: null,
      counts: { waiting: 1, delayed: 1, running: 0, held: 0, finished: 1, givenUp: 1, cancelled: 0, parked: 0 },
      launchers: [],
    });
  });
});

describe('probe without a launcher', () => {
  it('marks a row of this host whose process is gone CRASHED and leaves other hosts alone', async () => {
    await s.t.pool.query('CREATE TABLE probe_jobs (LIKE task_runner_requests INCLUDING ALL)');
    // The probe records each crash in the table's attempt history.
    await s.t.pool.query('CREATE TABLE probe_jobs_attempts (LIKE task_runner_requests_attempts INCLUDING ALL)');
    const dead = await insertRequest(
      s.t.pool,
      { pid: deadPid, host: hostname(), tries: 1, started_at: new Date() },
      'probe_jobs',
    );
    const foreign = await insertRequest(
      s.t.pool,
      {
        pid: deadPid,
        host: 'another-host',
        tries: 1,
        started_at: new Date(),
        lease_expires_at: new Date(Date.now() + 3_600_000),
      },
      'probe_jobs',
    );
    const result = await cli(['probe', '--table', 'probe_jobs', '--json'], s.at);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ crashed: [dead], recovered: [], ended: [] });
    expect(await getRow(s.t.pool, dead, 'probe_jobs')).toMatchObject({
      result: 'CRASHED',
      pid: null,
      completed_at: null,
    });
    expect(await getRow(s.t.pool, foreign, 'probe_jobs')).toMatchObject({ pid: deadPid, result: null });
    const again = await cli(['probe', '--table', 'probe_jobs'], s.at);
    expect(again.stdout).toBe('crashed: 0; recovered by lease: 0\n');
  });
});

describe('retry', () => {
  it('makes an ended request runnable again', async () => {
    const id = await insertRequest(s.t.pool, {
      completed_at: new Date(),
      result: 'FAILED',
      tries: 5,
      try_limit: 5,
      result_text: 'boom',
    });
    const result = await cli(['retry', id], s.at);
    expect(result).toMatchObject({ code: 0, stdout: `request ${id} is runnable again\n` });
    const row = await getRow(s.t.pool, id);
    expect(row.completed_at).toBeNull();
    expect(row.try_limit).toBeGreaterThan(row.tries);
  });

  it('refuses a missing request and a running one with exit code 1', async () => {
    const missing = await cli(['retry', '987654321'], s.at);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('cw-task-runner: request 987654321 does not exist\n');
    const running = await insertRequest(s.t.pool, { pid: deadPid, host: 'another-host', tries: 1 });
    const refused = await cli(['retry', running], s.at);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(new RegExp(`request ${running} is running \\(pid ${deadPid}\\)`));
  });
});
