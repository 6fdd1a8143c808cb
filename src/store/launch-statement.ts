import type { TableName } from '../config/identifiers.js';
import { attemptsTableFor } from './attempts-table.js';
import type { AttemptOutcome } from './attempt-outcome.js';
import { leaseFreeSql, nullTryLimit, queueFilterSql, runnableSql } from './fragments.js';
import { settleAssignments, type SettleRules } from './outcome-rules.js';
import type { RequestResultValue } from './schema.js';
import type { Statement } from './sql-client.js';
import { storableText } from './storable-text.js';

/** A started try's process, written to its row while it runs. */
export interface AttemptStartRecord {
  id: string;
  tries: number;
  pid: number;
  processIdentity: string | null;
  threadId: number | null;
  /** When the try started, by the launcher's `performance.timeOrigin + performance.now()`: stored as an age (see `agoMs`). */
  startedAtMs: number;
}

/** What to claim: up to `limit` rows, of which the first `startNow` are started at once (the rest held). */
export interface ClaimOrder {
  limit: number;
  startNow: number;
  host: string;
  launcherPid: number;
  launcherIdentity: string | null;
  queues: readonly string[] | null;
  leaseMs: number;
  /** Options longer than this are not fetched: the row is refused by length. */
  maxOptionsBytes: number;
}

export interface LaunchParams {
  launcherId: string;
  outcomes: readonly AttemptOutcome[];
  starts: readonly AttemptStartRecord[];
  claim: ClaimOrder | null;
}

/** An outcome the statement applied: how the row stands after it. */
export interface AppliedOutcome {
  id: string;
  /** The row's `result` now (PARKED or CANCELLED where the try's own result said otherwise). */
  result: RequestResultValue;
  /** True when the request ended (`completed_at` is set). */
  ended: boolean;
}

/** A claimed row: what the launcher needs to run one try of it. */
export interface ClaimedRow {
  id: string;
  /** Null where the table allows it (a Rails-made table) and a row has none: it cannot run. */
  taskClassName: string | null;
  /** Null also when the text was over `maxOptionsBytes` (see `optionsBytes`). */
  options: string | null;
  optionsBytes: number | null;
  /** This try's number (1 for the first). */
  tries: number;
  tryLimit: number;
  queue: string;
  priority: number;
  createdAtMs: number;
  timeoutMs: number | null;
  crashes: number;
  /** Claimed to start at once (`started_at` set); false: held in the launcher's local queue. */
  startNow: boolean;
  /** When the row became runnable (its creation or its `delay_until`, the later), epoch ms: pickup latency starts here. */
  runnableAtMs: number;
  /** W3C traceparent stored at `schedule()` (null when none was): the try's span links to it. */
  traceparent: string | null;
  /**
   * When the lease of this row was last known to start (`performance.now()` milliseconds): when
   * the answer came, and then (the launch loop) when the statement that claimed it was sent.
   */
  receivedAtMs: number;
}

export interface LaunchResult {
  outcomes: AppliedOutcome[];
  /** Ids whose start was written. */
  starts: Set<string>;
  claimed: ClaimedRow[];
}

interface LaunchRow {
  kind: number;
  id: string;
  result: RequestResultValue | null;
  ended: boolean | null;
  task_class_name: string | null;
  options: string | null;
  options_bytes: number | null;
  tries: number | null;
  try_limit: number | null;
  queue: string | null;
  priority: number | null;
  created_ms: number | null;
  timeout_ms: number | null;
  crashes: number | null;
  started: boolean | null;
  runnable_ms: number | null;
  traceparent: string | null;
}

function quoted(table: TableName): string {
  return table.schema === null ? `"${table.table}"` : `"${table.schema}"."${table.table}"`;
}

/**
 * The claim as CTEs (`picked`, `ranked`, `claimed`), the one text both statements use:
 *
 * `picked` locks runnable rows and skips rows other launchers hold, so launchers never pick the
 * same row and never wait on each other; the UPDATE marks them running in the same statement, so
 * no window exists in which a picked row is still runnable. MATERIALIZED keeps the planner from
 * inlining the pick, where it could run more than once and lock more than `limit`. The first
 * `startNow` rows get `started_at` (they start at once); the rest are held in the launcher's
 * local queue and get it when they start, which is how recovery tells a try that ran from one
 * that never started. A row whose options are over the limit is claimed without them: the
 * launcher refuses it by length, having loaded nothing. A row whose pid was cleared under a lease
 * that still holds is not taken (see `leaseFreeSql`): its try may still run.
 */
