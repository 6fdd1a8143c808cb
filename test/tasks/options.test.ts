import { describe, expect, it } from 'vitest';
import { parseOptions, stringifyOptions, TaskRunnerError } from '../../dist/index.js';
import { parseYamlOptions } from '../../dist/tasks/options.js';
import { parsePlainOptions, stringifyPlainOptions } from '../../dist/tasks/plain-options.js';

const limit = 64 * 1024;

function refusal(text: string, maxBytes = limit): TaskRunnerError {
  try {
    parseOptions(text, maxBytes);
  } catch (error) {
    expect(error).toBeInstanceOf(TaskRunnerError);
    return error as TaskRunnerError;
  }
  throw new Error(`parseOptions accepted ${JSON.stringify(text.slice(0, 80))}`);
}

describe('parseOptions', () => {
  it("reads the seed row's Ruby symbol keys without their colon", () => {
    expect(parseOptions('--- \n:created_from: self.schedule\n', limit)).toEqual({ created_from: 'self.schedule' });
  });

  it('drops symbol colons at every depth and keeps plain keys and values', () => {
    const text = '---\n:outer:\n  :inner: 1\n  plain: [a, :not_a_key]\n:list:\n  - :k: v\n';
    expect(parseOptions(text, limit)).toEqual({ outer: { inner: 1, plain: ['a', ':not_a_key'] }, list: [{ k: 'v' }] });
  });

  it('gives {} for null, empty and blank text, and a document of null', () => {
    for (const text of [null, '', '  \n', '---\n', '--- ~\n']) expect(parseOptions(text, limit)).toEqual({});
  });

  it('reads the core schema: numbers, booleans, nulls, lists, maps', () => {
    expect(parseOptions('a: 1\nb: 2.5\nc: true\nd: null\ne: [1, x]\nf: {g: h}\n', limit)).toEqual({
      a: 1,
      b: 2.5,
      c: true,
      d: null,
      e: [1, 'x'],
      f: { g: 'h' },
    });
  });

  it.each([
    '--- !ruby/object:Foo\nbar: 1\n',
    '---\n:user: !ruby/object:User\n  attributes:\n    id: 1\n',
    '--- !ruby/hash:ActiveSupport::HashWithIndifferentAccess\na: 1\n',
    '---\nkey: !ruby/sym created_from\n',
  ])('refuses Ruby object tags with a clear message: %j', (text) => {
    const error = refusal(text);
    expect(error.code).toBe('OPTIONS_INVALID');
    expect(error.message).toMatch(/Ruby object tag !ruby\/\S+ is not supported/);
  });

  it.each([
    'a: !!js/function "function () { return 1 }"\n',
    'a: !custom value\n',
    'a: !<tag:example.com,2000:thing> value\n',
    'a: !!binary aGVsbG8=\n',
    'a: !!set {x, y}\n',
  ])('refuses other custom tags: %j', (text) => {
    const error = refusal(text);
    expect(error.code).toBe('OPTIONS_INVALID');
    expect(error.message).toMatch(/tag .* is not allowed/);
  });

  it('refuses an alias bomb ("billion laughs") without expanding it', () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    const names = 'abcdefghi';
    for (let i = 1; i < names.length; i += 1) {
      const ref = `*${names[i - 1]}`;
      levels.push(`${names[i]}: &${names[i]} [${Array(9).fill(ref).join(',')}]`);
    }
    const started = Date.now();
    const error = refusal(`${levels.join('\n')}\n`);
    expect(error.code).toBe('OPTIONS_INVALID');
    expect(error.message).toMatch(/alias/i);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('allows a few ordinary aliases', () => {
    expect(parseOptions('base: &b {x: 1}\nother: *b\n', limit)).toEqual({ base: { x: 1 }, other: { x: 1 } });
  });

  it('refuses oversized text before parsing it', () => {
    const error = refusal(`text: ${'x'.repeat(2_000)}\n`, 1_000);
    expect(error.code).toBe('OPTIONS_TOO_LARGE');
    expect(error.message).toMatch(/over the limit of 1000/);
  });

  it.each(['a: [1, 2\n', 'a: {b: 1\n', 'a: 1\na: 2\n', 'a:\n  - 1\n b: 2\n', '"unterminated\n'])(
    'refuses malformed YAML: %j',
    (text) => {
      const error = refusal(text);
      expect(error.code).toBe('OPTIONS_INVALID');
      expect(error.message).toMatch(/invalid task options/);
    },
  );

  it('keeps a __proto__ key as data and pollutes nothing', () => {
    for (const text of [
      '__proto__:\n  polluted: yes\n',
      ':__proto__:\n  polluted: yes\n',
      'a:\n  __proto__: {polluted: yes}\n',
    ]) {
      const value = parseOptions(text, limit) as Record<string, any>;
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
      const holder = text.startsWith('a:') ? value.a : value;
      expect(Object.getPrototypeOf(holder)).toBe(Object.prototype);
      expect(Object.hasOwn(holder, '__proto__')).toBe(true);
      expect(holder.polluted).toBeUndefined();
    }
  });
});

describe('stringifyOptions', () => {
  it('writes YAML that parses back to the same data, dates as ISO text', () => {
    const options = {
      text: 'hello',
      n: 3,
      nested: { list: [1, 'two', null, true] },
      when: new Date('2024-01-02T03:04:05Z'),
    };
    const text = stringifyOptions(options, limit);
    expect(text.startsWith('---\n')).toBe(true);
    // The core schema has no timestamp type: a Date goes in and its ISO text comes back.
    expect(parseOptions(text, limit)).toEqual({ ...options, when: '2024-01-02T03:04:05.000Z' });
  });

  it('stores nothing as an empty map', () => {
    expect(parseOptions(stringifyOptions(undefined, limit), limit)).toEqual({});
  });

  it.each([
    ['a function', { f: () => 1 }],
    ['a class instance', { m: new Map() }],
    ['NaN', { n: Number.NaN }],
    ['a symbol', { s: Symbol('x') }],
  ])('refuses %s', (_what, options) => {
    expect(() => stringifyOptions(options, limit)).toThrow(expect.objectContaining({ code: 'OPTIONS_INVALID' }));
  });

  it('refuses a cycle', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => stringifyOptions(cyclic, limit)).toThrow(/refers back to itself/);
  });

  it('refuses options over the size limit', () => {
    expect(() => stringifyOptions({ text: 'x'.repeat(500) }, 100)).toThrow(
      expect.objectContaining({ code: 'OPTIONS_TOO_LARGE' }),
    );
  });
});

