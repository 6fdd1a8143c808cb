/**
 * How one ended try is described to `settleAssignments`: SQL expressions over the statement's
 * own aliases (an unnested outcome, a locked row), never values spliced into the text.
 */
export interface EndedTryTerms {
  /** The try's own result (text): FINISHED, FAILED, CRASHED, TIMED_OUT, CANCELLED, INTERRUPTED or RESCHEDULED. */
  result: string;
  /** The try's own text (error, crash description), or NULL. */
  text: string;
  /** Boolean: the try crashed (CRASHED, TIMED_OUT) and counts against the crash limit. */
  crash: string;
  /** Boolean: end the request now whatever tries remain (FINISHED, a permanent failure, a cancel). */
  endNow: string;
  /** Boolean: give the try back and make the row runnable at once (shutdown). */
  refund: string;
}

export interface SettleRules {
  /** Crashes after which the row is PARKED. */
  crashLimit: number;
  /** Delay before a failed try's retry: min(baseMs * 2^(tries - 1), maxMs). */
  backoff: { baseMs: number; maxMs: number };
}

/** A validated whole number, safe to write into statement text. */
function literal(value: number, what: string): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${what} must be a whole number, got ${value}`);
  return String(value);
}

/**
 * The SET list that ends a running try of row `t` (the UPDATE's target alias). Every rule reads
 * the row as it is when the UPDATE locks it, so a cancel that commits while the try's outcome is
 * being written is still seen. In order:
 *
 *   1. a cancel was asked for and the try did not finish: the row ends CANCELLED;
 *   2. the try crashed and that makes `crashLimit` crashes: the row ends PARKED, so a task that
 *      kills its process every time does not use up the host forever;
 *   3. otherwise the try's own result stands: the row ends when it FINISHED, when the outcome says
 *      to end it now or when its tries are used up; a refunded try is given back and the row is
 *      runnable at once; any other failure is retried after the backoff.
 *
 * `crashes` counts every crash, whichever rule applies. This is the one place these rules live:
 * the statements that write outcomes return the row's `result` and whether it ended, and the
 * launcher reports what they say.
 */
export function settleAssignments(terms: EndedTryTerms, rules: SettleRules): string {
  const { result, text, crash, endNow, refund } = terms;
  const limit = literal(rules.crashLimit, 'crashLimit');
  const baseMs = literal(rules.backoff.baseMs, 'backoff.baseMs');
  const maxMs = literal(rules.backoff.maxMs, 'backoff.maxMs');
  const cancelled = `(t.cancel_requested_at IS NOT NULL AND ${result} IS DISTINCT FROM 'FINISHED')`;
  const parked = `(NOT ${cancelled} AND ${crash} AND t.crashes + 1 >= ${limit})`;
  const stops = `(${cancelled} OR ${parked} OR ${endNow} OR ${result} = 'FINISHED')`;
  const ends = `(${stops} OR (NOT ${refund} AND t.tries >= t.try_limit))`;
  const retryAt = `now() + LEAST(${baseMs}::float8 * power(2, LEAST(GREATEST(t.tries - 1, 0), 30)), ${maxMs}::float8) * interval '1 millisecond'`;
  return `pid = NULL, process_identity = NULL, thread_id = NULL, lease_expires_at = NULL,
    crashes = t.crashes + CASE WHEN ${crash} THEN 1 ELSE 0 END,
    result = CASE WHEN ${cancelled} THEN 'CANCELLED' WHEN ${parked} THEN 'PARKED' ELSE ${result} END,
    result_text = CASE
      WHEN ${cancelled} AND ${result} = 'CANCELLED' THEN ${text}
      WHEN ${cancelled} THEN 'cancelled: ' || COALESCE(${text}, ${result})
      WHEN ${parked} THEN 'parked after ' || (t.crashes + 1) || ' crashes (crashLimit ' || ${limit} || '); last: '
        || COALESCE(${text}, ${result})
      ELSE ${text} END,
    tries = CASE WHEN ${refund} AND NOT ${stops} THEN GREATEST(t.tries - 1, 0) ELSE t.tries END,
    completed_at = CASE WHEN ${ends} THEN now() END,
    delay_until = CASE WHEN ${ends} THEN t.delay_until WHEN ${refund} THEN NULL ELSE ${retryAt} END`;
}