function claimCtes(t: string, first: number): string {
  // $1 is the launcher id; the claim's own values (see claimParameters) are $first, $first + 1, ...
  const p = {
    limit: first,
    startNow: first + 1,
    pid: first + 2,
    identity: first + 3,
    queues: first + 4,
    host: first + 5,
    leaseMs: first + 6,
    maxOptionsBytes: first + 7,
  };
  return `picked AS MATERIALIZED (
  SELECT id, priority FROM ${t}
  WHERE ${runnableSql()} AND ${leaseFreeSql()} AND ${queueFilterSql(p.queues)}
  ORDER BY priority DESC, id
  LIMIT $${p.limit}::int
  FOR UPDATE SKIP LOCKED
),
ranked AS (
  SELECT id, row_number() OVER (ORDER BY priority DESC, id) AS n FROM picked
),
claimed AS (
  UPDATE ${t} AS t
  SET pid = $${p.pid}::int, process_identity = $${p.identity}::text, host = $${p.host}::text, launcher_id = $1::text,
      thread_id = NULL, tries = COALESCE(t.tries, 0) + 1, try_limit = COALESCE(t.try_limit, ${nullTryLimit}),
      started_at = CASE WHEN ranked.n <= $${p.startNow}::int THEN now() END,
      lease_expires_at = now() + $${p.leaseMs}::int * interval '1 millisecond'
  FROM ranked
  WHERE t.id = ranked.id
  RETURNING t.id, t.task_class_name, CASE WHEN octet_length(t.options) <= $${p.maxOptionsBytes}::int THEN t.options END AS options,
            octet_length(t.options) AS options_bytes, t.tries, t.try_limit, t.queue, t.priority,
            (extract(epoch FROM t.created_at) * 1000)::float8 AS created_ms, t.timeout_ms, t.crashes,
            t.started_at IS NOT NULL AS started,
            (extract(epoch FROM greatest(t.created_at, t.delay_until)) * 1000)::float8 AS runnable_ms, t.traceparent
)
`;
}

/** The claimed rows as the statement's result rows (kind 3). */
const claimedRowsSql = `SELECT 3 AS kind, id::text AS id, NULL::text AS result, NULL::bool AS ended, task_class_name, options, options_bytes, tries,
       try_limit, queue, priority, created_ms, timeout_ms, crashes, started, runnable_ms, traceparent
FROM claimed`;

/**
 * The launcher's one statement: it records ended tries (row and history), records where started
 * tries run, and claims more rows, all in one round trip and one commit, so the launcher's
 * bookkeeping costs a fraction of a statement per try. Each part may be empty.
 *
 * - Outcomes: the crash and cancel rules of `settleAssignments` decide how the row stands; the
 *   statement returns that, so the launcher reports what was written rather than recomputing it.
 *   The guard on launcher, try number and pid means a row recovered by someone else meanwhile is
 *   neither overwritten nor given a history row from here. An id given twice counts once (the
 *   last outcome given). A row whose pid was cleared by hand (a reschedule) is still this
 *   launcher's while its lease is set: the try's outcome (RESCHEDULED once stopped, or how it
 *   ended if it ended first) is written, and clears the lease, which lets the claim take it.
 * - Starts: the running try's pid (the child's; the launcher's own with the thread id in thread
 *   mode) and start time, under the same guard.
 * - Claim: see `claimCtes`.
 *
 * The claim never sees the rows this statement completes (they are running in its snapshot), so
 * no row is updated twice.
 */
export function launchStatement(table: TableName, rules: SettleRules): Statement {
  const t = quoted(table);
  const attempts = quoted(attemptsTableFor(table));
  const settle = settleAssignments(
    { result: 'o.result', text: 'o.result_text', crash: 'o.crash', endNow: 'o.end_now', refund: 'o.refund' },
    rules,
  );
  const text = `
WITH o AS (
  SELECT DISTINCT ON (id) * FROM unnest(
    $2::bigint[], $3::int[], $4::text[], $5::text[], $6::bool[], $7::bool[], $8::bool[], $9::int[], $10::int[],
    $11::text[], $12::float8[], $13::int[], $14::text[], $15::bigint[]
  ) WITH ORDINALITY AS u(id, tries, result, result_text, end_now, refund, crash, pid, thread_id, mode, started_ago_ms,
                          exit_code, signal, peak_memory_bytes, n)
  ORDER BY id, n DESC
),
done AS (
  UPDATE ${t} AS t
  SET ${settle},
      started_at = COALESCE(now() - o.started_ago_ms * interval '1 millisecond', t.started_at)
  FROM o
  WHERE t.id = o.id AND t.tries = o.tries AND t.launcher_id = $1::text
    AND (t.pid IS NOT NULL OR (t.completed_at IS NULL AND t.lease_expires_at IS NOT NULL))
  RETURNING t.id, t.result, t.completed_at IS NOT NULL AS ended, t.host, t.launcher_id, t.started_at
),
history AS (
  INSERT INTO ${attempts} (request_id, try, host, launcher_id, pid, thread_id, mode, started_at, result, exit_code, signal,
                           peak_memory_bytes, result_text)
  SELECT done.id, o.tries, done.host, done.launcher_id, o.pid, o.thread_id, o.mode, done.started_at, o.result, o.exit_code,
         o.signal, o.peak_memory_bytes, CASE WHEN o.result = 'FINISHED' THEN NULL ELSE o.result_text END
  FROM done JOIN o ON o.id = done.id
),
s AS (
  SELECT * FROM unnest($16::bigint[], $17::int[], $18::int[], $19::text[], $20::int[], $21::float8[])
    AS u(id, tries, pid, identity, thread_id, started_ago_ms)
),
started AS (
  UPDATE ${t} AS t
  SET pid = s.pid, process_identity = s.identity, thread_id = s.thread_id,
      started_at = now() - s.started_ago_ms * interval '1 millisecond'
  FROM s
  WHERE t.id = s.id AND t.tries = s.tries AND t.launcher_id = $1 AND t.pid IS NOT NULL AND t.completed_at IS NULL
  RETURNING t.id
),
${claimCtes(t, 22)}${claimedRowsSql}
UNION ALL
SELECT 1, id::text, result, ended, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM done
UNION ALL
SELECT 2, id::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM started`;
  return { text };
}

