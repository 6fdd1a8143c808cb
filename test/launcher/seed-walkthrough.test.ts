import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import NoOp from '../../dist/tasks/samples/NoOp.js';
import { useTestDatabase, getRow, waitForCompleted } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/** The seed README's "Use the NoOp task" example, end to end. */
const samplesDir = fileURLToPath(new URL('../../dist/tasks/samples/', import.meta.url));
const runners = useTestRunners();

const t = useTestDatabase({ truncate: false });

describe('the seed walkthrough', () => {
  it("schedules NoOp through its factory; the row ends as in the seed's snapshot", async () => {
    const runner = runners.create(t, { tasksDir: samplesDir });
    const id = await NoOp.schedule(runner);

    // Before it runs: the seed's first snapshot.
    expect(await getRow(t.pool, id)).toMatchObject({
      task_class_name: 'NoOp',
      pid: null,
      started_at: null,
      completed_at: null,
      result: null,
      tries: 0,
      try_limit: 5,
      delay_until: null,
      result_text: null,
    });
    const options = (await getRow(t.pool, id)).options as string;
    expect(options).toMatch(/^---\n/);
    expect(options).toContain('created_from: self.schedule');

    const started = runner.events.waitFor('task:started', (e) => e.id === id, 15_000);
    const completed = finalCompletion(runner, id);
    await runner.start();
    const { pid } = await started;
    expect(pid).not.toBe(process.pid);
    expect(await completed).toMatchObject({ result: 'FINISHED', tries: 1, ended: true });

    // After it ran: the seed's second snapshot.
    const row = await getRow(t.pool, id);
    expect(row).toMatchObject({
      task_class_name: 'NoOp',
      pid: null,
      result: 'FINISHED',
      tries: 1,
      try_limit: 5,
      delay_until: null,
      result_text: `NOOP ${id}: OK! created from: self.schedule`,
    });
    expect(row.started_at).toBeInstanceOf(Date);
    expect(row.completed_at).toBeInstanceOf(Date);
    expect(row.completed_at.getTime()).toBeGreaterThanOrEqual(row.started_at.getTime());
    expect(row.created_at.getTime()).toBeLessThanOrEqual(row.started_at.getTime());
    expect((await runner.status()).counts).toMatchObject({ finished: 1, waiting: 0, running: 0 });
    await runner.stop();
  });

  it('runs a row written the Rails way, Ruby symbol keys and all', async () => {
    const runner = await runners.start(t, { tasksDir: samplesDir });
    const { rows } = await t.pool.query<{ id: string }>(
      `INSERT INTO task_runner_requests (task_class_name, options) VALUES ('NoOp', E'--- \\n:created_from: self.schedule\\n') RETURNING id`,
    );
    const id = rows[0]!.id;
    const row = await waitForCompleted(t.pool, id);
    expect(row).toMatchObject({
      result: 'FINISHED',
      tries: 1,
      pid: null,
      result_text: `NOOP ${id}: OK! created from: self.schedule`,
    });
    await runner.stop();
  });
});
