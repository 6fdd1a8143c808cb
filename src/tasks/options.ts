import { TaskRunnerError } from '../errors.js';
import { nodeModule } from '../shared/builtins.js';
import { parseCoreYaml } from '../shared/core-yaml.js';
import { parsePlainOptions, stringifyPlainOptions } from './plain-options.js';

/**
 * Where the child runtime's bundle finds the YAML parser: esbuild defines it when it bundles the
 * runtime (scripts/bundle-child-runtime.mjs), as the parser bundled into one file beside it.
 * Undefined everywhere else (a launcher, a thread, tsc's modules), which load the package.
 */
declare const CW_TASK_RUNNER_YAML_BUNDLE: string | undefined;

function loadYaml(): typeof import('yaml') {
  const require = nodeModule().createRequire(import.meta.url);
  if (typeof CW_TASK_RUNNER_YAML_BUNDLE === 'string') {
    try {
      return require(CW_TASK_RUNNER_YAML_BUNDLE) as typeof import('yaml');
    } catch {
      // A build that did not write it: the package, as tsc's modules load it.
    }
  }
  return require('yaml') as typeof import('yaml');
}

/**
 * The YAML parser, loaded on first use: a child whose options are plain (see plain-options.ts)
 * never loads it. Loading the package means reading and compiling some forty modules; its one-file
 * bundle, which the child runtime's bundle loads, costs about a quarter of that.
 */
let yamlModule: typeof import('yaml') | undefined;
function yaml(): typeof import('yaml') {
  yamlModule ??= loadYaml();
  return yamlModule;
}

/**
 * Options travel as YAML text. Parsing is deliberately narrow: the core schema only, no custom
 * tags (so no object instantiation), a cap on alias expansion (no "billion laughs"), a size cap,
 * unique keys. Rows written by the Rails plugin carry Ruby symbol keys (`:created_from:`); their
 * leading colon is dropped so the old table can be read, while Ruby object tags are refused.
 */
const maxAliasCount = 100;

function optionsError(message: string): TaskRunnerError {
  return new TaskRunnerError('OPTIONS_INVALID', `invalid task options: ${message}`);
}

function dropSymbolColons(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropSymbolColons);
  if (typeof value !== 'object' || value === null || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const name = key.length > 1 && key.startsWith(':') ? key.slice(1) : key;
    // defineProperty so a key named __proto__ stays data and never becomes a prototype.
    Object.defineProperty(out, name, {
      value: dropSymbolColons(item),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Plain words for a value that is not a map, in the message that refuses it. */
function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string')
    return `the text ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${value}`;
  if (typeof value === 'boolean') return `the boolean ${value}`;
  return `a ${typeof value}`;
}

function isMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Parses a request's `options` text into the map `this.options` is. No options (NULL, empty or
 * blank text, a YAML null) give `{}`; a document that is a list or a scalar is refused, since a
 * task reads its options by name. Integers beyond 2^53 come back as BigInt (exact).
 *
 * @throws TaskRunnerError OPTIONS_TOO_LARGE or OPTIONS_INVALID, with the reason.
 */
export function parseOptions(text: string | null, maxBytes: number): unknown {
  if (text === null || text.trim() === '') return {};
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new TaskRunnerError('OPTIONS_TOO_LARGE', `task options are ${bytes} bytes, over the limit of ${maxBytes}`);
  }
  return parsePlainOptions(text) ?? parseYamlOptions(text);
}

/** The YAML path of `parseOptions` (its size check done): what every text can be read with. */
export function parseYamlOptions(text: string): unknown {
  const value = parseCoreYaml(yaml(), text, {
    maxAliasCount,
    exactIntegers: true,
    fail: optionsError,
    refuseTag: (tag) =>
      tag.startsWith('!ruby/')
        ? `Ruby object tag ${tag} is not supported; store plain YAML (maps, lists, scalars)`
        : `custom YAML tag ${tag} is not allowed`,
  });
  if (value === null || value === undefined) return {};
  if (!isMap(value)) throw optionsError(`options must be a map of names to values (key: value), got ${kindOf(value)}`);
  return dropSymbolColons(value);
}

function assertPlain(value: unknown, path: string, seen: Set<object>): void {
  // A BigInt is written as its digits; one beyond 2^53 reads back as the same BigInt.
  if (value === null || typeof value === 'string' || typeof value === 'boolean' || typeof value === 'bigint') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw optionsError(`${path} is ${value}, which YAML cannot carry faithfully`);
    return;
  }
  if (value instanceof Date) return;
  if (typeof value !== 'object') throw optionsError(`${path} is a ${typeof value}; options hold plain data only`);
  if (seen.has(value)) throw optionsError(`${path} refers back to itself`);
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
    throw optionsError(`${path} is a ${proto?.constructor?.name ?? 'class'} instance; options hold plain data only`);
  }
  seen.add(value);
  for (const [key, item] of Object.entries(value)) assertPlain(item, `${path}.${key}`, seen);
  seen.delete(value);
}

/**
 * Turns options into the YAML text stored in the row (`---\nkey: value\n`), refusing what YAML
 * would not bring back as it went in (functions, class instances, cycles), what is not a map (a
 * task could not run with it) and what is too large. Nothing (undefined, null) is `{}`.
 */
export function stringifyOptions(options: unknown, maxBytes: number): string {
  const value = options ?? {};
  if (!isMap(value)) {
    const what = Array.isArray(value)
      ? 'a list'
      : typeof value === 'object'
        ? `a ${(Object.getPrototypeOf(value) as { constructor?: { name?: string } }).constructor?.name ?? 'class'}${value instanceof Date ? '' : ' instance'}`
        : `a ${typeof value}`;
    throw optionsError(`options must be an object of names to values, got ${what}`);
  }
  let text = stringifyPlainOptions(value);
  if (text === undefined) {
    assertPlain(value, 'options', new Set());
    text = new (yaml().Document)(value).toString({ directives: true });
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new TaskRunnerError(
      'OPTIONS_TOO_LARGE',
      `task options are ${bytes} bytes as YAML, over the limit of ${maxBytes}`,
    );
  }
  return text;
}
