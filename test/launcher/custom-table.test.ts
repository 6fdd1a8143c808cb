import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createTaskRunnerRequestTable } from '../../dist/index.js';
import { useTestDatabase, getRow, insertRequest, waitForCompleted } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/** The runner on a table of the application's choosing: custom name and columns, or the Rails plugin's own. */
const samplesDir = fileURLToPath(new URL('../../dist/tasks/samples/', import.meta.url));
const runners = useTestRunners();

const t = useTestDatabase({ truncate: false });

describe('a custom request table', () => {
  it('runs requests of a table with extra columns, leaving them alone and the default table untouched', async () => {
    await createTaskRunnerRequestTable(t.db, 'custom_jobs', (table) =>
      table.addColumn('account_id', 'bigint').addColumn('note', 'text'),
    );
    const elsewhere = await insertRequest(t.pool, { options: { text: 'default table' } });
    const id = await insertRequest(t.pool, { options: { text: 'custom' }, account_id: 7, note: 'mine' }, 'custom_jobs');

    const runner = runners.create(t, { tableName: 'custom_jobs' });
    const finished = finalCompletion(runner, id);
    await runner.start();
    expect(await finished).toMatchObject({ result: 'FINISHED', resultText: 'custom' });
    expect(await getRow(t.pool, id, 'custom_jobs')).toMatchObject({
      result: 'FINISHED',
      account_id: '7',
      note: 'mine',
      pid: null,
    });

    // Its NOTIFY channel is its own too: a row there wakes it.
    const second = await runner.schedule('Echo', { text: 'scheduled' });
    expect(await waitForCompleted(t.pool, second, 10_000, 'custom_jobs')).toMatchObject({ result_text: 'scheduled' });
    expect(await getRow(t.pool, elsewhere)).toMatchObject({ tries: 0, pid: null, result: null });
    await runner.stop();
  });

  it("upgrades and runs the Rails plugin's table as it was left", async () => {
    await t.pool.query(`
      CREATE TABLE legacy_requests (
        id serial PRIMARY KEY, created_at timestamp, task_class_name varchar(255), pid integer,
        started_at timestamp, completed_at timestamp, result varchar(255), tries integer DEFAULT 0,
        try_limit integer DEFAULT 5, options text, delay_until timestamp, result_text text)`);
    const { rows } = await t.pool.query<{ id: number }>(`
      INSERT INTO legacy_requests (created_at, task_class_name, tries, try_limit, options)
      VALUES (now(), 'NoOp', 0, 5, E'--- \\n:created_from: self.schedule\\n') RETURNING id`);
    const id = String(rows[0]!.id);

    const runner = await runners.start(t, { tableName: 'legacy_requests', tasksDir: samplesDir });
    const row = await waitForCompleted(t.pool, id, 15_000, 'legacy_requests');
    expect(row).toMatchObject({
      result: 'FINISHED',
      tries: 1,
      pid: null,
      result_text: `NOOP ${id}: OK! created from: self.schedule`,
    });
    await runner.stop();
  });
});
