/**
 * Rows a Rails application writes with NULL in the plugin's nullable columns: `task_class_name`
 * ends FAILED at once with a plain reason; a NULL `tries` means no try made yet and a NULL
 * `try_limit` the default limit (5), so those rows run. None is invisible to `status` or `list`,
 * and the claim keeps using its partial index.
 */
import { describe, expect, it } from 'vitest';
import { migrate, startDashboard } from '../../dist/index.js';
import { parseTableName } from '../../dist/config/identifiers.js';
import { claimStatement, claimValues } from '../../dist/store/launch-statement.js';
import { getRow, waitForCompleted } from '../helpers/db.js';
import { railsClient } from '../helpers/rails.js';
import { historyOf } from '../helpers/store.js';
import { useTestRunners } from '../helpers/runner.js';
import { cli, cliOnTestDatabase } from './cli-process.js';

const s = cliOnTestDatabase();
const runners = useTestRunners();

describe('NULL in nullable columns of a Rails-made table', () => {
  it(
    'a NULL task ends FAILED at once; NULL tries and try_limit run; none is invisible',
    { timeout: 60_000 },
    async () => {
      const rails = railsClient(s.t.url);
      await rails.createTable('rails_jobs');
      await migrate(s.t.db, { tableName: 'rails_jobs' });
      const insert = async (attributes: Record<string, unknown>) =>
        String((await rails.insert('rails_jobs', attributes)).id);
      const noTask = await insert({ task_class_name: null, options: '--- \n:created_from: rails\n' });
      const noTries = await insert({ task_class_name: 'Echo', tries: null });
      const noLimit = await insert({ task_class_name: 'Echo', try_limit: null });
      const failing = await insert({
        task_class_name: 'FailTimes',
        options: '---\nsucceedOnTry: 99\n',
        try_limit: null,
      });
      expect(await rails.find('rails_jobs', noTries)).toMatchObject({ tries: null });
      expect(await rails.find('rails_jobs', noLimit)).toMatchObject({ try_limit: null });

      // Before any launcher: all four wait, and status and list say so.
      const table = ['--table', 'rails_jobs'];
      const status = JSON.parse((await cli(['status', ...table, '--json'], s.at)).stdout);
      expect(status.counts).toMatchObject({ waiting: 4, givenUp: 0 });
      expect(status.oldestWaitingMs).not.toBeNull();
      expect(status.depth).toContainEqual(expect.objectContaining({ taskClassName: null, waiting: 1 }));
      const text = (await cli(['status', ...table], s.at)).stdout;
      expect(text).toContain('  default  (no task)  1 / 0 / 0 / 0\n');
      const listed = JSON.parse((await cli(['list', ...table, '--state', 'waiting', '--json'], s.at)).stdout);
      expect(listed.requests.map((r: { id: string }) => r.id).sort()).toEqual(
        [noTask, noTries, noLimit, failing].sort(),
      );
      expect(listed.requests.find((r: { id: string }) => r.id === noLimit)).toMatchObject({ tries: 0, tryLimit: 5 });
      expect((await cli(['list', ...table], s.at)).stdout).toMatch(
        new RegExp(`^ *${noTask}  waiting +\\(no task\\)  default  try 0/5`, 'm'),
      );

      const dashboard = await startDashboard({ db: s.t.db, port: 0, tableName: 'rails_jobs' });
      try {
        const overview = (await (await fetch(`${dashboard.url}api/overview`)).json()) as Record<string, any>;
        expect(overview.counts).toMatchObject({ waiting: 4 });
        const page = (await (await fetch(`${dashboard.url}api/requests`)).json()) as {
          requests: Record<string, unknown>[];
        };
        expect(page.requests.find((r) => r.id === noTask)).toMatchObject({ taskClassName: null, state: 'waiting' });
      } finally {
        await dashboard.close();
      }

      const runner = await runners.start(s.t, { tableName: 'rails_jobs' });
      try {
        const ended = await waitForCompleted(s.t.pool, noTask, 20_000, 'rails_jobs');
        expect(ended).toMatchObject({
          result: 'FAILED',
          tries: 1,
          result_text: 'task_class_name is NULL: no task to run',
        });
        expect((await historyOf(s.t.pool, noTask, 'rails_jobs_attempts')).map((a) => a.result)).toEqual(['FAILED']);
        expect(await waitForCompleted(s.t.pool, noTries, 20_000, 'rails_jobs')).toMatchObject({
          result: 'FINISHED',
          tries: 1,
        });
        expect(await waitForCompleted(s.t.pool, noLimit, 20_000, 'rails_jobs')).toMatchObject({
          result: 'FINISHED',
          tries: 1,
          try_limit: 5,
        });
        const failed = await waitForCompleted(s.t.pool, failing, 30_000, 'rails_jobs');
        expect(failed).toMatchObject({ result: 'FAILED', tries: 5, try_limit: 5 });
        expect(failed.result_text).toMatch(/FailTimes failed on try 5/);
        expect(runners.errors(runner)).toEqual([]);
      } finally {
        await runner.stop();
      }
      const after = JSON.parse((await cli(['status', ...table, '--json'], s.at)).stdout);
      expect(after.counts).toMatchObject({ waiting: 0, finished: 2, givenUp: 2 });
      expect((await getRow(s.t.pool, noTask, 'rails_jobs')).completed_at).not.toBeNull();
    },
  );

  it('the claim reads the runnable index on a Rails-made table of thousands of rows, NULLs included', async () => {
    await railsClient(s.t.url).createTable('rails_big');
    await migrate(s.t.db, { tableName: 'rails_big' });
    await s.t.pool.query(`INSERT INTO rails_big (task_class_name, completed_at, result, tries, created_at, updated_at)
      SELECT 'Echo', now(), 'FINISHED', 1, now(), now() FROM generate_series(1, 6000)`);
    await s.t.pool.query(`INSERT INTO rails_big (task_class_name, tries, try_limit, created_at, updated_at)
      SELECT 'Echo', CASE WHEN n % 3 = 0 THEN NULL ELSE 0 END, CASE WHEN n % 5 = 0 THEN NULL ELSE 5 END, now(), now()
      FROM generate_series(1, 3000) n`);
    await s.t.pool.query('ANALYZE rails_big');
    const values = claimValues('launcher-x', {
      limit: 8,
      startNow: 8,
      host: 'h',
      launcherPid: 1,
      launcherIdentity: null,
      queues: null,
      leaseMs: 60_000,
      maxOptionsBytes: 1_000_000,
    });
    const { rows } = await s.t.pool.query(`EXPLAIN ${claimStatement(parseTableName('rails_big')).text}`, values);
    const plan = rows.map((row) => row['QUERY PLAN'] as string).join('\n');
    expect(plan).toMatch(/Index Scan using rails_big_runnable_idx on rails_big/);
    expect(plan).not.toMatch(/Seq Scan on rails_big\b/);
  });
});
