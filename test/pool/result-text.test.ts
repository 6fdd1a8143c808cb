import { describe, expect, it } from 'vitest';
import { resultText } from '../../dist/pool/runtime/result-text.js';

/** The encoder behind result_text (every mode calls it): the cases the launcher tests do not reach. */
describe('resultText', () => {
  it('writes BigInts as exact digits and leaves strings that look like its marks alone', () => {
    expect(resultText([-(2n ** 64n), { n: 0n }])).toBe('[-18446744073709551616,{"n":0}]');
    const tricky = { a: '\u0000bigint:5', b: 1n };
    expect(JSON.parse(resultText(tricky)!.replace('1}', '"1"}'))).toEqual({ a: '\u0000bigint:5', b: '1' });
  });

  it('says where a cycle through a Map or a Set closes, not a stack overflow', () => {
    const map = new Map<string, unknown>();
    map.set('self', map);
    expect(() => resultText({ map })).toThrow(
      'task result refers back to itself (result.map[0][1] is result.map), which JSON cannot hold',
    );
    const set = new Set<unknown>();
    set.add([set]);
    expect(() => resultText(set)).toThrow(/refers back to itself \(result\[0\]\[0\] is result\)/);
  });

  it('stores nothing for a toJSON that gives nothing, and a shared (not cyclic) object twice', () => {
    expect(resultText({ toJSON: () => undefined })).toBeNull();
    const shared = { x: 1 };
    expect(resultText({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('names an anonymous function', () => {
    expect(() => resultText(() => 1)).toThrow(/a function \(anonymous\)/);
  });
});
