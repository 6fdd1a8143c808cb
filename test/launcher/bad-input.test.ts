import { describe, expect, it } from 'vitest';
import { useTestDatabase, getRow, insertRequest, waitForCompleted } from '../helpers/db.js';
import { finalCompletion, useTestRunners } from '../helpers/runner.js';

/**
 * Rows no task can run (written by hand, by an old app, by an attacker): each gets a clear error
 * in result_text, and the launcher carries on. Invalid options end the request at once (retrying
 * cannot fix them); an unknown name is retried, since the task may be deployed meanwhile.
 */
const runners = useTestRunners();

const t = useTestDatabase();

const aliasBomb = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefghi'.split('').map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
].join('\n');

const cases: { what: string; fields: Record<string, unknown>; tries: number; text: RegExp }[] = [
  {
    what: 'an unknown task name',
    fields: { task_class_name: 'NoSuchTask', try_limit: 2 },
    tries: 2,
    text: /unknown task class "NoSuchTask"; known tasks: .*Echo/,
  },
  {
    what: 'a path as task name',
    fields: { task_class_name: '../../etc/passwd', try_limit: 1 },
    tries: 1,
    text: /unknown task class "\.\.\/\.\.\/etc\/passwd"/,
  },
  {
    what: 'malformed YAML options',
    fields: { options: 'text: [unclosed', try_limit: 3 },
    tries: 1,
    text: /invalid task options: malformed YAML/,
  },
  {
    what: 'an alias bomb',
    fields: { options: aliasBomb, try_limit: 3 },
    tries: 1,
    text: /invalid task options: .*alias/i,
  },
  {
    what: 'a custom tag',
    fields: { options: 'text: !!js/function "() => 1"', try_limit: 3 },
    tries: 1,
    text: /custom YAML tag .* is not allowed/,
  },
  {
    what: 'a Ruby object',
    fields: { options: '--- !ruby/object:User\nid: 1\n', try_limit: 3 },
    tries: 1,
    text: /Ruby object tag !ruby\/object:User is not supported/,
  },
  {
    what: 'a file exporting no task',
    fields: { task_class_name: 'BadExport', try_limit: 1 },
    tries: 1,
    text: /does not export a task class/,
  },
  {
    what: 'a result over maxResultBytes',
    fields: { task_class_name: 'HugeResult', options: { bytes: 100_000 }, try_limit: 1 },
    tries: 1,
    text: /task result is 100000 bytes, over the limit of 10000 bytes/,
  },
];

describe('bad input', () => {
  it.each(cases)('records $what clearly and stays healthy', async ({ fields, tries, text }) => {
    const runner = await runners.start(t, { maxResultBytes: 10_000 });
    const id = await insertRequest(t.pool, { options: { text: 'unused' }, ...fields });
    const row = await waitForCompleted(t.pool, id);
    expect(row).toMatchObject({ result: 'FAILED', tries, pid: null });
    expect(row.result_text).toMatch(text);

    const echo = await runner.schedule('Echo', { text: 'still fine' });
    expect(await finalCompletion(runner, echo)).toMatchObject({ result: 'FINISHED', resultText: 'still fine' });
    expect(runners.errors(runner)).toEqual([]);
    await runner.stop();
  });

  it('refuses an unknown name at schedule time, naming the known ones', async () => {
    const runner = runners.create(t);
    await expect(runner.schedule('NoSuchTask')).rejects.toMatchObject({ code: 'TASK_UNKNOWN' });
    await expect(runner.schedule('../../etc/passwd')).rejects.toMatchObject({ code: 'TASK_UNKNOWN' });
    await expect(runner.schedule('Echo', { f: () => 1 })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' });
    expect((await runner.status()).counts.waiting).toBe(0);
    await runner.stop();
  });

  it('survives a burst of bad rows mixed with good ones', async () => {
    const runner = await runners.start(t, { concurrency: 2 });
    const bad = await Promise.all([
      insertRequest(t.pool, { task_class_name: 'Nope', try_limit: 1 }),
      insertRequest(t.pool, { options: aliasBomb }),
      insertRequest(t.pool, { task_class_name: 'Fail', try_limit: 1 }),
      insertRequest(t.pool, { task_class_name: 'Exit', options: { code: 1 }, try_limit: 1 }),
    ]);
    const good = await Promise.all([1, 2, 3].map((n) => insertRequest(t.pool, { options: { text: `ok ${n}` } })));
    for (const id of good) expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'FINISHED' });
    for (const id of bad) expect((await waitForCompleted(t.pool, id)).result).toMatch(/^(FAILED|CRASHED)$/);
    expect(runners.errors(runner)).toEqual([]);
    expect((await getRow(t.pool, good[2]!)).result_text).toBe('ok 3');
    await runner.stop();
  });
});