/** A small deterministic generator (mulberry32), so a failure names a seed that reproduces it. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
describe('the plain-options fast path', () => {
  const keys = [
    'a',
    'b_c',
    ':sym',
    'created_from',
    '__proto__',
    'true',
    'Null',
    '_x',
    'A1',
    ':a',
    'x-y',
    '1a',
    'k k',
    '',
    ' a',
  ];
  const values = [
    'bench',
    'self.schedule',
    'a shell',
    'x y z',
    '60000',
    '0',
    '-5',
    '-0',
    '007',
    '1e3',
    '0x1F',
    '0o17',
    'true',
    'True',
    'false',
    'yes',
    'no',
    'on',
    'null',
    'NULL',
    '~',
    '',
    '12:30',
    'a  b',
    'x#y',
    '@x',
    '.inf',
    '1.5',
    'b-c',
    'under_score',
    'a -b',
    'a @b',
    '123456789012345',
    '1234567890123456',
    '9007199254740993',
    'TRUE',
    '-',
    'a:b',
    'a: b',
    '"quoted"',
    "'single'",
    '[1, 2]',
    '{x: 1}',
    'a ',
    ' a',
    '.5',
    '+1',
    '-1.5',
    'x/y',
    'x+y',
    'é',
    'a\tb',
    '*alias',
    '&anchor x',
    '!tag x',
    '%x',
    '`x`',
    '|',
    '>',
  ];
  const headers = ['', '---\n', '--- \n', '---  \n', '--- # c\n', '---\r\n'];

  it('reads exactly what the YAML parser reads, for every document it accepts', () => {
    let accepted = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const next = random(seed);
      const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
      const lines = Array.from({ length: Math.floor(next() * 5) }, () => {
        const separator = pick([': ', ': ', ': ', ':', ':  ', ' : ']);
        return `${pick(keys)}${separator}${pick(values)}`;
      });
      const text = pick(headers) + lines.join('\n') + (next() < 0.7 ? '\n' : '');
      const fast = parsePlainOptions(text);
      if (fast === undefined) continue;
      accepted += 1;
      let slow: unknown;
      try {
        slow = parseYamlOptions(text);
      } catch (error) {
        throw new Error(
          `seed ${seed}: the fast path read ${JSON.stringify(text)} that YAML refuses (${(error as Error).message})`,
          { cause: error },
        );
      }
      expect(fast, `seed ${seed}: ${JSON.stringify(text)}`).toStrictEqual(slow);
      for (const [key, value] of Object.entries(fast)) {
        expect(Object.is(value, (slow as Record<string, unknown>)[key]), `seed ${seed} key ${key}`).toBe(true);
      }
    }
    // The generator gives the fast path plenty to accept, not only documents it passes on.
    expect(accepted).toBeGreaterThan(800);
  });

  it('writes flat options of plain scalars without YAML, as text both parsers read back the same', () => {
    const pool: unknown[] = [
      'bench',
      'self.schedule',
      'a shell',
      'x y z',
      '60000',
      '-5',
      'true',
      'null',
      'yes',
      '',
      ' a',
      'a ',
      'x:y',
      '1e3',
      'é',
      'a'.repeat(200),
      'word '.repeat(30).trim(),
      0,
      -0,
      7,
      -12,
      1.5,
      2 ** 53,
      1e16,
      true,
      false,
      null,
      undefined,
      [1],
      { x: 1 },
      new Date(0),
    ];
    const names = ['a', 'b_c', 'created_from', '__proto__', 'true', ':sym', 'x-y', '1a', ''];
    let written = 0;
    for (let seed = 1; seed <= 20_000; seed++) {
      const next = random(seed);
      const options: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 4); i > 0; i--) {
        Object.defineProperty(options, names[Math.floor(next() * names.length)]!, {
          value: pool[Math.floor(next() * pool.length)],
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      const text = stringifyPlainOptions(options);
      if (text === undefined) continue;
      written += 1;
      expect(parsePlainOptions(text), `seed ${seed}`).toStrictEqual(options);
      expect(parseYamlOptions(text), `seed ${seed}`).toStrictEqual(options);
    }
    expect(written).toBeGreaterThan(1_000);
  });

  it('reads the empty map as YAML does, in the forms it is written, and passes its look-alikes on', () => {
    const bodies = ['{}', '{}\n', '{ }\n', '{}x\n', '{}\n\n', '{}\na: b\n', '[]\n', '{}{}\n'];
    const prefixes = ['', '---\n', '--- \n', '---\t\n', '--- ', '---  ', '---\t', '-- '];
    let accepted = 0;
    for (const prefix of prefixes) {
      for (const body of bodies) {
        const text = prefix + body;
        const fast = parsePlainOptions(text);
        if (fast === undefined) continue;
        accepted += 1;
        expect(fast, JSON.stringify(text)).toStrictEqual(parseYamlOptions(text));
      }
    }
    expect(accepted).toBeGreaterThanOrEqual(10);
    // What schedule('Task') stores, and what the seed's Ruby writes for no options.
    expect(stringifyOptions({}, limit)).toBe('---\n{}\n');
    expect(parsePlainOptions(stringifyOptions({}, limit))).toStrictEqual({});
    expect(parsePlainOptions('--- {}\n')).toStrictEqual({});
  });

  it('takes the rows the scheduler and the seed write, and passes the rest on', () => {
    expect(parsePlainOptions(stringifyOptions({ created_from: 'bench', ms: 60_000, on: true }, limit))).toEqual({
      created_from: 'bench',
      ms: 60_000,
      on: true,
    });
    expect(parsePlainOptions('--- \n:created_from: self.schedule\n')).toEqual({ created_from: 'self.schedule' });
    expect(parsePlainOptions('---\nlist:\n  - 1\n')).toBeUndefined();
    expect(parsePlainOptions('a: "quoted"\n')).toBeUndefined();
    expect(parsePlainOptions('__proto__: x\n')).toEqual(
      Object.defineProperty({}, '__proto__', { value: 'x', enumerable: true, writable: true, configurable: true }),
    );
    expect(Object.getPrototypeOf(parsePlainOptions('__proto__: x\n'))).toBe(Object.prototype);
  });
});
