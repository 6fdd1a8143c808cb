import { describe, expect, it } from 'vitest';
import { parseOptions, stringifyOptions, TaskRunnerError } from '../../dist/index.js';
import { parseYamlOptions } from '../../dist/tasks/options.js';
import { parsePlainOptions } from '../../dist/tasks/plain-options.js';

/**
 * Two choices about what options may hold, checked on both paths that read them (the YAML parser
 * and the plain fast path, which must agree) and on the path that writes them:
 * - an integer beyond 2^53 arrives exact, as a BigInt (a Rails client writes Ruby's bignums);
 * - options are a map: a list or a scalar is refused with a plain message (no options at all,
 *   a NULL column, empty text or a YAML null, is the empty map, as it always was).
 */
const limit = 64 * 1024;

function refusal(text: string): TaskRunnerError {
  try {
    parseOptions(text, limit);
  } catch (error) {
    expect(error).toBeInstanceOf(TaskRunnerError);
    return error as TaskRunnerError;
  }
  throw new Error(`parseOptions accepted ${JSON.stringify(text)}`);
}

describe('integers beyond 2^53', () => {
  it('arrive exact as BigInt, on the YAML path, at any depth', () => {
    const text =
      '---\n:big: 12345678901234567890\nneg: -9007199254740993\nedge: 9007199254740992\nsafe: 9007199254740991\nlist: [18446744073709551615, 1]\nhex: 0x1FFFFFFFFFFFFFFFFF\n';
    expect(parseOptions(text, limit)).toStrictEqual({
      big: 12345678901234567890n,
      neg: -9007199254740993n,
      edge: 9007199254740992n,
      safe: 9007199254740991,
      list: [18446744073709551615n, 1],
      hex: 0x1fffffffffffffffffn,
    });
  });

  it('keep floats and quoted digits as they were', () => {
    expect(parseOptions('a: 1e30\nb: "12345678901234567890"\nc: 12345678901234567890.5\n', limit))
      // eslint-disable-next-line no-loss-of-precision -- the double YAML reads from that text
      .toStrictEqual({ a: 1e30, b: '12345678901234567890', c: 12345678901234567890.5 });
  });

  it('are left to YAML by the plain fast path, so both paths give the same exact value', () => {
    for (const digits of ['12345678901234567890', '9007199254740993', '-9007199254740993', '1234567890123456']) {
      const text = `---\n:id: ${digits}\nname: x\n`;
      expect(parsePlainOptions(text), digits).toBeUndefined();
      const expected = Number.isSafeInteger(Number(digits)) ? Number(digits) : BigInt(digits);
      expect(parseYamlOptions(text)).toStrictEqual({ id: expected, name: 'x' });
      expect(parseOptions(text, limit)).toStrictEqual({ id: expected, name: 'x' });
    }
    // What the fast path takes (15 digits at most) is always a safe number.
    expect(parsePlainOptions('id: 999999999999999\n')).toStrictEqual({ id: 999_999_999_999_999 });
  });

  it('can be scheduled as BigInt and come back exact', () => {
    const text = stringifyOptions({ id: 12345678901234567890n, nested: { ids: [-(2n ** 70n)] } }, limit);
    expect(text).toContain('id: 12345678901234567890');
    expect(parseOptions(text, limit)).toStrictEqual({ id: 12345678901234567890n, nested: { ids: [-(2n ** 70n)] } });
  });
});

describe('options that are not a map', () => {
  it.each([
    ['--- [1,2,3]\n', 'a list'],
    ['- a\n- b\n', 'a list'],
    ['--- 42\n', 'the number 42'],
    ['--- 12345678901234567890\n', 'the number 12345678901234567890'],
    ['--- "text"\n', 'the text "text"'],
    ['just words\n', 'the text "just words"'],
    ['--- true\n', 'the boolean true'],
  ])('refuses %j plainly', (text, what) => {
    const error = refusal(text);
    expect(error.code).toBe('OPTIONS_INVALID');
    expect(error.message).toBe(
      `invalid task options: options must be a map of names to values (key: value), got ${what}`,
    );
  });

  it('reads no options (NULL, empty, blank, a YAML null) as the empty map', () => {
    for (const text of [null, '', ' \n', '---\n', '--- null\n', '--- ~\n'])
      expect(parseOptions(text, limit)).toStrictEqual({});
  });

  it.each([
    ['a list', [1, 2, 3]],
    ['a number', 42],
    ['a string', 'text'],
    ['a boolean', true],
    ['a bigint', 5n],
    ['a Date', new Date(0)],
  ])('refuses %s at schedule time', (what, options) => {
    expect(() => stringifyOptions(options, limit)).toThrow(
      expect.objectContaining({
        code: 'OPTIONS_INVALID',
        message: expect.stringContaining(`options must be an object of names to values, got ${what}`),
      }),
    );
  });
});
