/**
 * Recurring entries and retention from the config file, in two standalone launcher processes
 * sharing one database: the entry runs at each due time once, and finished runs are pruned.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { useTestDatabase, waitFor } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { cleanEnv, cli, startLauncher, workDir, type LauncherProcess } from '../cli/cli-process.js';

const t = useTestDatabase();
const launchers: LauncherProcess[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await Promise.all(launchers.splice(0).map((launcher) => launcher.stop('SIGKILL').catch(() => undefined)));
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function launcherDir(): Promise<string> {
  const { dir, remove } = await workDir();
  cleanups.push(remove);
  await writeFile(
    path.join(dir, 'cw-task-runner.yml'),
    [
      `tasksDir: ${JSON.stringify(fixturesDir)}`,
      'concurrency: 2',
      'shutdownGraceMs: 300',
      'killTimeoutMs: 300',
      'recurring:',
      '  - name: echo-every-second',
      '    task: Echo',
      '    cron: "* * * * * *"',
      '    options: { from: recurring }',
      'retention:',
      '  keep: { FINISHED: 2s }',
      '  intervalMs: 300',
    ].join('\n'),
  );
  return dir;
}

describe('recurring and retention in standalone launchers', () => {
  it(
    'two launcher processes run the entry at each due time once and prune finished runs',
    { timeout: 90_000 },
    async () => {
      await t.pool.query('TRUNCATE task_runner_requests_recurring, task_runner_requests_attempts');
      const env = cleanEnv({ DATABASE_URL: t.url });
      const dirs = await Promise.all([launcherDir(), launcherDir()]);
      for (const dir of dirs) launchers.push(await startLauncher([], { cwd: dir, env }));
      const firstId = await waitFor(
        async () => {
          const { rows } = await t.pool.query(
            `SELECT min(id)::int AS id FROM task_runner_requests WHERE result = 'FINISHED'`,
          );
          return rows[0].id as number | null;
        },
        { timeoutMs: 30_000, what: 'a recurring run to finish' },
      );
      // Runs keep coming, never two for one due time, and finished ones older than 2 s go.
      const doubled: string[] = [];
      await waitFor(
        async () => {
          const dup = await t.pool.query(`SELECT delay_until FROM task_runner_requests GROUP BY 1 HAVING count(*) > 1`);
          doubled.push(...dup.rows.map((row) => row.delay_until.toISOString()));
          const { rows } = await t.pool.query(
            `SELECT min(id)::int AS low, max(id)::int AS high FROM task_runner_requests`,
          );
          return rows[0].low > firstId && rows[0].high >= firstId + 5;
        },
        { timeoutMs: 45_000, intervalMs: 200, what: 'later runs, and the first one pruned' },
      );
      expect(doubled).toEqual([]);
      const listed = await cli(['recurring', '--json'], { cwd: dirs[0]!, env });
      expect(JSON.parse(listed.stdout)).toMatchObject([
        { name: 'echo-every-second', taskClassName: 'Echo', cron: '* * * * * *', timezone: 'UTC', backfill: 0 },
      ]);
      const codes = await Promise.all(launchers.splice(0).map((launcher) => launcher.stop('SIGTERM')));
      expect(codes).toEqual([0, 0]);
      const { rows } = await t.pool.query(
        `SELECT count(*)::int AS n FROM task_runner_requests WHERE options NOT LIKE '%from: recurring%'`,
      );
      expect(rows[0].n).toBe(0);
    },
  );
});
