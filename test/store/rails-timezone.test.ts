import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, type Logger } from '../../dist/index.js';
import { cleanEnv, cliProcess, startLauncher, workDir, type LauncherProcess } from '../cli/cli-process.js';
import { waitFor } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { createRailsDatabase, type RailsDatabase } from '../helpers/rails-database.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * Rails writes UTC into `timestamp without time zone` columns. The runner must read and write
 * them in UTC whatever the database's `timezone` setting and whatever the launcher's own TZ, as
 * ActiveRecord does, while its own timestamptz columns keep working.
 */
const runners = useTestRunners();
const table = 'task_runner_requests';
const cleanups: (() => Promise<unknown>)[] = [];
const launchers: LauncherProcess[] = [];
afterEach(async () => {
  await Promise.all(launchers.splice(0).map((launcher) => launcher.stop('SIGKILL').catch(() => undefined)));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const ms = (iso: unknown): number => new Date(String(iso)).getTime();
const hourMs = 3_600_000;

/** A Rails table, adopted, on a database whose sessions default to Tokyo time (UTC+9). */
async function tokyoDatabase(): Promise<RailsDatabase> {
  const t = await createRailsDatabase();
  cleanups.push(() => t.drop());
  await migrate(t.db);
  await t.pool.query(`ALTER DATABASE ${pg.escapeIdentifier(t.name)} SET timezone = 'Asia/Tokyo'`);
  return t;
}

/** A delayed row (an hour ahead) and then a runnable one, as the application writes them. */
async function railsRows(t: RailsDatabase): Promise<{ delayed: string; runnable: string }> {
  const delayUntil = new Date(Date.now() + hourMs).toISOString();
  const delayed = await t.rails.insert(table, {
    task_class_name: 'Echo',
    options: '--- {}\n',
    delay_until: delayUntil,
  });
  const runnable = await t.rails.insert(table, { task_class_name: 'Echo', options: '---\ntext: hi\n' });
  return { delayed: String(delayed.id), runnable: String(runnable.id) };
}

/** The runnable row ran at the right time; the delayed one waits its hour. */
async function expectTimesRight(t: RailsDatabase, ids: { delayed: string; runnable: string }): Promise<void> {
  const ran = await waitFor(
    async () => {
      const row = await t.rails.find(table, ids.runnable);
      return row.completed_at !== null ? row : null;
    },
    { timeoutMs: 20_000, what: 'the runnable row to end' },
  );
  expect(ran.result).toBe('FINISHED');
  const now = Date.now();
  for (const column of ['created_at', 'started_at', 'completed_at', 'updated_at']) {
    expect(Math.abs(ms(ran[column]) - now), `${column} ${ran[column]} against now`).toBeLessThan(60_000);
  }
  expect(ms(ran.started_at)).toBeGreaterThanOrEqual(ms(ran.created_at) - 1_000);
  expect(ms(ran.completed_at)).toBeGreaterThanOrEqual(ms(ran.started_at));
  const waiting = await t.rails.find(table, ids.delayed);
  expect(waiting).toMatchObject({ pid: null, started_at: null, completed_at: null, tries: 0 });
  // The runner's own timestamptz columns: the try's history row ended now.
  const { rows } = await t.pool.query(
    `SELECT started_at, ended_at FROM task_runner_requests_attempts WHERE request_id = $1`,
    [ids.runnable],
  );
  expect(rows).toHaveLength(1);
  expect(Math.abs(rows[0].ended_at.getTime() - now)).toBeLessThan(60_000);
  expect(Math.abs(rows[0].started_at.getTime() - ms(ran.started_at))).toBeLessThan(1);
}

describe('a server whose time zone is not UTC', () => {
  it('an embedded runner (connection string) reads and writes the Rails columns in UTC', async () => {
    const t = await tokyoDatabase();
    const ids = await railsRows(t);
    const runner = await runners.start(t);
    await finalCompletion(runner, ids.runnable);
    await expectTimesRight(t, ids);
    const found = await runner.find(ids.runnable);
    expect(found!.created_at.toISOString()).toBe(
      new Date((await t.rails.find(table, ids.runnable)).created_at as string).toISOString(),
    );
    await runner.stop();
  });

  it('the standalone launcher and the CLI, with TZ=Asia/Tokyo in their environment too', async () => {
    const t = await tokyoDatabase();
    const ids = await railsRows(t);
    const work = await workDir();
    cleanups.push(() => work.remove());
    const env = cleanEnv({ DATABASE_URL: t.url, CW_TASKS_DIR: fixturesDir, TZ: 'Asia/Tokyo' });
    const launcher = await startLauncher([], { cwd: work.dir, env });
    launchers.push(launcher);
    await expectTimesRight(t, ids);
    const shown = await cliProcess(['show', ids.runnable, '--json'], { cwd: work.dir, env });
    expect(shown.code, shown.stderr).toBe(0);
    const rails = await t.rails.find(table, ids.runnable);
    const detail = JSON.parse(shown.stdout);
    for (const [mine, theirs] of [
      ['createdAt', 'created_at'],
      ['startedAt', 'started_at'],
      ['completedAt', 'completed_at'],
    ] as const) {
      expect(new Date(detail[mine]).toISOString(), mine).toBe(new Date(rails[theirs] as string).toISOString());
    }
    await launcher.stop();
  });

  it("with a pool of the application's own, the runner leaves its sessions alone and warns at start", async () => {
    const t = await tokyoDatabase();
    const pool = new pg.Pool({ connectionString: t.url, max: 4 });
    cleanups.push(() => pool.end());
    const lines: string[] = [];
    const keep = (message: string, fields?: Record<string, unknown>) =>
      void lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: keep, error: keep };
    const runner = runners.create({ url: t.url }, { db: pool, logger });
    await runner.start();
    await runner.stop();
    expect(lines.join('\n')).toMatch(/Asia\/Tokyo/);
    const { rows } = await pool.query('SHOW timezone');
    expect(rows[0].TimeZone).toBe('Asia/Tokyo');
  });
});
