/**
 * The options most rows carry are a flat map of plain words and whole numbers
 * (`---\ncreated_from: self.schedule\n`, `ms: 60000`). Reading those does not need the YAML
 * parser, whose import is a large part of a child's start and whose parse is a large part of a
 * reused child's try. This reads exactly that shape and gives what the YAML core schema gives for
 * it; for anything else it says "not mine" (undefined) and the caller parses with YAML. What it
 * accepts, line by line after an optional `---`:
 *
 *   {}              the empty map alone (no options: what `schedule('Task')` stores, and what
 *                   Ruby writes for `{}` as `--- {}`), the most common options of all;
 *   key: value      key: a name (`[A-Za-z_][A-Za-z0-9_]*`, a leading `:` for Ruby symbols) that the
 *                   core schema reads as a string (not true, false or null);
 *                   value: true, false, null, a whole number of at most 15 digits, or words of
 *                   `[A-Za-z0-9_./@+-]` that start with a letter or `_`, one space between words,
 *                   and none of them true, false, null in any YAML spelling.
 *
 * The test suite checks it against the YAML parser on generated documents.
 */
const header = /^---[ \t]*$/;
const keyPattern = /^(:?)([A-Za-z_][A-Za-z0-9_]*)$/;
const wordsPattern = /^[A-Za-z_][A-Za-z0-9_./@+-]*(?: [A-Za-z0-9_./@+-]+)*$/;
const integerPattern = /^(?:0|-?[1-9][0-9]{0,14})$/;
const special = new Set(['true', 'True', 'TRUE', 'false', 'False', 'FALSE', 'null', 'Null', 'NULL']);
/** The empty map, after an optional header line (`---\n{}\n`, the YAML printer's) or on it (`--- {}`, Ruby's). */
const emptyMap = /^(?:---[ \t]*\n|--- )?\{\}\n?$/;
/** What the YAML printer writes for `{}`: stored as it always was, without loading the printer. */
const emptyMapText = '---\n{}\n';

function scalar(text: string): { value: unknown } | undefined {
  if (text === 'true') return { value: true };
  if (text === 'false') return { value: false };
  if (text === 'null') return { value: null };
  if (integerPattern.test(text)) return { value: Number(text) };
  if (special.has(text) || !wordsPattern.test(text)) return undefined;
  return { value: text };
}

/** The options of `text` when it is a flat map of plain scalars; undefined otherwise. */
export function parsePlainOptions(text: string): Record<string, unknown> | undefined {
  if (text.includes('\r') || text.includes('#')) return undefined;
  if (emptyMap.test(text)) return {};
  const lines = text.split('\n');
  let at = 0;
  if (at < lines.length && header.test(lines[at]!)) at += 1;
  const result: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (; at < lines.length; at++) {
    const line = lines[at]!;
    if (line === '') {
      if (at === lines.length - 1) break; // the final newline
      return undefined;
    }
    const colon = line.indexOf(':', 1);
    if (colon < 0) return undefined;
    const key = keyPattern.exec(line.slice(0, colon));
    if (key === null || special.has(key[2]!)) return undefined;
    const rest = line.slice(colon + 1);
    if (rest.length > 0 && (rest[0] !== ' ' || rest[1] === ' ' || rest.length === 1)) return undefined;
    const parsed = rest.length === 0 ? { value: null } : scalar(rest.slice(1));
    if (parsed === undefined) return undefined;
    const name = key[2]!;
    // Two keys the same (`a` and `:a` count as one once the colon is dropped): YAML's to judge.
    const raw = key[1]! + name;
    if (seen.has(raw) || Object.hasOwn(result, name)) return undefined;
    seen.add(raw);
    // defineProperty so a key named __proto__ stays data and never becomes a prototype.
    if (name === '__proto__')
      Object.defineProperty(result, name, {
        value: parsed.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    else result[name] = parsed.value;
  }
  return result;
}

/**
 * The text `parsePlainOptions` reads back as `options`, when `options` is a flat map of such
 * scalars (the same lines the YAML printer writes for it); undefined otherwise (then YAML).
 */
export function stringifyPlainOptions(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return undefined;
  const proto = Object.getPrototypeOf(options);
  if (proto !== Object.prototype && proto !== null) return undefined;
  let text = '---\n';
  let empty = true;
  for (const [key, value] of Object.entries(options)) {
    empty = false;
    const name = keyPattern.exec(key);
    if (name === null || name[1] !== '' || special.has(key)) return undefined;
    let shown: string;
    if (value === null || value === true || value === false) shown = String(value);
    else if (
      typeof value === 'number' &&
      Number.isSafeInteger(value) &&
      !Object.is(value, -0) &&
      integerPattern.test(String(value))
    )
      shown = String(value);
    else if (
      typeof value === 'string' &&
      !special.has(value) &&
      wordsPattern.test(value) &&
      !integerPattern.test(value)
    )
      shown = value;
    else return undefined;
    text += `${key}: ${shown}\n`;
  }
  return empty ? emptyMapText : text;
}
