import { describe, expect, it } from 'vitest';
import { insertRequest } from '../helpers/db.js';
import { cli, cliOnTestDatabase } from './cli-process.js';

const s = cliOnTestDatabase();

const minutesAgo = (n: number) => new Date(Date.now() - n * 60_000);

describe('show', () => {
  it('prints the whole request with its options, full result text and tries, and the same as JSON', async () => {
    const text = 'Error: boom\n    at run (Fail.mjs:9:11)\n    at <script>alert(1)</script>';
    const id = await insertRequest(s.t.pool, {
      task_class_name: 'Fail',
      options: '---\nreason: shown\n',
      tries: 2,
      try_limit: 2,
      completed_at: new Date(),
      result: 'FAILED',
      result_text: text,
      queue: 'mail',
      started_at: minutesAgo(1),
    });
    await s.t.pool.query(
      `INSERT INTO task_runner_requests_attempts (request_id, try, host, pid, mode, started_at, result, exit_code, result_text)
      VALUES ($1, 1, 'h1', 4242, 'fresh', now() - interval '2 minutes', 'FAILED', NULL, 'Error: first'),
             ($1, 2, 'h1', 4343, 'spare', now() - interval '1 minute', 'FAILED', NULL, 'Error: boom')`,
      [id],
    );
    const shown = await cli(['show', id], s.at);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(new RegExp(`^request ${id}\\n`));
    expect(shown.stdout).toMatch(/state: +failed \(result FAILED\)/);
    expect(shown.stdout).toMatch(/queue: +mail, priority 0/);
    expect(shown.stdout).toContain('options:\n  ---\n  reason: shown\n');
    expect(shown.stdout).toContain(
      'result_text:\n  Error: boom\n      at run (Fail.mjs:9:11)\n      at <script>alert(1)</script>\n',
    );
    expect(shown.stdout).toMatch(
      /tries \(2 ended\):\n  try 1  FAILED  mode fresh  pid 4242 .*Error: first\n  try 2  FAILED  mode spare  pid 4343/,
    );
    const json = JSON.parse((await cli(['show', id, '--json'], s.at)).stdout);
    expect(json).toMatchObject({
      id,
      taskClassName: 'Fail',
      state: 'failed',
      result: 'FAILED',
      resultText: text,
      queue: 'mail',
      tries: 2,
    });
    expect(json.attempts.map((a: { pid: number }) => a.pid)).toEqual([4242, 4343]);
  });

  it('refuses a missing request with exit code 1 and a bad id with 2', async () => {
    expect(await cli(['show', '987654321'], s.at)).toMatchObject({
      code: 1,
      stderr: 'cw-task-runner: request 987654321 does not exist\n',
    });
    expect((await cli(['show', 'abc'], s.at)).code).toBe(2);
  });
});

