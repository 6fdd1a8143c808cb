import { afterEach, describe, expect, it } from 'vitest';
import { createClient, migrate, type Logger } from '../../dist/index.js';
import { parseTableName } from '../../dist/config/identifiers.js';
import { RecurringStore } from '../../dist/store/recurring-store.js';
import { cleanEnv, cli, workDir } from '../cli/cli-process.js';
import { waitFor, waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { createRailsDatabase, type RailsDatabase } from '../helpers/rails-database.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * A table a Rails 6.1 application made and still writes, adopted by the runner: its own inserts
 * work on it (`t.timestamps` is NOT NULL without a default), it keeps `updated_at` current, it
 * says at start what it changed, and retention leaves the application's rows alone unless told.
 */
const runners = useTestRunners();
const table = 'task_runner_requests';
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function railsDatabase(): Promise<RailsDatabase> {
  const t = await createRailsDatabase();
  cleanups.push(() => t.drop());
  return t;
}

/** A logger that keeps its lines. */
function recordingLogger(): Logger & { lines: { level: string; message: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; message: string; fields: Record<string, unknown> }[] = [];
  const keep =
    (level: string) =>
    (message: string, fields: Record<string, unknown> = {}) =>
      void lines.push({ level, message, fields });
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

const utcMs = (iso: unknown): number => new Date(String(iso)).getTime();

describe('a Rails-made table, adopted', () => {
  it('migrate gives created_at and updated_at a UTC default and says so', async () => {
    const t = await railsDatabase();
    const result = await migrate(t.db);
    expect(result).toMatchObject({ created: false, origin: 'adopted', addedDefaults: ['created_at', 'updated_at'] });
    const { rows } = await t.pool.query(
      `SELECT column_name, column_default FROM information_schema.columns
      WHERE table_name = $1 AND column_name IN ('created_at', 'updated_at') ORDER BY column_name`,
      [table],
    );
    for (const row of rows) expect(row.column_default).toMatch(/utc/i);
    // A second run changes nothing, and still knows whose table it is.
    expect(await migrate(t.db)).toMatchObject({
      created: false,
      origin: 'adopted',
      addedDefaults: [],
      addedColumns: [],
      addedTables: [],
    });
  });

  it('every insert of the runner works: client, runner, scheduleMany, recurring, CLI schedule', async () => {
    const t = await railsDatabase();
    await migrate(t.db);
    const before = Date.now();
    const client = createClient({ db: t.url });
    cleanups.push(() => client.close());
    const ids = [
      await client.schedule('Echo', { text: 'client' }),
      ...(await client.scheduleMany([{ taskClassName: 'Echo', options: { text: 'many' } }, { taskClassName: 'Echo' }])),
      await client.schedule('Echo', {}, { uniqueKey: 'k1' }),
    ];
    const runner = runners.create(t);
    ids.push(await runner.schedule('Echo', { text: 'runner' }));
    const recurring = new RecurringStore(t.db, parseTableName(table));
    await recurring.register(
      [
        {
          name: 'digest',
          taskClassName: 'Echo',
          cron: '* * * * *',
          timezone: 'UTC',
          options: '--- {}\n',
          queue: 'default',
          priority: 0,
          tryLimit: 5,
          backfill: 0,
        },
      ],
      new Date(Date.now() - 120_000),
    );
    const enqueued = await recurring.enqueue('digest', [new Date(Date.now() - 60_000)]);
    expect(enqueued.ids).toHaveLength(1);
    ids.push(...enqueued.ids);
    const work = await workDir();
    cleanups.push(() => work.remove());
    const scheduled = await cli(['schedule', 'Echo', '--options', 'text: cli'], {
      cwd: work.dir,
      env: cleanEnv({ DATABASE_URL: t.url, CW_TASKS_DIR: fixturesDir }),
    });
    expect(scheduled.stderr).toBe('');
    expect(scheduled.code).toBe(0);
    ids.push(scheduled.stdout.trim());
    await runner.stop();
    // As the application reads them: each has its timestamps, in UTC, from the database's now.
    for (const id of ids) {
      const row = await t.rails.find(table, id);
      expect(utcMs(row.created_at)).toBeGreaterThan(before - 5_000);
      expect(utcMs(row.created_at)).toBeLessThan(Date.now() + 5_000);
      expect(row.updated_at).toBe(row.created_at);
    }
  });

  it('the runner says at start what it changed, and that retention leaves the table alone', async () => {
    const t = await railsDatabase();
    const logger = recordingLogger();
    const runner = await runners.start(t, { logger });
    await runner.stop();
    const said = logger.lines.map((line) => `${line.message} ${JSON.stringify(line.fields)}`).join('\n');
    expect(said).toMatch(/adopted/);
    expect(said).toMatch(/created_at/);
    expect(said).toMatch(/updated_at/);
    expect(said).toMatch(/retention/i);
  });

  it("keeps updated_at current on every change the runner makes, and leaves the application's own as written", async () => {
    const t = await railsDatabase();
    await migrate(t.db);
    const old = '2010-03-08T22:52:24.000000Z';
    const row = await t.rails.insert(table, {
      task_class_name: 'Echo',
      options: '--- {}\n',
      created_at: old,
      updated_at: old,
    });
    const id = String(row.id);
    const runner = await runners.start(t);
    await finalCompletion(runner, id);
    const finished = await t.rails.find(table, id);
    expect(finished.result).toBe('FINISHED');
    expect(utcMs(finished.updated_at)).toBeGreaterThan(Date.now() - 60_000);
    expect(utcMs(finished.updated_at)).toBeGreaterThanOrEqual(utcMs(finished.completed_at));
    // The application's own write keeps the updated_at it gives.
    const written = await t.rails.update(table, id, {
      result_text: 'edited by rails',
      updated_at: '2011-01-01T00:00:00.000000Z',
    });
    expect(written.updated_at).toBe('2011-01-01T00:00:00.000000Z');
    // retry (and cancel) are changes of the runner's too.
    await runner.retry(id);
    const retried = await t.rails.find(table, id);
    expect(utcMs(retried.updated_at)).toBeGreaterThan(Date.now() - 60_000);
    await waitForCompleted(t.pool, id);
    await runner.stop();
  });

  it("retention deletes none of an adopted table's rows unless turned on for it", async () => {
    const t = await railsDatabase();
    const oldRow = await t.rails.insert(table, {
      task_class_name: 'NoOp',
      result: 'FINISHED',
      tries: 1,
      started_at: '2010-03-08T22:56:17Z',
      completed_at: '2010-03-08T22:56:24Z',
      created_at: '2010-03-08T22:52:24Z',
      updated_at: '2010-03-08T22:56:24Z',
    });
    const id = String(oldRow.id);
    await migrate(t.db);
    // Twice, as across a restart: the runner remembers it adopted the table.
    await migrate(t.db);
    const keeping = runners.create(t);
    const kept = await keeping.prune();
    await keeping.stop();
    expect(kept).toMatchObject({ ran: false, adopted: true, requests: {} });
    expect((await t.rails.all(table)).map((r) => String(r.id))).toEqual([id]);
    // By hand too: the CLI's prune says why it does nothing.
    const work = await workDir();
    cleanups.push(() => work.remove());
    const byHand = await cli(['prune'], { cwd: work.dir, env: cleanEnv({ DATABASE_URL: t.url }) });
    expect(byHand).toMatchObject({ code: 0 });
    expect(byHand.stdout).toMatch(/task_runner_requests is adopted .*retention.pruneAdopted is true; nothing done/);
    expect((await t.rails.all(table)).map((r) => String(r.id))).toEqual([id]);
    const pruning = runners.create(t, { retention: { pruneAdopted: true } });
    const pruned = await pruning.prune();
    await pruning.stop();
    expect(pruned).toMatchObject({ ran: true, adopted: true, requests: { FINISHED: 1 } });
    expect(await t.rails.all(table)).toEqual([]);
  });
});

describe('a table the runner created', () => {
  it("keeps today's retention default", async () => {
    const t = await createRailsDatabase();
    cleanups.push(() => t.drop());
    await t.pool.query(`DROP TABLE ${table}`);
    expect(await migrate(t.db)).toMatchObject({ created: true, origin: 'created' });
    await migrate(t.db);
    await t.pool.query(
      `INSERT INTO ${table} (task_class_name, result, tries, completed_at) VALUES ('NoOp', 'FINISHED', 1, '2010-03-08 22:56:24+00')`,
    );
    const runner = runners.create(t);
    const pruned = await runner.prune();
    await runner.stop();
    expect(pruned).toMatchObject({ ran: true, adopted: false, requests: { FINISHED: 1 } });
    await waitFor(async () => (await t.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 0, {
      what: 'the old row gone',
    });
    // No updated_at, so no trigger of the kind: only the two notify triggers.
    const { rows } = await t.pool.query(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1`,
      [table],
    );
    expect(rows.map((row) => row.tgname)).toEqual([
      'task_runner_requests_cw_insert_notify',
      'task_runner_requests_cw_update_notify',
    ]);
  });

  it("with an updated_at of the application's among the extra columns, fills and touches it as on an adopted table", async () => {
    const t = await createRailsDatabase();
    cleanups.push(() => t.drop());
    await t.pool.query(`DROP TABLE ${table}`);
    const result = await migrate(t.db, {
      extraColumns: (c) => c.addColumn('updated_at', 'timestamptz', (col) => col.notNull()),
    });
    expect(result).toMatchObject({
      created: true,
      origin: 'created',
      addedDefaults: ['updated_at'],
      addedTriggers: ['task_runner_requests_cw_touch_updated_at'],
    });
    const client = createClient({ db: t.url });
    cleanups.push(() => client.close());
    const id = await client.schedule('Echo', { text: 'x' });
    await t.pool.query(`UPDATE ${table} SET updated_at = '2010-01-01 00:00:00+00' WHERE id = $1`, [id]);
    await client.cancel(id);
    const { rows } = await t.pool.query(`SELECT updated_at, result FROM ${table} WHERE id = $1`, [id]);
    expect(rows[0].result).toBe('CANCELLED');
    expect(Date.now() - rows[0].updated_at.getTime()).toBeLessThan(60_000);
  });
});
