import { defaults } from '../config/runner-config.js';

/**
 * The states of a request, as SQL conditions over a row (optionally through an alias). Each is
 * written here once; statements name the fragment instead of spelling the condition out.
 *
 *   waiting   completed_at IS NULL AND pid IS NULL AND tries < try_limit (see triesLeftSql for NULLs)
 *   runnable  waiting, and delay_until IS NULL OR delay_until <= now()
 *   delayed   waiting, and delay_until > now()
 *   running   pid IS NOT NULL AND completed_at IS NULL (claimed by a launcher: held or started)
 *   held      running, and started_at IS NULL (claimed ahead, in the launcher's local queue)
 *   started   running, and started_at IS NOT NULL (its try runs)
 *   ended     completed_at IS NOT NULL
 *   spent     completed_at IS NULL AND pid IS NULL and no try left (a careless INSERT): it never
 *             runs, and reads as failed
 *
 * What `show`, `list`, `status` and the dashboard call a row (`requestStates`) is built from
 * these in `stateConditionSql`, and the name of a row's state in `stateSql` from the same
 * conditions, so a filter finds exactly the rows that carry its name.
 *
 * A waiting row whose pid was cleared by hand while its launcher's lease still holds
 * (`leaseFreeSql` false) is being rescheduled: that launcher stops the try first and then clears
 * the lease, so the claim leaves such a row alone until then (or until the lease runs out).
 */
const column = (alias: string | undefined, name: string): string => (alias === undefined ? name : `${alias}.${name}`);

/**
 * What a NULL `try_limit` reads as (a Rails-made table allows NULL there and in `tries`): the
 * column's default, 5. A NULL `tries` reads as 0, no try made. The claim writes both readings
 * into the row, so every later statement sees plain numbers.
 */
export const nullTryLimit: number = defaults.tryLimit;

/** A try is left: `tries < try_limit`, reading NULLs as `nullTryLimit` says. A filter only, so the claim's partial index still serves it. */
export function triesLeftSql(alias?: string): string {
  return `COALESCE(${column(alias, 'tries')}, 0) < COALESCE(${column(alias, 'try_limit')}, ${nullTryLimit})`;
}

export function waitingSql(alias?: string): string {
  const c = (name: string) => column(alias, name);
  return `${c('completed_at')} IS NULL AND ${c('pid')} IS NULL AND ${triesLeftSql(alias)}`;
}

/** `delay_until` has come (or there is none). */
export function dueSql(alias?: string): string {
  const delay = column(alias, 'delay_until');
  return `(${delay} IS NULL OR ${delay} <= now())`;
}

export function runnableSql(alias?: string): string {
  return `${waitingSql(alias)} AND ${dueSql(alias)}`;
}

export function delayedSql(alias?: string): string {
  return `${waitingSql(alias)} AND ${column(alias, 'delay_until')} > now()`;
}

export function runningSql(alias?: string): string {
  return `${column(alias, 'pid')} IS NOT NULL AND ${column(alias, 'completed_at')} IS NULL`;
}

/**
 * No launcher's lease holds the row: every statement that ends a try clears the lease with the
 * pid, so a lease still in the future on a row without a pid means the pid was cleared under a
 * try whose launcher has not stopped it yet. A filter on the rows the claim's index gives, not an
 * index condition (now() changes), and rarely false, so it costs the claim nothing measurable.
 */
export function leaseFreeSql(alias?: string): string {
  const lease = column(alias, 'lease_expires_at');
  return `(${lease} IS NULL OR ${lease} <= now())`;
}

/**
 * Waiting with a lease still recorded: the pid was cleared by hand under a try whose launcher has
 * not yet stopped it and cleared the lease (a reschedule in progress, or one whose launcher died).
 * The predicate of `wiped_idx`, which every statement that looks for such rows reads.
 */
export function wipedSql(alias?: string): string {
  const c = (name: string) => column(alias, name);
  return `${c('pid')} IS NULL AND ${c('completed_at')} IS NULL AND ${c('lease_expires_at')} IS NOT NULL`;
}

