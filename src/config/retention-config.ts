import { ConfigError } from '../errors.js';
import { isRecord } from '../shared/values.js';
import { parseDurationMs } from './duration.js';
import type { FieldSpec } from './option-spec.js';

/** The results that end a request, which retention can prune. */
export const endedResults = ['FINISHED', 'CANCELLED', 'FAILED', 'CRASHED', 'TIMED_OUT', 'PARKED'] as const;
export type EndedResult = (typeof endedResults)[number];

/**
 * How long ended requests are kept, and how launchers prune them.
 *
 * @example
 * retention: { keep: { FINISHED: '1d', FAILED: '90d' }, intervalMs: 300_000 }
 */
export interface RetentionOptions {
  /**
   * Per result: how long after it ended a request (and its attempt history) is kept, as a
   * duration (`7d`, `12h`, or milliseconds), or `false` to keep those forever. Results left out
   * take the defaults: FINISHED and CANCELLED 7 days; FAILED, CRASHED, TIMED_OUT and PARKED 30.
   */
  keep?: Partial<Record<EndedResult, string | number | false>>;
  /** How often a launcher prunes (one launcher at a time). Default 300000 ms (5 minutes). */
  intervalMs?: number;
  /** Rows deleted per statement, so no statement holds many locks for long. Default 500. */
  batchSize?: number;
  /** Statements one pruning run issues at most; the rest waits for the next run. Default 200. */
  maxBatchesPerRun?: number;
  /**
   * Prune a table the runner adopted (one an application made, such as a Rails migration's,
   * whose history is the application's) as well. Default false: retention deletes none of an
   * adopted table's rows. A table the runner created is pruned either way.
   */
  pruneAdopted?: boolean;
}

/** One pruning rule: requests that ended with one of `results` more than `keepMs` ago go. */
export interface RetentionRule {
  readonly results: readonly EndedResult[];
  readonly keepMs: number;
}

export interface RetentionConfig {
  /** Grouped by age, one statement per rule. */
  readonly rules: readonly RetentionRule[];
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly maxBatchesPerRun: number;
  readonly pruneAdopted: boolean;
}

const day = 86_400_000;

/** The settings of `retention`: their bounds, defaults and descriptions (the keys the map accepts). */
export const retentionSpecs = {
  keep: {
    kind: 'durations',
    defaultText: 'FINISHED, CANCELLED `7d`; FAILED, CRASHED, TIMED_OUT, PARKED `30d`',
    description:
      'per result: how long after it ended a request and its attempt history are kept (`7d`, `12h`, or ' +
      'milliseconds), or `false` to keep that result forever',
  },
  intervalMs: {
    kind: 'integer',
    min: 100,
    max: 7 * day,
    default: 300_000,
    description: 'how often a launcher prunes (one launcher at a time)',
  },
  batchSize: {
    kind: 'integer',
    min: 1,
    max: 100_000,
    default: 500,
    description: 'rows deleted per statement, so no statement holds many locks for long',
  },
  maxBatchesPerRun: {
    kind: 'integer',
    min: 1,
    max: 1_000_000,
    default: 200,
    description: 'statements one pruning run issues at most; the rest waits for the next run',
  },
  pruneAdopted: {
    kind: 'boolean',
    default: false,
    description:
      'prune a table the runner adopted (one an application made) as well; a table the runner created is ' +
      'pruned either way',
  },
} as const satisfies { readonly [K in keyof Required<RetentionOptions>]: FieldSpec };

/** How long each ended result is kept when `retention.keep` does not say (`retentionSpecs.keep`). */
const defaultKeepMs: Readonly<Record<EndedResult, number>> = Object.freeze({
  FINISHED: 7 * day,
  CANCELLED: 7 * day,
  FAILED: 30 * day,
  CRASHED: 30 * day,
  TIMED_OUT: 30 * day,
  PARKED: 30 * day,
});

function integer(field: string, value: unknown, spec: { default: number; min: number; max: number }): number {
  const { min, max } = spec;
  if (value === undefined) return spec.default;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Validates `retention` and fills defaults; `false` (keep every row, the Rails plugin's behaviour) gives
 * null. Errors name the field.
 */
export function resolveRetention(value: unknown): RetentionConfig | null {
  if (value === false) return null;
  if (value !== undefined && value !== null && !isRecord(value))
    throw new ConfigError('retention', 'must be false or a map');
  const options = (value ?? {}) as Record<string, unknown>;
  const allowed = Object.keys(retentionSpecs);
  const unknown = Object.keys(options).filter((key) => !allowed.includes(key));
  if (unknown.length > 0)
    throw new ConfigError('retention', `unknown key ${JSON.stringify(unknown[0])}; allowed: ${allowed.join(', ')}`);
  const keep = options.keep ?? {};
  if (!isRecord(keep))
    throw new ConfigError('retention.keep', `must map results (${endedResults.join(', ')}) to durations or false`);
  const strange = Object.keys(keep).filter((key) => !(endedResults as readonly string[]).includes(key));
  if (strange.length > 0) {
    throw new ConfigError(
      'retention.keep',
      `unknown result ${JSON.stringify(strange[0])}; ended requests have ${endedResults.join(', ')}`,
    );
  }
  const byAge = new Map<number, EndedResult[]>();
  for (const result of endedResults) {
    const given = keep[result];
    if (given === false) continue;
    const keepMs = given === undefined ? defaultKeepMs[result] : parseDurationMs(`retention.keep.${result}`, given);
    byAge.set(keepMs, [...(byAge.get(keepMs) ?? []), result]);
  }
  const pruneAdopted = options.pruneAdopted ?? retentionSpecs.pruneAdopted.default;
  if (typeof pruneAdopted !== 'boolean')
    throw new ConfigError('retention.pruneAdopted', `must be true or false, got ${JSON.stringify(pruneAdopted)}`);
  const rules = [...byAge]
    .sort((a, b) => a[0] - b[0])
    .map(([keepMs, results]) => Object.freeze({ keepMs, results: Object.freeze(results) }));
  return Object.freeze({
    rules: Object.freeze(rules),
    intervalMs: integer('retention.intervalMs', options.intervalMs, retentionSpecs.intervalMs),
    batchSize: integer('retention.batchSize', options.batchSize, retentionSpecs.batchSize),
    maxBatchesPerRun: integer('retention.maxBatchesPerRun', options.maxBatchesPerRun, retentionSpecs.maxBatchesPerRun),
    pruneAdopted,
  });
}