/**
 * A claim alone, as the launcher sends it when no outcome or start waits (an idle launcher woken
 * by a notification, so on the pickup path): the same claim as the launch statement's, without
 * its other parts. It costs PostgreSQL about a third of the launch statement with empty parts,
 * which it must still parse and plan (0.8 ms against 1.9 ms for a one-row claim here).
 */
export function claimStatement(table: TableName): Statement {
  const t = quoted(table);
  const text = `
WITH ${claimCtes(t, 2)}
${claimedRowsSql}`;
  return { text };
}

/** The claim's own values, in the order `claimCtes` numbers them (placeholders when there is no claim). */
function claimParameters(c: ClaimOrder | null): unknown[] {
  return [
    c?.limit ?? 0,
    c?.startNow ?? 0,
    c?.launcherPid ?? null,
    c?.launcherIdentity ?? null,
    c === null || c.queues === null ? null : [...c.queues],
    c?.host ?? null,
    c?.leaseMs ?? 0,
    c?.maxOptionsBytes ?? 0,
  ];
}

/** The claim statement's parameters, in order. */
export function claimValues(launcherId: string, c: ClaimOrder): unknown[] {
  return [launcherId, ...claimParameters(c)];
}

/**
 * How long ago a try started, by the launcher's monotonic clock (`startedAtMs` and now both come
 * from `performance.timeOrigin + performance.now()`, so the launcher's wall clock cancels out).
 * The statement subtracts it from `now()`, the same time `completed_at` and the attempt's
 * `ended_at` get (not `statement_timestamp()`: under the extended protocol that is taken at the
 * Execute message, after the Bind that plans this statement, so it ran up to a millisecond past
 * `now()` and a short try read as ending before it started), so a start is stored by the database's clock, as every other
 * time is: a launcher whose wall clock ran 10 minutes ahead wrote every try as started 600 s
 * after it completed. Sent when the statement is built, so a wait for a connection only makes
 * the start look later, never after the end.
 */
function agoMs(startedAtMs: number | null, nowMs: number): number | null {
  return startedAtMs === null ? null : Math.max(0, nowMs - startedAtMs);
}

/** The statement's parameters, in order. */
export function launchValues(params: LaunchParams): unknown[] {
  const o = params.outcomes;
  const s = params.starts;
  const nowMs = performance.timeOrigin + performance.now();
  return [
    params.launcherId,
    o.map((x) => x.id),
    o.map((x) => x.tries),
    o.map((x) => x.result),
    o.map((x) => storableText(x.resultText)),
    o.map((x) => x.endNow),
    o.map((x) => x.refund),
    o.map((x) => x.crash),
    o.map((x) => x.attempt.pid),
    o.map((x) => x.attempt.threadId),
    o.map((x) => x.attempt.mode),
    o.map((x) => agoMs(x.attempt.startedAtMs, nowMs)),
    o.map((x) => x.attempt.exitCode),
    o.map((x) => x.attempt.signal),
    o.map((x) => x.attempt.peakMemoryBytes),
    s.map((x) => x.id),
    s.map((x) => x.tries),
    s.map((x) => x.pid),
    s.map((x) => x.processIdentity),
    s.map((x) => x.threadId),
    s.map((x) => agoMs(x.startedAtMs, nowMs)),
    ...claimParameters(params.claim),
  ];
}

/** Splits the statement's rows into what it did. */
export function launchResult(rows: readonly LaunchRow[]): LaunchResult {
  const result: LaunchResult = { outcomes: [], starts: new Set(), claimed: [] };
  const receivedAtMs = performance.now();
  for (const row of rows) {
    if (row.kind === 1) {
      result.outcomes.push({ id: row.id, result: row.result!, ended: row.ended! });
    } else if (row.kind === 2) {
      result.starts.add(row.id);
    } else {
      result.claimed.push({
        id: row.id,
        taskClassName: row.task_class_name,
        options: row.options,
        optionsBytes: row.options_bytes,
        tries: row.tries!,
        tryLimit: row.try_limit!,
        queue: row.queue!,
        priority: row.priority!,
        createdAtMs: row.created_ms!,
        timeoutMs: row.timeout_ms,
        crashes: row.crashes!,
        startNow: row.started!,
        runnableAtMs: row.runnable_ms!,
        traceparent: row.traceparent,
        receivedAtMs,
      });
    }
  }
  // Priority first, then age: the order the launcher starts them in.
  result.claimed.sort(
    (a, b) => b.priority - a.priority || a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  return result;
}

export type { LaunchRow };
