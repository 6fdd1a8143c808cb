/**
 * What a config file's keys are, and the checks its values get before resolution: taken from the
 * option table, so a key the table has is accepted and a key it lacks is refused by name.
 */
import { TaskRunnerError } from '../errors.js';
import type { LogLevel } from '../shared/logger.js';
import { isRecord } from '../shared/values.js';
import { configFileSpecs, type FieldSpec } from './option-specs.js';

/**
 * The check a value gets in the file. `resolution`: none here; `resolveRunnerConfig` checks it and
 * names the field. A map is checked here (its keys and each value) only when each of its values
 * can be; otherwise resolution checks the whole map.
 */
type FileCheck =
  | 'resolution'
  | 'string'
  | 'integer'
  | 'boolean'
  | 'strings'
  | 'stringsOrNull'
  | 'env'
  | 'logLevel'
  | 'logFormat'
  | 'map';

const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** The file's check of a setting, from what the table says it accepts. */
function fileCheckOf(spec: FieldSpec): FileCheck {
  switch (spec.kind) {
    case 'integer':
      return 'integer';
    case 'string':
    case 'identifier':
    case 'path':
    case 'database':
      return 'string';
    case 'boolean':
    case 'strings':
    case 'stringsOrNull':
    case 'logLevel':
    case 'logFormat':
      return spec.kind;
    case 'stringMapOrNull':
      return 'env';
    case 'section': {
      const fields = Object.values(spec.fields ?? {});
      return fields.every((field) => fileCheckOf(field) !== 'resolution') ? 'map' : 'resolution';
    }
    default:
      return 'resolution';
  }
}

const topLevel = configFileSpecs();

/** Every top-level key a config file accepts, in the docs' order. */
const configFileKeys: readonly string[] = Object.freeze([...topLevel.keys()]);

export function fileError(file: string, message: string): TaskRunnerError {
  return new TaskRunnerError('CONFIG_INVALID', `config file ${file}: ${message}`);
}

function checkKeys(file: string, where: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) {
    const list = unknown.map((key) => JSON.stringify(key)).join(', ');
    const keys = `key${unknown.length > 1 ? 's' : ''}`;
    throw fileError(file, `unknown ${keys} ${list}${where}; allowed: ${allowed.join(', ')}`);
  }
}

function checkValue(file: string, key: string, spec: FieldSpec, value: unknown): void {
  const fail = (what: string): never => {
    throw fileError(file, `"${key}" must be ${what}, got ${JSON.stringify(value)}`);
  };
  const strings = (v: unknown): boolean => Array.isArray(v) && v.every((item) => typeof item === 'string');
  switch (fileCheckOf(spec)) {
    case 'resolution':
      return;
    case 'string':
      if (typeof value !== 'string' || value.length === 0) fail('a non-empty string');
      return;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) fail('an integer');
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail('true or false');
      return;
    case 'strings':
      if (!strings(value)) fail('a list of strings');
      return;
    case 'stringsOrNull':
      if (value !== null && !strings(value)) fail('a list of strings or null');
      return;
    case 'env':
      if (value !== null && !(isRecord(value) && Object.values(value).every((item) => typeof item === 'string'))) {
        fail('a map of string values or null');
      }
      return;
    case 'logLevel':
      if (!logLevels.includes(value as LogLevel)) fail(`one of ${logLevels.join(', ')}`);
      return;
    case 'logFormat':
      if (value !== 'pretty' && value !== 'json') fail('"pretty" or "json"');
      return;
    case 'map': {
      if (!isRecord(value)) fail('a map');
      const record = value as Record<string, unknown>;
      const fields = spec.fields ?? {};
      checkKeys(file, ` in "${key}"`, record, Object.keys(fields));
      for (const [name, item] of Object.entries(record)) checkValue(file, `${key}.${name}`, fields[name]!, item);
      return;
    }
  }
}

/** Refuses unknown keys (at the top and inside the maps checked here) and values of the wrong type, by key. */
export function checkFileSettings(file: string, settings: Record<string, unknown>): void {
  checkKeys(file, '', settings, configFileKeys);
  for (const [key, value] of Object.entries(settings)) checkValue(file, key, topLevel.get(key as never)!, value);
}