/** A queue filter on parameter `$n` (text[]; NULL means every queue). */
export function queueFilterSql(parameter: number, alias?: string): string {
  return `($${parameter}::text[] IS NULL OR ${column(alias, 'queue')} = ANY($${parameter}::text[]))`;
}

/** Claimed but not started: what `status`, `list` and the dashboard call held. */
export function heldSql(alias?: string): string {
  return `${runningSql(alias)} AND ${column(alias, 'started_at')} IS NULL`;
}

/** Claimed and started: a try runs (what `status`, `list` and the dashboard call running). */
export function startedSql(alias?: string): string {
  return `${runningSql(alias)} AND ${column(alias, 'started_at')} IS NOT NULL`;
}

export function endedSql(alias?: string): string {
  return `${column(alias, 'completed_at')} IS NOT NULL`;
}

/** Never ended, not claimed, and no try left: no launcher will ever run or end it. */
export function spentSql(alias?: string): string {
  const c = (name: string) => column(alias, name);
  return `${c('completed_at')} IS NULL AND ${c('pid')} IS NULL AND NOT (${triesLeftSql(alias)})`;
}

/** How a request stands, derived from its columns (never stored). */
export const requestStates = [
  'waiting',
  'held',
  'running',
  'finished',
  'failed',
  'crashed',
  'parked',
  'cancelled',
] as const;
export type RequestState = (typeof requestStates)[number];

/** The results that name the state of an ended row; an ended row with any other result (or none) is failed. */
const endedResults = {
  finished: ['FINISHED'],
  crashed: ['CRASHED', 'TIMED_OUT'],
  parked: ['PARKED'],
  cancelled: ['CANCELLED'],
} as const satisfies Partial<Record<RequestState, readonly string[]>>;

const quoted = (values: readonly string[]): string => values.map((value) => `'${value}'`).join(', ');

/**
 * The values of `result` outside `values`, as a list of conditions: NULL, and each open range
 * between them. `NOT IN` reads every ended row; each range here is a scan of `result_idx`, so a
 * rare result is found without walking the common ones. Sorted by code unit, which orders these
 * upper-case words as every collation does.
 */
function resultsOutside(result: string, values: readonly string[]): string[] {
  const sorted = [...values].sort();
  const gaps = sorted.slice(1).map((value, i) => `(${result} > '${sorted[i]}' AND ${result} < '${value}')`);
  return [`${result} IS NULL`, `${result} < '${sorted[0]}'`, ...gaps, `${result} > '${sorted[sorted.length - 1]}'`];
}

/**
 * The condition of one state. The states are disjoint and cover every row. Each is written so
 * that an index serves it: waiting through `runnable_idx`, held and running through
 * `running_idx`, an ended state through `result_idx` (`(result, id) WHERE completed_at IS NOT
 * NULL`); failed is the ended rows with no other state's result (one arm per range of them),
 * or spent ones (`runnable_idx`).
 */
export function stateConditionSql(state: RequestState, alias?: string): string {
  const result = column(alias, 'result');
  switch (state) {
    case 'waiting':
      return waitingSql(alias);
    case 'held':
      return heldSql(alias);
    case 'running':
      return startedSql(alias);
    case 'failed': {
      const outside = resultsOutside(result, Object.values(endedResults).flat());
      const ended = outside.map((arm) => `(${endedSql(alias)} AND ${arm})`);
      return `(${[...ended, `(${spentSql(alias)})`].join(' OR ')})`;
    }
    default:
      return `${endedSql(alias)} AND ${result} IN (${quoted(endedResults[state])})`;
  }
}

/** The state of a row as SQL (a text value of `requestStates`), from the conditions of `stateConditionSql`. */
export function stateSql(alias?: string): string {
  const arms = requestStates.map((state) => `WHEN ${stateConditionSql(state, alias)} THEN '${state}'`);
  return `CASE ${arms.join(' ')} END`;
}
