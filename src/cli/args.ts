import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ConfigFlags } from '../config/config-file.js';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** A mistake in the command line: printed as one line, exit code 2. */
export class UsageError extends Error {
  /** The command whose `--help` to point at, or null for the top level. */
  readonly command: string | null;

  constructor(message: string, command: string | null = null) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** Flags every command takes (before or after the command name). */
export const globalOptions = {
  'database-url': { type: 'string' },
  'tasks-dir': { type: 'string' },
  config: { type: 'string' },
  table: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpecs;

export interface ParsedCommandLine {
  command: string | null;
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/** parseArgs' messages run on with advice that does not fit one line; keep the first sentence. */
function oneLine(message: string): string {
  return message.split('\n')[0]!.split(/\.\s/)[0]!.replace(/\s+/g, ' ').trim();
}

/** parseArgs takes `--priority -3` for two flags; a negative number after a valued flag is its value. */
function joinNegativeNumbers(argv: readonly string[], options: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    const name = arg.startsWith('--') ? arg.slice(2) : null;
    if (name !== null && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i += 1;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/**
 * Finds the command (the first positional argument) with every flag of every command known, so
 * global flags may come before it, then parses strictly with the global flags and the command's.
 */
export function parseCommandLine(
  input: readonly string[],
  commandOptions: (command: string) => OptionSpecs | null,
  allOptions: OptionSpecs,
): ParsedCommandLine {
  const argv = joinNegativeNumbers(input, { ...allOptions, ...globalOptions });
  const loose = parseArgs({
    args: [...argv],
    options: { ...allOptions, ...globalOptions },
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const first = loose.tokens.find((token) => token.kind === 'positional');
  const command = first?.kind === 'positional' ? first.value : null;
  const specs = command === null ? {} : commandOptions(command);
  if (command !== null && specs === null) throw new UsageError(`unknown command "${command}"`);
  const rest = first === undefined ? [...argv] : argv.filter((_, index) => index !== first.index);
  try {
    const strict = parseArgs({
      args: rest,
      options: { ...globalOptions, ...specs },
      strict: true,
      allowPositionals: true,
    });
    return { command, values: strict.values as ParsedCommandLine['values'], positionals: strict.positionals };
  } catch (error) {
    throw new UsageError(oneLine((error as Error).message), command);
  }
}

export function configFlags(values: ParsedCommandLine['values']): ConfigFlags {
  const pick = (name: string): string | undefined => {
    const value = values[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} needs a value`);
    return value;
  };
  return {
    config: pick('config'),
    databaseUrl: pick('database-url'),
    tasksDir: pick('tasks-dir'),
    tableName: pick('table'),
  };
}

/** A whole number flag (`--try-limit 3`, `--priority -1`). */
export function integerFlag(command: string, name: string, value: string | boolean | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^-?\d{1,10}$/.test(value.trim())) {
    throw new UsageError(`--${name} must be a whole number, got ${JSON.stringify(value)}`, command);
  }
  return Number(value.trim());
}

const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * `--delay` as schedule parameters: a duration (`500ms`, `30s`, `5m`, `2h`, `1d`) as `delayMs`,
 * which the database adds to its own now (so a scheduler whose clock is wrong still delays by
 * what it was asked), or an ISO date (`2030-01-01T09:00:00Z`) as `delayUntil`.
 */
export function parseDelayParams(value: string): { delayMs: number } | { delayUntil: Date } {
  const text = value.trim();
  const duration = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text);
  if (duration !== null) {
    const ms = Number(duration[1]) * units[duration[2]!]!;
    if (Number.isFinite(ms) && ms <= 100 * 365 * units.d!) return { delayMs: ms };
  } else if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const date = new Date(text);
    if (!Number.isNaN(date.getTime())) return { delayUntil: date };
  }
  throw new UsageError(
    `invalid --delay ${JSON.stringify(value)}: use a duration (500ms, 30s, 5m, 2h, 1d) or an ISO date (2030-01-01T09:00:00Z)`,
    'schedule',
  );
}

/** `--delay` as the time the request becomes runnable, by this process's clock (`now`). */
export function parseDelay(value: string, now = Date.now()): Date {
  const delay = parseDelayParams(value);
  return 'delayMs' in delay ? new Date(now + delay.delayMs) : delay.delayUntil;
}

/** The one request id a command takes (`retry 5`, `cancel 5`): a whole number within bigint. */
export function requestIdArgument(command: string, positionals: readonly string[]): string {
  const [id, ...extra] = positionals;
  if (id === undefined || extra.length > 0) throw new UsageError(`${command} takes one request id`, command);
  if (!/^\d{1,19}$/.test(id) || BigInt(id) > 9_223_372_036_854_775_807n) {
    throw new UsageError(`invalid request id ${JSON.stringify(id)}: ids are whole numbers`, command);
  }
  return id;
}
