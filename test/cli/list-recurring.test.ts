import { describe, expect, it } from 'vitest';
import { cleanEnv, cli, workDir } from './cli-process.js';
import { useTestDatabase } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * `list --recurring` prints what `recurring` prints (one formatter serves both): entries declared
 * in a launcher's config and through runner.recurring(), with their last and next run.
 */
const t = useTestDatabase();
const runners = useTestRunners();

interface Listed {
  name: string;
  taskClassName: string;
  cron: string;
  timezone: string;
  lastRequestId: string | null;
  lastDueAt: string;
  nextDueAt: string | null;
}

describe('list --recurring', () => {
  it(
    'lists entries from a config and from runner.recurring() as the recurring command does',
    { timeout: 60_000 },
    async () => {
      // A weekday-morning entry that has not run yet, declared as a config file's `recurring:` is.
      const digest = {
        name: 'morning-digest',
        task: 'Echo',
        cron: '0 7 * * 1-5',
        timezone: 'Europe/Paris',
        queue: 'recurring_only',
      };
      const runner = await runners.start(t, { queues: ['elsewhere'], recurring: [digest] });
      const enqueued = runner.events.waitFor('recurring:enqueued', (e) => e.name === 'each-second', 10_000);
      await runner.recurring({ name: 'each-second', task: 'Echo', cron: '* * * * * *', queue: 'recurring_only' });
      await enqueued;
      await runner.stop();
      const { rows } = await t.pool.query(
        `SELECT last_request_id::text AS id FROM task_runner_requests_recurring WHERE name = 'each-second'`,
      );
      const lastId: string = rows[0].id;

      const dir = await workDir();
      try {
        const at = { cwd: dir.dir, env: cleanEnv({ DATABASE_URL: t.url }) };
        const listed = await cli(['list', '--recurring'], at);
        const direct = await cli(['recurring'], at);
        expect(listed.stderr).toBe('');
        expect([listed.code, direct.code]).toEqual([0, 0]);
        const lines = listed.stdout.trimEnd().split('\n');
        const directLines = direct.stdout.trimEnd().split('\n');
        expect(lines).toHaveLength(3);
        expect(lines[0]).toMatch(
          /^NAME\s+TASK\s+CRON\s+TIMEZONE\s+MISSED\s+LAST DUE\s+LAST REQUEST\s+NEXT DUE\s+REGISTERED$/,
        );
        // Sorted by name: each-second, then morning-digest. Its next due time is the same for both
        // commands (a weekday 07:00 in Paris: 05:00Z or 06:00Z), and nothing ran yet.
        expect(lines[2]).toMatch(
          /^morning-digest\s+Echo\s+0 7 \* \* 1-5\s+Europe\/Paris\s+skip\s+-\s+-\s+\S+T0[56]:00:00Z\s+\S+Z$/,
        );
        expect(lines[0]).toBe(directLines[0]);
        expect(lines[2]).toBe(directLines[2]);
        // The per-second entry: its last run is the request enqueued, and its next one follows it
        // (the next due time moves on between the two commands, so only up to it).
        const upToNext = (line: string) => line.split(/\s{2,}/).slice(0, 7);
        expect(upToNext(lines[1]!)).toEqual([
          'each-second',
          'Echo',
          '* * * * * *',
          'UTC',
          'skip',
          expect.stringMatching(/Z$/),
          lastId,
        ]);
        expect(upToNext(lines[1]!)).toEqual(upToNext(directLines[1]!));

        const json = await cli(['list', '--recurring', '--json'], at);
        expect(json.code).toBe(0);
        const entries = JSON.parse(json.stdout) as Listed[];
        expect(entries.map((e) => e.name)).toEqual(['each-second', 'morning-digest']);
        const [second, morning] = entries as [Listed, Listed];
        expect(second.lastRequestId).toBe(lastId);
        expect(new Date(second.nextDueAt!).getTime()).toBeGreaterThan(new Date(second.lastDueAt).getTime());
        expect(morning).toMatchObject({
          taskClassName: 'Echo',
          cron: '0 7 * * 1-5',
          timezone: 'Europe/Paris',
          lastRequestId: null,
        });
        const directJson = JSON.parse((await cli(['recurring', '--json'], at)).stdout) as Listed[];
        expect(directJson[1]).toEqual(morning);
      } finally {
        await dir.remove();
      }
    },
  );

  it('refuses a request filter beside --recurring, and says so when nothing is registered', async () => {
    const dir = await workDir();
    try {
      const mixed = await cli(['list', '--recurring', '--state', 'failed'], {
        cwd: dir.dir,
        env: cleanEnv({ DATABASE_URL: t.url }),
      });
      expect(mixed.code).toBe(2);
      expect(mixed.stderr).toMatch(/--recurring .*no --state/);
      await t.pool.query('TRUNCATE task_runner_requests_recurring');
      const empty = await cli(['list', '--recurring'], { cwd: dir.dir, env: cleanEnv({ DATABASE_URL: t.url }) });
      expect(empty.code).toBe(0);
      expect(empty.stdout).toBe('no recurring tasks registered on task_runner_requests\n');
    } finally {
      await dir.remove();
    }
  });
});
