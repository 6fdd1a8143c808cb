import { describe, expect, it } from 'vitest';
import { resolveRunnerConfig } from '../../dist/index.js';
import { queueFilterSql, runnableSql } from '../../dist/store/fragments.js';
import { cleanEnv, cli, workDir } from '../cli/cli-process.js';
import { insertRequest, useTestDatabase, waitFor } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Retention: ended requests older than their result's rule go, with their attempt history, in
 * small batches, one pruner at a time; waiting and running requests stay whatever their age.
 */
const t = useTestDatabase();
const runners = useTestRunners();
const day = 86_400_000;

/** An ended request `ageMs` old with `attempts` history rows; returns its id. */
async function ended(result: string, ageMs: number, attempts = 1): Promise<string> {
  const at = new Date(Date.now() - ageMs);
  const id = await insertRequest(t.pool, { completed_at: at, started_at: at, result, tries: attempts });
  for (let i = 1; i <= attempts; i += 1) {
    await t.pool.query(
      `INSERT INTO task_runner_requests_attempts (request_id, try, result, ended_at) VALUES ($1, $2, $3, $4)`,
      [id, i, result, at],
    );
  }
  return id;
}

async function remaining(): Promise<{ requests: string[]; attempts: string[] }> {
  const requests = await t.pool.query('SELECT id::text FROM task_runner_requests ORDER BY id::bigint');
  const attempts = await t.pool.query(
    'SELECT DISTINCT request_id AS n, request_id::text AS id FROM task_runner_requests_attempts ORDER BY 1',
  );
  return { requests: requests.rows.map((row) => row.id), attempts: attempts.rows.map((row) => row.id) };
}

/** A table with one request of each kind the default rules tell apart. */
async function fill(): Promise<Record<string, string>> {
  await t.pool.query('TRUNCATE task_runner_requests_attempts');
  const old = 40 * day;
  return {
    finishedOld: await ended('FINISHED', 8 * day, 2),
    finishedNew: await ended('FINISHED', 6 * day),
    cancelledOld: await ended('CANCELLED', 8 * day, 0),
    failedMid: await ended('FAILED', 8 * day, 5),
    failedOld: await ended('FAILED', 31 * day, 5),
    crashedOld: await ended('CRASHED', old),
    timedOutOld: await ended('TIMED_OUT', old),
    parkedOld: await ended('PARKED', old, 3),
    // Never pruned, however old: waiting (a retry pending), delayed, and running.
    waiting: await insertRequest(t.pool, { created_at: new Date(Date.now() - old), tries: 2, result: 'FAILED' }),
    delayed: await insertRequest(t.pool, {
      created_at: new Date(Date.now() - old),
      delay_until: new Date(Date.now() + day),
    }),
    running: await insertRequest(t.pool, {
      created_at: new Date(Date.now() - old),
      pid: 999_999,
      host: 'elsewhere',
      tries: 1,
    }),
  };
}

