/**
 * The execution ledger and the checks on it, in SQL. Each ChaosWork try writes `start` and
 * `finish` rows (request, try, host, pid); the tests write every kill into `chaos_kills`. Then:
 *
 * - lost: a request not FINISHED at the end;
 * - duplicate: a request started more than once where the earlier try's start was not in flight
 *   at a kill (a kill of its host's launcher after it started, or up to a second before, the time
 *   a child needs to see its launcher gone; or a kill of its own process);
 * - left running: a row that still holds a pid.
 */
import type pg from 'pg';
import { waitFor } from '../../helpers/db.js';

export async function createLedger(pool: pg.Pool): Promise<void> {
  await pool.query(`
    CREATE TABLE IF NOT EXISTS chaos_ledger (
      request_id bigint NOT NULL, try int NOT NULL, host text NOT NULL, pid int NOT NULL,
      event text NOT NULL CHECK (event IN ('start', 'finish')), at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE INDEX IF NOT EXISTS chaos_ledger_request ON chaos_ledger (request_id);
    CREATE TABLE IF NOT EXISTS chaos_kills (host text NOT NULL, pid int, what text NOT NULL, at timestamptz NOT NULL);`);
}

export async function resetLedger(pool: pg.Pool): Promise<void> {
  await pool.query(
    'TRUNCATE task_runner_requests, task_runner_requests_attempts, chaos_ledger, chaos_kills RESTART IDENTITY',
  );
}

/** Inserts `count` ChaosWork requests in one statement. */
export async function insertWork(
  pool: pg.Pool,
  count: number,
  fields: { ms?: number; tryLimit?: number; task?: string } = {},
): Promise<void> {
  await pool.query(
    `INSERT INTO task_runner_requests (task_class_name, options, try_limit)
     SELECT $1, $2, $3 FROM generate_series(1, $4::int)`,
    [fields.task ?? 'ChaosWork', JSON.stringify({ ms: fields.ms ?? 0 }), fields.tryLimit ?? 5, count],
  );
}

/** Writes a kill (of a launcher's process, or of a task's) at the database's clock. */
export async function recordKill(
  pool: pg.Pool,
  host: string,
  pid: number,
  what: 'launcher' | 'child' | 'stop',
): Promise<void> {
  await pool.query('INSERT INTO chaos_kills (host, pid, what, at) VALUES ($1, $2, $3, clock_timestamp())', [
    host,
    pid,
    what,
  ]);
}

/**
 * Waits until no request is left unfinished. Throughput depends on the machine and its load, so
 * the limit is on progress: it fails once nothing has ended for `stallMs`.
 */
export async function waitAllEnded(
  pool: pg.Pool,
  params: { stallMs?: number; what?: string; during?: () => Promise<void> } = {},
): Promise<void> {
  const stallMs = params.stallMs ?? 90_000;
  let remaining = Number.POSITIVE_INFINITY;
  let lastProgress = Date.now();
  await waitFor(
    async () => {
      await params.during?.();
      const { rows } = await pool.query(
        'SELECT count(*)::int AS n FROM task_runner_requests WHERE completed_at IS NULL',
      );
      const now = rows[0].n as number;
      if (now < remaining) lastProgress = Date.now();
      remaining = now;
      if (Date.now() - lastProgress > stallMs) throw new Error(`no request ended for ${stallMs} ms; ${remaining} left`);
      return remaining === 0;
    },
    { timeoutMs: 3_600_000, intervalMs: 200, what: params.what ?? 'every request to end' },
  );
}

export interface LedgerFigures {
  requests: number;
  lost: number;
  duplicates: number;
  duplicatesInFlightAtKill: number;
  leftRunning: number;
  starts: number;
}

/** The figures every scenario reports, from the tables alone. */
export async function ledgerFigures(pool: pg.Pool): Promise<LedgerFigures> {
  const { rows } = await pool.query(`
    WITH starts AS (
      SELECT request_id, try, host, pid, at,
             row_number() OVER (PARTITION BY request_id ORDER BY at) AS n
      FROM chaos_ledger WHERE event = 'start'
    ),
    repeated AS (
      -- Every start after the first, judged by the start before it.
      SELECT later.request_id,
             EXISTS (
               SELECT 1 FROM chaos_kills k
               -- A child may start its task just before it sees its launcher gone: a second of grace.
               WHERE k.at >= earlier.at - interval '1 second' AND k.at <= later.at
                 AND ((k.what IN ('launcher', 'stop') AND k.host = earlier.host) OR (k.what = 'child' AND k.pid = earlier.pid))
             ) AS excused
      FROM starts later JOIN starts earlier ON earlier.request_id = later.request_id AND earlier.n = later.n - 1
    )
    SELECT
      (SELECT count(*)::int FROM task_runner_requests) AS requests,
      (SELECT count(*)::int FROM task_runner_requests WHERE result IS DISTINCT FROM 'FINISHED' OR completed_at IS NULL) AS lost,
      (SELECT count(*)::int FROM repeated WHERE NOT excused) AS duplicates,
      (SELECT count(*)::int FROM repeated WHERE excused) AS "duplicatesInFlightAtKill",
      (SELECT count(*)::int FROM task_runner_requests WHERE pid IS NOT NULL) AS "leftRunning",
      (SELECT count(*)::int FROM chaos_ledger WHERE event = 'start') AS starts`);
  return rows[0] as LedgerFigures;
}
