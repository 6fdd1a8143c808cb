import { sql } from 'kysely';
import { cancelChannelFor, type TableName } from '../config/identifiers.js';
import { TaskRunnerError } from '../errors.js';
import type { SqlDb } from './database.js';
import type { TaskRequestRow } from './schema.js';

/** What `cancel` did to a request. */
export interface CancelResult {
  /**
   * - cancelled: it was waiting, and is now ended CANCELLED without having run (again);
   * - cancelling: it is running; its launcher was told (NOTIFY, and its next lease renewal) to
   *   kill the try, and the outcome it writes ends the request CANCELLED;
   * - ended: it had already ended; nothing changed.
   */
  state: 'cancelled' | 'cancelling' | 'ended';
  /** The request's result after the call (CANCELLED, or how it had ended; null while cancelling). */
  result: string | null;
  /** The running try's pid, its host and its launcher (for 'cancelling'; as stored otherwise). */
  pid: number | null;
  host: string | null;
  launcherId: string | null;
}

/**
 * Cancels one request in one statement. The row is locked first, so the decision (waiting,
 * running, ended) and the change are made on the same version of it: a launcher claiming it at
 * the same moment either claims it before (and the cancel finds it running) or finds it ended.
 * For a running row the notification is sent in the same statement and delivered when it
 * commits, by which time `cancel_requested_at` is visible to the launcher that acts on it.
 */
export async function cancelRequest(db: SqlDb, table: TableName, id: string): Promise<CancelResult> {
  const ref = sql.table(table.qualified);
  const channel = cancelChannelFor(table);
  type Row = Pick<TaskRequestRow, 'result' | 'pid' | 'host' | 'launcher_id'> & { state: CancelResult['state'] };
  const { rows } = await sql<Row>`
    WITH target AS MATERIALIZED (
      SELECT id, pid, result, host, launcher_id, completed_at FROM ${ref} WHERE id = ${id}::bigint FOR UPDATE
    ),
    changed AS (
      UPDATE ${ref} AS t
      SET cancel_requested_at = COALESCE(t.cancel_requested_at, now()),
          result = CASE WHEN t.pid IS NULL THEN 'CANCELLED' ELSE t.result END,
          result_text = CASE WHEN t.pid IS NULL THEN 'cancelled before it ran' ELSE t.result_text END,
          completed_at = CASE WHEN t.pid IS NULL THEN now() END
      FROM target WHERE t.id = target.id AND target.completed_at IS NULL
      RETURNING t.id, t.pid, t.result
    )
    SELECT CASE WHEN changed.id IS NULL THEN 'ended' WHEN changed.pid IS NULL THEN 'cancelled' ELSE 'cancelling' END AS state,
           CASE WHEN changed.pid IS NULL THEN COALESCE(changed.result, target.result) END AS result,
           target.pid, target.host, target.launcher_id,
           CASE WHEN changed.pid IS NOT NULL THEN pg_notify(${channel}, target.id::text) END AS notified
    FROM target LEFT JOIN changed ON changed.id = target.id`.execute(db);
  const row = rows[0];
  if (row === undefined) throw new TaskRunnerError('REQUEST_NOT_FOUND', `request ${id} does not exist`);
  return { state: row.state, result: row.result, pid: row.pid, host: row.host, launcherId: row.launcher_id };
}
