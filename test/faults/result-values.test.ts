import { describe, expect, it } from 'vitest';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * What `result_text` gets for values JSON cannot carry as they are, the same in every mode:
 * a BigInt as its exact digits, a Map as its entries and a Set as its values, nested undefined,
 * functions and symbols as JSON has it (dropped from objects, null in lists); a symbol, a
 * function or an object that refers back to itself fails the try with a plain message; nothing
 * (undefined, null) is NULL.
 */
const runners = useTestRunners();
const t = useTestDatabase();

const modes = [
  { mode: 'fresh child', config: { spareChildren: 0, maxTasksPerChild: 1 } },
  { mode: 'reused child', config: { spareChildren: 0, maxTasksPerChild: Infinity, concurrency: 1 } },
  { mode: 'thread', config: { taskOverrides: { Returns: { mode: 'thread' as const } } } },
];

const finished: [string, string | null][] = [
  ['bigint', '12345678901234567890'],
  ['map', '[["a",1],[2,{"b":3}]]'],
  ['set', '["x","y"]'],
  ['nested', '{"id":12345678901234567890,"small":5,"when":"1970-01-01T00:00:00.000Z","list":[null,null]}'],
  ['number', '42'],
  ['nan', 'null'],
  ['text', 'text'],
  ['undefined', null],
  ['null', null],
];

const failed: [string, RegExp][] = [
  [
    'symbol',
    /^task result is a symbol \(Symbol\(done\)\), which result_text cannot hold: return a string, a number, plain data or nothing$/,
  ],
  [
    'function',
    /^task result is a function \(later\), which result_text cannot hold: return a string, a number, plain data or nothing$/,
  ],
  ['circular', /^task result refers back to itself \(result\.inner\.list\[0\] is result\), which JSON cannot hold$/],
];

describe.each(modes)('result_text in $mode mode', ({ config }) => {
  it('stores values JSON cannot carry as they are, and fails those it cannot hold at all', async () => {
    const runner = await runners.start(t, config);
    const ids = new Map<string, string>();
    for (const [kind] of [...finished, ...failed])
      ids.set(kind, await runner.schedule('Returns', { kind }, { tryLimit: 1 }));
    for (const [kind, text] of finished) {
      expect(await waitForCompleted(t.pool, ids.get(kind)!), kind).toMatchObject({
        result: 'FINISHED',
        result_text: text,
      });
    }
    for (const [kind, text] of failed) {
      const row = await waitForCompleted(t.pool, ids.get(kind)!);
      expect(row, kind).toMatchObject({ result: 'FAILED', tries: 1 });
      expect(row.result_text, kind).toMatch(text);
    }
    expect(runners.errors(runner)).toEqual([]);
    await runner.stop();
  });
});