describe('list', () => {
  it('lists newest first, filters by state, task and queue, and pages by id', async () => {
    await s.t.pool.query('CREATE TABLE list_jobs (LIKE task_runner_requests INCLUDING ALL)');
    const waiting = await insertRequest(s.t.pool, { task_class_name: 'Echo', created_at: minutesAgo(10) }, 'list_jobs');
    const running = await insertRequest(
      s.t.pool,
      { task_class_name: 'Sleep', pid: 999_999, host: 'h', tries: 1, started_at: new Date() },
      'list_jobs',
    );
    const failed = await insertRequest(
      s.t.pool,
      {
        task_class_name: 'Fail',
        completed_at: new Date(),
        result: 'FAILED',
        tries: 5,
        result_text: 'Error: it broke\nstack',
        queue: 'mail',
      },
      'list_jobs',
    );
    const crashed = await insertRequest(
      s.t.pool,
      { completed_at: new Date(), result: 'TIMED_OUT', tries: 5 },
      'list_jobs',
    );
    const finished = await insertRequest(
      s.t.pool,
      { completed_at: new Date(), result: 'FINISHED', tries: 1, result_text: 'ok' },
      'list_jobs',
    );
    const all = await cli(['list', '--table', 'list_jobs'], s.at);
    expect(all.code).toBe(0);
    const ids = all.stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[0]);
    expect(ids).toEqual([finished, crashed, failed, running, waiting]);
    expect(all.stdout).toMatch(
      new RegExp(`${failed}  failed +Fail  mail  try 5/5  [0-9.]+ (ms|s) ago  Error: it broke\\n`),
    );
    expect(all.stdout).toMatch(new RegExp(`${waiting}  waiting +Echo  default  try 0/5  10 min \\d+ s ago\\n`));
    const byState = async (state: string) =>
      JSON.parse((await cli(['list', '--table', 'list_jobs', '--state', state, '--json'], s.at)).stdout).requests.map(
        (r: { id: string }) => r.id,
      );
    expect(await byState('running')).toEqual([running]);
    expect(await byState('crashed')).toEqual([crashed]);
    expect(await byState('failed')).toEqual([failed]);
    expect(await byState('waiting')).toEqual([waiting]);
    const mail = JSON.parse((await cli(['list', '--table', 'list_jobs', '--queue', 'mail', '--json'], s.at)).stdout);
    expect(mail.requests.map((r: { id: string }) => r.id)).toEqual([failed]);
    const page1 = JSON.parse((await cli(['list', '--table', 'list_jobs', '--limit', '2', '--json'], s.at)).stdout);
    expect(page1.requests.map((r: { id: string }) => r.id)).toEqual([finished, crashed]);
    expect(page1.nextBefore).toBe(crashed);
    const page2 = await cli(['list', '--table', 'list_jobs', '--limit', '2', '--before', page1.nextBefore], s.at);
    expect(page2.stdout).toMatch(new RegExp(`^ *${failed} .*\\n *${running} .*\\nmore: --before ${running}\\n$`));
    const text = JSON.parse((await cli(['list', '--table', 'list_jobs', '--text', 'BROKE', '--json'], s.at)).stdout);
    expect(text.requests.map((r: { id: string }) => r.id)).toEqual([failed]);
  });

  it('lists as failed every row show calls failed: never ended with no try left, ended without a result', async () => {
    await s.t.pool.query('CREATE TABLE gone_jobs (LIKE task_runner_requests INCLUDING ALL)');
    await s.t.pool.query('CREATE TABLE gone_jobs_attempts (LIKE task_runner_requests_attempts INCLUDING ALL)');
    await s.t.pool.query('CREATE TABLE gone_jobs_launchers (LIKE task_runner_requests_launchers INCLUDING ALL)');
    const waiting = await insertRequest(s.t.pool, { task_class_name: 'Echo', tries: 1, try_limit: 2 }, 'gone_jobs');
    const noTryLeft = await insertRequest(s.t.pool, { task_class_name: 'Echo', tries: 3, try_limit: 3 }, 'gone_jobs');
    const noResult = await insertRequest(
      s.t.pool,
      { task_class_name: 'Echo', tries: 1, completed_at: new Date() },
      'gone_jobs',
    );
    const odd = await insertRequest(
      s.t.pool,
      {
        task_class_name: 'Echo',
        tries: 1,
        completed_at: new Date(),
        result: 'INTERRUPTED',
      },
      'gone_jobs',
    );
    const failed = await insertRequest(
      s.t.pool,
      {
        task_class_name: 'Fail',
        tries: 5,
        completed_at: new Date(),
        result: 'FAILED',
      },
      'gone_jobs',
    );
    for (const id of [noTryLeft, noResult, odd, failed]) {
      const shown = JSON.parse((await cli(['show', id, '--table', 'gone_jobs', '--json'], s.at)).stdout);
      expect(shown.state).toBe('failed');
    }
    const listed = await cli(['list', '--table', 'gone_jobs', '--state', 'failed', '--json'], s.at);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).requests.map((r: { id: string }) => r.id)).toEqual([
      failed,
      odd,
      noResult,
      noTryLeft,
    ]);
    const all = JSON.parse((await cli(['list', '--table', 'gone_jobs', '--json'], s.at)).stdout);
    const byId = Object.fromEntries(all.requests.map((r: { id: string; state: string }) => [r.id, r.state]));
    expect(byId).toEqual({
      [waiting]: 'waiting',
      [noTryLeft]: 'failed',
      [noResult]: 'failed',
      [odd]: 'failed',
      [failed]: 'failed',
    });
    const status = JSON.parse((await cli(['status', '--table', 'gone_jobs', '--json'], s.at)).stdout);
    expect(status.counts).toMatchObject({ waiting: 1, finished: 0, givenUp: 4 });
  });

  it('refuses an unknown state and a bad limit with exit code 2', async () => {
    const bad = await cli(['list', '--state', 'sleeping'], s.at);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /--state must be one of waiting, held, running, finished, failed, crashed, parked, cancelled/,
    );
    expect((await cli(['list', '--limit', '0'], s.at)).code).toBe(2);
  });
});