describe('retention', () => {
  it('prunes by result and age with the defaults, history included; a dry run only counts', async () => {
    const ids = await fill();
    const runner = runners.create(t);
    const dry = await runner.prune({ dryRun: true });
    expect(dry).toEqual({
      requests: { FINISHED: 1, CANCELLED: 1, FAILED: 1, CRASHED: 1, TIMED_OUT: 1, PARKED: 1 },
      attempts: 2 + 5 + 1 + 1 + 3,
      ran: true,
      more: false,
      adopted: false,
    });
    expect((await remaining()).requests).toHaveLength(11);
    const pruned = await runner.prune();
    expect(pruned).toEqual(dry);
    const kept = [ids.finishedNew!, ids.failedMid!, ids.waiting!, ids.delayed!, ids.running!].sort(
      (a, b) => Number(a) - Number(b),
    );
    expect(await remaining()).toEqual({
      requests: kept,
      attempts: [ids.finishedNew!, ids.failedMid!].sort((a, b) => Number(a) - Number(b)),
    });
    await runner.stop();
  });

  it('per-result rules: false keeps a result forever; shorter ages prune sooner', async () => {
    const ids = await fill();
    const runner = runners.create(t, { retention: { keep: { FINISHED: false, FAILED: '7d', PARKED: '1000d' } } });
    const result = await runner.prune();
    expect(result.requests).toEqual({ CANCELLED: 1, FAILED: 2, CRASHED: 1, TIMED_OUT: 1 });
    const left = (await remaining()).requests;
    expect(left).toEqual(expect.arrayContaining([ids.finishedOld, ids.finishedNew, ids.parkedOld]));
    expect(left).not.toContain(ids.failedMid);
    await runner.stop();
  });

  it('one pruner at a time: while another holds the lock, prune does nothing', async () => {
    await fill();
    const holder = await t.pool.connect();
    try {
      await holder.query(`SELECT pg_advisory_lock(hashtext('cw_task_runner_prune:task_runner_requests'))`);
      const runner = runners.create(t);
      expect(await runner.prune()).toEqual({ requests: {}, attempts: 0, ran: false, more: false, adopted: false });
      expect((await remaining()).requests).toHaveLength(11);
      await holder.query(`SELECT pg_advisory_unlock(hashtext('cw_task_runner_prune:task_runner_requests'))`);
      expect((await runner.prune()).ran).toBe(true);
      await runner.stop();
    } finally {
      holder.release();
    }
  });

  it(
    'launchers prune on their own in small batches, a run bounded by maxBatchesPerRun',
    { timeout: 60_000 },
    async () => {
      await t.pool.query('TRUNCATE task_runner_requests_attempts');
      for (let i = 0; i < 45; i += 1) await ended('FINISHED', 2 * 3_600_000);
      const keep = await ended('FINISHED', 60_000);
      const retention = { keep: { FINISHED: '1h' }, intervalMs: 200, batchSize: 4, maxBatchesPerRun: 5 };
      const launchers = [0, 1].map(() => runners.create(t, { queues: ['elsewhere'], retention }));
      const runs: { requests: Record<string, number>; ran: boolean; more: boolean }[] = [];
      for (const runner of launchers) runner.events.on('retention:pruned', (result) => runs.push(result));
      await Promise.all(launchers.map((runner) => runner.start()));
      await waitFor(async () => (await remaining()).requests.length === 1, {
        timeoutMs: 30_000,
        what: 'old rows pruned',
      });
      await Promise.all(launchers.map((runner) => runner.stop()));
      expect(await remaining()).toEqual({ requests: [keep], attempts: [keep] });
      // A run deletes 4 × 5 rows at most, so 45 take at least three runs, the first two cut short.
      const productive = runs.filter((run) => (run.requests.FINISHED ?? 0) > 0);
      expect(productive.length).toBeGreaterThanOrEqual(3);
      expect(Math.max(...productive.map((run) => run.requests.FINISHED!))).toBeLessThanOrEqual(20);
      expect(productive.some((run) => run.more)).toBe(true);
      expect(launchers.flatMap((runner) => runners.errors(runner))).toEqual([]);
    },
  );

  it('retention: false keeps every row; prune says so', async () => {
    await fill();
    const runner = runners.create(t, { retention: false });
    await expect(runner.prune()).rejects.toThrow(/retention is false/);
    await runner.stop();
    expect(() =>
      resolveRunnerConfig({ db: 'postgres://x/y', tasksDir: '.', retention: { keep: { DONE: '1d' } } as never }),
    ).toThrow(/retention\.keep.*unknown result "DONE"/);
    expect(() =>
      resolveRunnerConfig({ db: 'postgres://x/y', tasksDir: '.', retention: { keep: { FAILED: 'a week' } } }),
    ).toThrow(/retention\.keep\.FAILED.*duration/);
  });

  it('cw-task-runner prune [--dry-run] reads retention from the config file', async () => {
    await fill();
    const dir = await workDir();
    try {
      const dry = await cli(['prune', '--dry-run'], { cwd: dir.dir, env: cleanEnv({ DATABASE_URL: t.url }) });
      expect(dry.stderr).toBe('');
      expect(dry.stdout).toBe(
        'would delete 6 ended request(s) (1 FINISHED, 1 CANCELLED, 1 FAILED, 1 CRASHED, 1 TIMED_OUT, 1 PARKED) and 12 attempt row(s) from task_runner_requests\n',
      );
      expect((await remaining()).requests).toHaveLength(11);
      const { writeFile } = await import('node:fs/promises');
      await writeFile(`${dir.dir}/cw-task-runner.yml`, 'retention:\n  keep:\n    FINISHED: 1d\n    FAILED: false\n');
      const real = await cli(['prune', '--json', '--database-url', t.url], { cwd: dir.dir });
      expect(JSON.parse(real.stdout)).toMatchObject({
        requests: { FINISHED: 2, CANCELLED: 1, CRASHED: 1, TIMED_OUT: 1, PARKED: 1 },
        dryRun: false,
      });
      await writeFile(`${dir.dir}/cw-task-runner.yml`, 'retention: false\n');
      const off = await cli(['prune'], { cwd: dir.dir, env: cleanEnv({ DATABASE_URL: t.url }) });
      expect(off.stdout).toMatch(/retention is false/);
      await writeFile(`${dir.dir}/cw-task-runner.yml`, 'retention:\n  keep:\n    FINISHED: soon\n');
      const bad = await cli(['prune'], { cwd: dir.dir, env: cleanEnv({ DATABASE_URL: t.url }) });
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/retention\.keep\.FINISHED/);
    } finally {
      await dir.remove();
    }
  });

  it('a long history costs the claim nothing: its pick reads runnable_idx, which holds no ended row', async () => {
    await t.pool.query(`INSERT INTO task_runner_requests (task_class_name, completed_at, result, tries)
      SELECT 'Echo', now() - (g % 1000) * interval '1 minute', 'FINISHED', 1 FROM generate_series(1, 50000) AS g`);
    await t.pool.query(`INSERT INTO task_runner_requests (task_class_name) SELECT 'Echo' FROM generate_series(1, 10)`);
    await t.pool.query('ANALYZE task_runner_requests');
    // The launch statement's pick (src/store/launch-statement.ts), as it runs there.
    const { rows } = await t.pool.query(
      `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)
      SELECT id, priority FROM task_runner_requests WHERE ${runnableSql()} AND ${queueFilterSql(1)}
      ORDER BY priority DESC, id LIMIT 5 FOR UPDATE SKIP LOCKED`,
      [null],
    );
    const plan = JSON.stringify(rows[0]['QUERY PLAN']);
    expect(plan).toContain('"Index Name":"task_runner_requests_runnable_idx"');
    expect(plan).not.toContain('Seq Scan');
    const top = rows[0]['QUERY PLAN'][0].Plan;
    // 50,000 ended rows fill hundreds of pages; the pick touches a handful.
    expect(top['Shared Hit Blocks'] + top['Shared Read Blocks']).toBeLessThan(30);
  });
});
