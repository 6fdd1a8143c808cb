import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { createTaskRunnerRequestTable, dropTaskRunnerRequestTable, migrate } from '../../dist/index.js';
import { useTestDatabase, getRow, insertRequest } from '../helpers/db.js';

const t = useTestDatabase({ truncate: false });

async function columnsOf(table: string, schema = 'public'): Promise<Map<string, string>> {
  const { rows } = await t.pool.query<{ column_name: string; data_type: string }>(
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
    [schema, table],
  );
  return new Map(rows.map((row) => [row.column_name, row.data_type]));
}

async function supportObjects(table: string): Promise<{ triggers: string[]; indexes: string[] }> {
  const triggers = await t.pool.query<{ tgname: string }>(
    'SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal ORDER BY tgname',
    [table],
  );
  const indexes = await t.pool.query<{ indexname: string }>(
    'SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname',
    [table.split('.').pop()],
  );
  return { triggers: triggers.rows.map((r) => r.tgname), indexes: indexes.rows.map((r) => r.indexname) };
}

const seedColumns = [
  'id',
  'created_at',
  'task_class_name',
  'pid',
  'started_at',
  'completed_at',
  'result',
  'tries',
  'try_limit',
  'options',
  'delay_until',
  'result_text',
];
const designColumns = [
  'queue',
  'priority',
  'host',
  'launcher_id',
  'process_identity',
  'thread_id',
  'lease_expires_at',
  'crashes',
  'timeout_ms',
  'cancel_requested_at',
  'traceparent',
  'unique_key',
];

describe('migrate', () => {
  it('has created the default table with every seed and design column', async () => {
    const columns = await columnsOf('task_runner_requests');
    expect([...columns.keys()].sort()).toEqual([...seedColumns, ...designColumns].sort());
  });

  it('is idempotent: running it again changes nothing', async () => {
    const before = await supportObjects('task_runner_requests');
    expect(before.triggers).toHaveLength(2);
    const id = await insertRequest(t.pool, { options: { text: 'kept' } });

    await expect(migrate(t.db)).resolves.toEqual({
      created: false,
      addedColumns: [],
      addedTables: [],
      origin: 'created',
      addedDefaults: [],
      addedTriggers: [],
    });
    await expect(migrate(t.db)).resolves.toEqual({
      created: false,
      addedColumns: [],
      addedTables: [],
      origin: 'created',
      addedDefaults: [],
      addedTriggers: [],
    });

    expect(await supportObjects('task_runner_requests')).toEqual(before);
    expect((await getRow(t.pool, id)).options).toBe('{"text":"kept"}');
  });

  it('survives several processes migrating a new table at once', async () => {
    const results = await Promise.all([1, 2, 3, 4].map(() => migrate(t.db, { tableName: 'raced_jobs' })));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(results.every((r) => r.addedColumns.length === 0)).toBe(true);
    expect((await supportObjects('raced_jobs')).triggers).toHaveLength(2);
  });

  it('fills the seed defaults: tries 0, try_limit 5, queue default, priority 0', async () => {
    const id = await insertRequest(t.pool, { task_class_name: 'Echo' });
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({ tries: 0, try_limit: 5, queue: 'default', priority: 0, pid: null, completed_at: null });
    expect(row.created_at).toBeInstanceOf(Date);
  });
});

describe('createTaskRunnerRequestTable', () => {
  it("creates a custom-named table with the application's extra columns", async () => {
    await createTaskRunnerRequestTable(t.db, 'custom_jobs', (table) =>
      table.addColumn('account_id', 'bigint').addColumn('note', 'text', (c) => c.defaultTo('none')),
    );
    const columns = await columnsOf('custom_jobs');
    for (const column of [...seedColumns, ...designColumns]) expect(columns.has(column), column).toBe(true);
    expect(columns.get('account_id')).toBe('bigint');
    expect(columns.get('note')).toBe('text');

    const id = await insertRequest(t.pool, { task_class_name: 'Echo', account_id: 42 }, 'custom_jobs');
    expect(await getRow(t.pool, id, 'custom_jobs')).toMatchObject({ account_id: '42', note: 'none', tries: 0 });
    // The upgrade path leaves extra columns alone.
    await expect(migrate(t.db, { tableName: 'custom_jobs' })).resolves.toEqual({
      created: false,
      addedColumns: [],
      addedTables: [],
      origin: 'created',
      addedDefaults: [],
      addedTriggers: [],
    });
  });

  it('creates a schema-qualified table', async () => {
    await sql`CREATE SCHEMA IF NOT EXISTS jobs`.execute(t.db);
    await createTaskRunnerRequestTable(t.db, 'jobs.requests');
    expect((await columnsOf('requests', 'jobs')).has('lease_expires_at')).toBe(true);
    const id = await insertRequest(t.pool, {}, 'jobs.requests');
    expect(await getRow(t.pool, id, 'jobs.requests')).toMatchObject({ task_class_name: 'Echo' });
    await expect(migrate(t.db, { tableName: 'jobs.requests' })).resolves.toEqual({
      created: false,
      addedColumns: [],
      addedTables: [],
      origin: 'created',
      addedDefaults: [],
      addedTriggers: [],
    });
  });

  it('keeps derived names unique and within 63 bytes for a long table name', async () => {
    const long = `a${'b'.repeat(61)}x`;
    expect(long).toHaveLength(63);
    await createTaskRunnerRequestTable(t.db, long);
    const { triggers, indexes } = await supportObjects(long);
    expect(triggers).toHaveLength(2);
    expect(indexes.length).toBeGreaterThanOrEqual(3); // primary key, runnable, running
    for (const name of [...triggers, ...indexes]) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
  });

  it('dropTaskRunnerRequestTable removes the table and its trigger function', async () => {
    await createTaskRunnerRequestTable(t.db, 'doomed_jobs');
    await dropTaskRunnerRequestTable(t.db, 'doomed_jobs');
    const { rows } = await t.pool.query(`SELECT to_regclass('doomed_jobs') AS found,
      (SELECT count(*)::int FROM pg_proc WHERE proname LIKE 'doomed_jobs%') AS functions`);
    expect(rows[0]).toEqual({ found: null, functions: 0 });
  });
});