describe('status', () => {
  it('shows depth per queue and task, the oldest wait, recent throughput and live launchers', async () => {
    await s.t.pool.query('CREATE TABLE st_jobs (LIKE task_runner_requests INCLUDING ALL)');
    await s.t.pool.query('CREATE TABLE st_jobs_attempts (LIKE task_runner_requests_attempts INCLUDING ALL)');
    await s.t.pool.query('CREATE TABLE st_jobs_launchers (LIKE task_runner_requests_launchers INCLUDING ALL)');
    await insertRequest(s.t.pool, { task_class_name: 'Echo', created_at: minutesAgo(3) }, 'st_jobs');
    await insertRequest(
      s.t.pool,
      { task_class_name: 'Echo', queue: 'mail', delay_until: new Date(Date.now() + 3_600_000) },
      'st_jobs',
    );
    await insertRequest(
      s.t.pool,
      { task_class_name: 'Sleep', pid: 999_999, host: 'h', tries: 1, launcher_id: 'L1', started_at: new Date() },
      'st_jobs',
    );
    await s.t.pool.query(`INSERT INTO st_jobs_attempts (request_id, try, result, started_at, ended_at)
      SELECT 1, 1, r, now() - interval '2 seconds', now() - interval '1 second' FROM unnest(ARRAY['FINISHED','FINISHED','FINISHED','FAILED','CRASHED']) r`);
    await s.t.pool.query(
      `INSERT INTO st_jobs_launchers (launcher_id, host, pid, concurrency) VALUES ('L1', 'h', 77, 4)`,
    );
    await s.t.pool.query(
      `INSERT INTO st_jobs_launchers (launcher_id, host, pid, concurrency, heartbeat_at) VALUES ('L0', 'h', 66, 4, now() - interval '1 hour')`,
    );
    const text = await cli(['status', '--table', 'st_jobs'], s.at);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      'requests in st_jobs: 1 waiting, 1 delayed, 1 running, 0 held, 0 finished, 0 given up (0 cancelled, 0 parked)\n',
    );
    expect(text.stdout).toContain(
      'last 5 minutes: 3 finished, 1 failed, 1 crashed, 0 other tries (0.6 finished/min)\n',
    );
    expect(text.stdout).toMatch(/oldest waiting request: 3 min \d+ s\n/);
    expect(text.stdout).toContain(
      '  default  Echo  1 / 0 / 0 / 0\n  default  Sleep  0 / 0 / 1 / 0\n  mail  Echo  0 / 1 / 0 / 0\n',
    );
    expect(text.stdout).toMatch(
      /launchers alive: 1\n  h pid 77: 1 of 4 running, 0 held, heartbeat [0-9.]+ (ms|s) ago\n$/,
    );
    const json = JSON.parse((await cli(['status', '--table', 'st_jobs', '--json'], s.at)).stdout);
    expect(json.launcher).toBeNull();
    expect(json.counts).toMatchObject({ waiting: 1, delayed: 1, running: 1 });
    expect(json.depth).toContainEqual({
      queue: 'mail',
      taskClassName: 'Echo',
      waiting: 0,
      delayed: 1,
      running: 0,
      held: 0,
    });
    expect(json.oldestWaitingMs).toBeGreaterThanOrEqual(180_000);
    expect(json.minutes).toHaveLength(5);
    expect(json.launchers).toEqual([
      expect.objectContaining({ launcherId: 'L1', host: 'h', pid: 77, concurrency: 4, running: 1 }),
    ]);
  });
});
