/**
 * `run()`'s value as the text stored in `result_text`, the same in a child and in a thread (both
 * call it from run-task.ts). A string is stored as it is and nothing (undefined, null) as NULL;
 * anything else as JSON, with what JSON.stringify would throw on or empty silently made to hold:
 *
 * - a BigInt, at any depth, as its exact digits (a JSON number: `12345678901234567890`);
 * - a Map as its entries (`[[key, value], …]`) and a Set as its values (`[…]`), not `{}`;
 * - nested undefined, functions and symbols as JSON has them (dropped from an object, null in a
 *   list); a Date as its ISO text; NaN and Infinity as null.
 *
 * What has no text at all fails the try, as a throw would, with a message that says so: a symbol
 * or a function returned as the result (JSON gives nothing for them, which would store NULL, as
 * if the task had returned nothing), and an object that refers back to itself.
 */
import { TaskRunnerError } from '../../errors.js';

/**
 * Marks a BigInt's digits inside the JSON text, where they become a bare number once written. The
 * NUL cannot come from a string of the value (JSON writes it as `\u0000`), and the random part
 * keeps a string that happens to spell `\u0000…` from matching.
 */
const bigintMark = `\u0000${Math.random().toString(36).slice(2, 12)}:`;
const markedBigint = new RegExp(`"${JSON.stringify(bigintMark).slice(1, -1).replaceAll('\\', '\\\\')}(-?[0-9]+)"`, 'g');

function unholdable(message: string): TaskRunnerError {
  return new TaskRunnerError('RESULT_INVALID', message);
}

let sawBigint = false;

function replacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') {
    sawBigint = true;
    return `${bigintMark}${value}`;
  }
  if (value instanceof Map) return [...value];
  if (value instanceof Set) return [...value];
  return value;
}

/** Where `value` first refers back to one of the objects holding it, as `result.a.b[0] is result.a`. */
function cycleIn(value: unknown, path: string, holders: Map<object, string>): string | null {
  if (typeof value !== 'object' || value === null) return null;
  const holder = holders.get(value);
  if (holder !== undefined) return `${path} is ${holder}`;
  holders.set(value, path);
  const entries: [string, unknown][] =
    value instanceof Map
      ? [...value].map(([k, v], i) => [`[${i}]`, [k, v]])
      : value instanceof Set
        ? [...value].map((v, i) => [`[${i}]`, v])
        : Array.isArray(value)
          ? value.map((v, i) => [`[${i}]`, v])
          : Object.entries(value).map(([k, v]) => [`.${k}`, v]);
  for (const [step, item] of entries) {
    const found = cycleIn(item, path + step, holders);
    if (found !== null) return found;
  }
  holders.delete(value);
  return null;
}

/** @throws TaskRunnerError RESULT_INVALID for a value that has no text (see the header). */
export function resultText(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'symbol' || typeof value === 'function') {
    const shown = typeof value === 'symbol' ? value.toString() : value.name === '' ? 'anonymous' : value.name;
    throw unholdable(
      `task result is a ${typeof value} (${shown}), which result_text cannot hold: return a string, a number, plain data or nothing`,
    );
  }
  let text: string | undefined;
  sawBigint = false;
  try {
    text = JSON.stringify(value, replacer);
  } catch (error) {
    // JSON.stringify throws a TypeError on a cycle, or overflows the stack on one through a Map or
    // Set (each is a fresh list to it): either way, say where the value refers back.
    if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
    let cycle: string | null = null;
    try {
      cycle = cycleIn(value, 'result', new Map());
    } catch {
      // Too deep to walk: the original error says enough.
    }
    if (cycle !== null) throw unholdable(`task result refers back to itself (${cycle}), which JSON cannot hold`);
    throw error;
  }
  // A toJSON() that returned undefined: nothing, as if the task had returned nothing.
  if (text === undefined) return null;
  return sawBigint ? text.replace(markedBigint, '$1') : text;
}
