import { sql } from 'kysely';
import type { TableName } from '../config/identifiers.js';
import { attemptsTableFor } from './attempts-table.js';
import type { AttemptRow, RequestResultValue } from './schema.js';
import type { SqlDb } from './database.js';

/** One ended try of a request, as its attempts table records it. */
export interface RequestAttempt {
  /** The history row's own id (text, like request ids). */
  id: string;
  requestId: string;
  /** The try's number (1 for the first). */
  try: number;
  host: string | null;
  launcherId: string | null;
  /** The child's pid (or the launcher's, for a thread or before the child started). */
  pid: number | null;
  threadId: number | null;
  /** How the try ran: 'fresh', 'spare', 'reused' or 'thread'; null when unknown (probe, lease). */
  mode: string | null;
  startedAt: Date | null;
  endedAt: Date;
  /** This try's own result, which may differ from the request's (PARKED, CANCELLED). */
  result: RequestResultValue;
  exitCode: number | null;
  signal: string | null;
  peakMemoryBytes: number | null;
  /** The try's error or crash text; null for a FINISHED try (its value is in the request row). */
  resultText: string | null;
}

/**
 * The recorded tries of one request, oldest first. A request with no ended try has none. Ordered
 * by `a.id`, the column: a bare `id` would name the text alias and put try 16 before try 2.
 */
export async function attemptsOfRequest(db: SqlDb, table: TableName, requestId: string): Promise<RequestAttempt[]> {
  const { rows } = await sql<AttemptRow>`
    SELECT id::text AS id, request_id::text AS request_id, try, host, launcher_id, pid, thread_id, mode, started_at, ended_at,
           result, exit_code, signal, peak_memory_bytes::text AS peak_memory_bytes, result_text
    FROM ${sql.table(attemptsTableFor(table).qualified)} AS a
    WHERE a.request_id = ${requestId}::bigint
    ORDER BY a.id`.execute(db);
  return rows.map((row) => ({
    id: row.id,
    requestId: row.request_id,
    try: row.try,
    host: row.host,
    launcherId: row.launcher_id,
    pid: row.pid,
    threadId: row.thread_id,
    mode: row.mode,
    startedAt: row.started_at,
    endedAt: row.ended_at,
    result: row.result,
    exitCode: row.exit_code,
    signal: row.signal,
    peakMemoryBytes: row.peak_memory_bytes === null ? null : Number(row.peak_memory_bytes),
    resultText: row.result_text,
  }));
}
