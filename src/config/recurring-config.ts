import { Cron } from 'croner';
import { ConfigError } from '../errors.js';
import { isRecord, maxInt4 } from '../shared/values.js';
import type { FieldSpec } from './option-spec.js';
import { requestDefaults } from './request-defaults.js';

/**
 * One recurring task: a request for `task` at every time `cron` names.
 *
 * @example
 * { task: 'SendDigest', cron: '0 7 * * 1-5', timezone: 'Europe/Paris', options: { list: 'daily' } }
 */
export interface RecurringEntryOptions {
  /** Names the entry (its row in `<table>_recurring`); default the task name. Two entries of one task need two names. */
  name?: string;
  /** Task name to schedule. */
  task: string;
  /**
   * Standard 5-field cron (`minute hour day-of-month month day-of-week`), or 6 fields with
   * seconds first. Parsed by croner; day-of-month and day-of-week combine with OR, as in Vixie cron.
   */
  cron: string;
  /** IANA time zone the fields are read in (DST as croner documents it). Default `UTC`, the same on every host. */
  timezone?: string;
  /** Options of each request. Default `{}`. */
  options?: Record<string, unknown>;
  queue?: string;
  priority?: number;
  tryLimit?: number;
  /**
   * Due times missed while no launcher ran (older than a minute when a launcher comes back):
   * 0 (default) skips them; N enqueues the N most recent of them.
   */
  backfill?: number;
}

/** A validated entry, frozen. */
export interface RecurringEntry {
  readonly name: string;
  readonly task: string;
  readonly cron: string;
  readonly timezone: string;
  readonly options: Readonly<Record<string, unknown>>;
  readonly queue: string | null;
  readonly priority: number | null;
  readonly tryLimit: number | null;
  readonly backfill: number;
}

const taskNamePattern = /^[A-Za-z_$][A-Za-z0-9_$]*(::[A-Za-z_$][A-Za-z0-9_$]*)*$/;
/** The settings of one `recurring` entry: their bounds, defaults and meaning (the keys an entry accepts). */
export const recurringEntrySpecs = {
  name: {
    kind: 'string',
    defaultText: 'the task name',
    description: 'names the entry (its row in `<table>_recurring`); two entries of one task need two names',
  },
  task: { kind: 'string', defaultText: 'required', description: 'the task name to schedule' },
  cron: {
    kind: 'string',
    defaultText: 'required',
    description:
      '5 cron fields (`minute hour day-of-month month day-of-week`), or 6 with seconds first; parsed ' + 'by croner',
  },
  timezone: {
    kind: 'string',
    default: 'UTC',
    description: 'the IANA time zone the fields are read in (the same on every host by default)',
  },
  options: { kind: 'map', default: {}, defaultText: '`{}`', description: 'the options of each request' },
  queue: { kind: 'string', default: requestDefaults.queue, description: 'the queue of each request' },
  priority: {
    kind: 'integerOrNull',
    min: -2_147_483_648,
    max: maxInt4,
    default: 0,
    description: 'the priority of each request',
  },
  tryLimit: {
    kind: 'integerOrNull',
    min: 1,
    max: maxInt4,
    default: requestDefaults.tryLimit,
    description: 'the try limit of each request',
  },
  backfill: {
    kind: 'integer',
    min: 0,
    max: 10_000,
    default: 0,
    description: 'due times missed while no launcher ran: 0 skips them, N enqueues the N most recent of them once',
  },
} as const satisfies { readonly [K in keyof Required<RecurringEntryOptions>]: FieldSpec };
const allowed = Object.keys(recurringEntrySpecs);

/** The croner schedule of an entry (seconds optional); throws croner's own error for a bad pattern. */
export function cronOf(entry: Pick<RecurringEntry, 'cron' | 'timezone'>): Cron {
  return new Cron(entry.cron, { timezone: entry.timezone, mode: '5-or-6-parts' });
}

function optionalInteger(field: string, value: unknown, { min, max }: { min: number; max: number }): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Validates one entry; `field` is where it came from (`recurring[2]`, `runner.recurring()`). */
export function resolveRecurringEntry(field: string, value: unknown): RecurringEntry {
  if (!isRecord(value)) throw new ConfigError(field, 'must be a map with at least task and cron');
  const unknown = Object.keys(value).filter((key) => !allowed.includes(key));
  if (unknown.length > 0)
    throw new ConfigError(field, `unknown key ${JSON.stringify(unknown[0])}; allowed: ${allowed.join(', ')}`);
  const { task, cron, timezone = recurringEntrySpecs.timezone.default, options = {}, queue } = value;
  const backfill = value.backfill === undefined ? recurringEntrySpecs.backfill.default : value.backfill;
  if (typeof task !== 'string' || !taskNamePattern.test(task))
    throw new ConfigError(`${field}.task`, `must be a task name, got ${JSON.stringify(task)}`);
  const name = value.name ?? task;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200)
    throw new ConfigError(`${field}.name`, 'must be a non-empty string of at most 200 characters');
  if (typeof cron !== 'string' || cron.trim() === '')
    throw new ConfigError(`${field}.cron`, 'must be a cron expression such as "*/5 * * * *"');
  if (typeof timezone !== 'string')
    throw new ConfigError(`${field}.timezone`, 'must be an IANA time zone name such as "Europe/Paris"');
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    throw new ConfigError(
      `${field}.timezone`,
      `unknown time zone ${JSON.stringify(timezone)}; use an IANA name such as "Europe/Paris" or "UTC"`,
    );
  }
  const fields = cron.trim().split(/\s+/).length;
  if (fields !== 5 && fields !== 6)
    throw new ConfigError(
      `${field}.cron`,
      `must have 5 fields (or 6 with seconds first), got ${fields}: ${JSON.stringify(cron)}`,
    );
  try {
    cronOf({ cron: cron.trim(), timezone });
  } catch (error) {
    throw new ConfigError(
      `${field}.cron`,
      `${JSON.stringify(cron)} is not a valid cron expression: ${(error as Error).message}`,
    );
  }
  if (!isRecord(options)) throw new ConfigError(`${field}.options`, 'must be a map');
  if (queue !== undefined && (typeof queue !== 'string' || queue.length === 0 || queue.length > 200)) {
    throw new ConfigError(`${field}.queue`, 'must be a non-empty string of at most 200 characters');
  }
  return Object.freeze({
    name,
    task,
    cron: cron.trim(),
    timezone,
    options: Object.freeze({ ...options }),
    queue: (queue as string | undefined) ?? null,
    priority: optionalInteger(`${field}.priority`, value.priority, recurringEntrySpecs.priority),
    tryLimit: optionalInteger(`${field}.tryLimit`, value.tryLimit, recurringEntrySpecs.tryLimit),
    backfill: optionalInteger(`${field}.backfill`, backfill, recurringEntrySpecs.backfill)!,
  });
}

/** Validates the `recurring` list; entry names must be unique. */
export function resolveRecurring(value: unknown): readonly RecurringEntry[] {
  if (value === undefined || value === null) return Object.freeze([]);
  if (!Array.isArray(value)) throw new ConfigError('recurring', 'must be a list of { task, cron, ... } entries');
  const entries = value.map((item, index) => resolveRecurringEntry(`recurring[${index}]`, item));
  const seen = new Set<string>();
  for (const entry of entries) {
    if (seen.has(entry.name))
      throw new ConfigError(
        'recurring',
        `two entries are named ${JSON.stringify(entry.name)}: give one a "name" of its own`,
      );
    seen.add(entry.name);
  }
  return Object.freeze(entries);
}
