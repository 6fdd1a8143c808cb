import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { attemptsTableFor } from './attempts-table.js';
import type { SqlDb } from './database.js';
import { storableText } from './storable-text.js';

/** A try its launcher fenced, of a row another launcher recovered meanwhile. */
export interface FencedAttemptNote {
  id: string;
  tries: number;
  /** The try's process, when it had started (the recovery may have seen only the launcher's pid). */
  pid: number | null;
  startedAtMs: number | null;
  text: string;
}

/**
 * Tells the history what happened to tries a launcher fenced while it was cut off or frozen,
 * once it can write again. By then another launcher has recovered the row (the lease expired)
 * and written the try's history row from what the row said: "lease expired", and "never
 * started" when the start had not reached the row. The row itself is not this launcher's any
 * more and is left alone; only that history row, of this launcher, try and CRASHED result, gets
 * the fence's account first, and the start the launcher knew of. Returns how many it amended.
 */
export async function attemptsNoteFenced(
  db: SqlDb,
  table: TableName,
  params: { launcherId: string; notes: readonly FencedAttemptNote[] },
): Promise<number> {
  const n = params.notes;
  if (n.length === 0) return 0;
  const attempts = sql.table(attemptsTableFor(table).qualified);
  const result = await sql`
    UPDATE ${attempts} AS a
    SET result_text = v.text || '; recovered by another launcher: ' || regexp_replace(COALESCE(a.result_text, ''), '^never started: ', ''),
        started_at = COALESCE(a.started_at, to_timestamp(v.started_ms / 1000.0)),
        pid = COALESCE(v.pid, a.pid)
    FROM unnest(${n.map((x) => x.id)}::bigint[], ${n.map((x) => x.tries)}::int[], ${n.map((x) => storableText(x.text))}::text[],
                ${n.map((x) => x.startedAtMs)}::float8[], ${n.map((x) => x.pid)}::int[]) AS v(id, try, text, started_ms, pid)
    WHERE a.request_id = v.id AND a.try = v.try AND a.launcher_id = ${params.launcherId} AND a.result = 'CRASHED'
      AND a.result_text NOT LIKE 'lease lost: fenced%'`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
