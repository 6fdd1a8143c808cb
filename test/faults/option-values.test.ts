import { describe, expect, it } from 'vitest';
import { insertRequest, useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { railsClient } from '../helpers/rails.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Options as a Rails application writes them (Ruby's `to_yaml`, symbol keys, bignums) and as a
 * careless one does (a list, a bare scalar), through the launcher in both modes: an integer past
 * 2^53 reaches the task exact, as a BigInt; options that are not a map end the request at once,
 * FAILED with a plain message, before any task code runs.
 */
const runners = useTestRunners();
const t = useTestDatabase();

const modes = [
  { mode: 'process', config: {} },
  { mode: 'thread', config: { taskOverrides: { Describe: { mode: 'thread' as const } } } },
];

describe.each(modes)('options in $mode mode', ({ config }) => {
  it("a Rails client's integer beyond 2^53 reaches the task exact", async () => {
    const runner = await runners.start(t, config);
    const rails = railsClient(t.url);
    const row = await rails.schedule(
      'task_runner_requests',
      { task_class_name: 'Describe' },
      '{"id": 12345678901234567890, "name": "x"}',
    );
    expect(row.options).toBe('---\n:id: 12345678901234567890\n:name: x\n');
    const done = await waitForCompleted(t.pool, String(row.id));
    expect(done).toMatchObject({
      result: 'FINISHED',
      result_text: 'map {"id":"12345678901234567890n","name":"x"} id:bigint',
    });
    // A flat map of small numbers takes the plain path and stays a number.
    const small = await rails.schedule(
      'task_runner_requests',
      { task_class_name: 'Describe' },
      '{"id": 9007199254740991}',
    );
    expect(await waitForCompleted(t.pool, String(small.id))).toMatchObject({
      result: 'FINISHED',
      result_text: 'map {"id":9007199254740991} id:number',
    });
    expect(runners.errors(runner)).toEqual([]);
    await runner.stop();
  });

  it('refuses options that are not a map: FAILED after one try, with a plain message', async () => {
    const runner = await runners.start(t, config);
    const rails = railsClient(t.url);
    const cases: [string, string][] = [
      [
        String((await rails.schedule('task_runner_requests', { task_class_name: 'Describe' }, '[1, 2, 3]')).id),
        'a list',
      ],
      [await insertRequest(t.pool, { task_class_name: 'Describe', options: '--- 42\n' }), 'the number 42'],
      [await insertRequest(t.pool, { task_class_name: 'Describe', options: '--- "text"\n' }), 'the text "text"'],
    ];
    for (const [id, what] of cases) {
      const row = await waitForCompleted(t.pool, String(id));
      expect(row).toMatchObject({ result: 'FAILED', tries: 1, pid: null });
      expect(row.result_text).toBe(
        `invalid task options: options must be a map of names to values (key: value), got ${what}`,
      );
    }
    // No options at all is the empty map, as in the seed's rows.
    for (const options of [null, '', '--- null\n']) {
      const id = await insertRequest(t.pool, { task_class_name: 'Describe', options });
      expect(await waitForCompleted(t.pool, id)).toMatchObject({
        result: 'FINISHED',
        result_text: 'map {} id:undefined',
      });
    }
    expect(runners.errors(runner)).toEqual([]);
    await runner.stop();
  });
});

describe('schedule() with options that are not a map', () => {
  it('refuses them before writing a row', async () => {
    const runner = runners.create(t);
    for (const options of [[1, 2, 3], 42, 'text', true]) {
      await expect(runner.schedule('Describe', options)).rejects.toMatchObject({
        code: 'OPTIONS_INVALID',
        message: expect.stringMatching(/options must be an object of names to values, got /),
      });
    }
    // Nothing given, or null, is no options.
    const id = await runner.schedule('Describe', null);
    expect((await t.pool.query('SELECT options FROM task_runner_requests WHERE id = $1', [id])).rows[0].options).toBe(
      '---\n{}\n',
    );
    const big = await runner.schedule('Describe', { id: 12345678901234567890n });
    expect((await t.pool.query('SELECT options FROM task_runner_requests WHERE id = $1', [big])).rows[0].options).toBe(
      '---\nid: 12345678901234567890\n',
    );
    expect((await t.pool.query('SELECT count(*)::int AS n FROM task_runner_requests')).rows[0].n).toBe(2);
    await runner.stop();
  });
});
