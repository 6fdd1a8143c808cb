/**
 * The request store over a test database, and factories for the rows and outcomes the store
 * tests write: a row in the middle of a try, an outcome as the dispatcher would hand it over.
 */
import { parseTableName } from '../../dist/config/identifiers.js';
import { RequestStore, type AttemptOutcome, type AttemptRecord } from '../../dist/store/request-store.js';
import { insertRequest, type Queryable, type RequestFields } from './db.js';
import type { Kysely } from 'kysely';

export const testHost = 'test-host';
export const testLauncher = 'launcher-a';
/** A pid no process has (one past the kernel's limit), for rows whose process is gone. */
export const deadPid = 4_194_304 + 1;

/** A store on `task_runner_requests` with a long backoff, so a retried row is visibly delayed. */
export function storeOn(db: Kysely<any>, params: { crashLimit?: number; table?: string } = {}): RequestStore {
  return new RequestStore({
    db,
    table: parseTableName(params.table ?? 'task_runner_requests'),
    backoff: { baseMs: 10_000, maxMs: 60_000 },
    crashLimit: params.crashLimit ?? 3,
  });
}

/** A row in the middle of try `tries` (default 1 of 5) under `testLauncher` on `testHost`. */
export function insertRunning(pool: Queryable, fields: RequestFields = {}): Promise<string> {
  return insertRequest(pool, {
    pid: deadPid, host: testHost, launcher_id: testLauncher, process_identity: 'boot:1', tries: 1, try_limit: 5,
    started_at: new Date(Date.now() - 5_000), lease_expires_at: new Date(Date.now() + 60_000), ...fields,
  });
}

/** An outcome of try `tries` of `id`: FAILED by default, with a plain history record. */
export function outcomeOf(
  id: string,
  tries: number,
  extra: Partial<Omit<AttemptOutcome, 'id' | 'tries' | 'attempt'>> & { attempt?: Partial<AttemptRecord> } = {},
): AttemptOutcome {
  const { attempt, ...rest } = extra;
  return {
    id,
    tries,
    result: 'FAILED',
    resultText: 'Error: boom\n    at run (task.js:1:1)',
    endNow: false,
    refund: false,
    crash: false,
    ...rest,
    attempt: { pid: 4242, threadId: null, mode: 'fresh', startedAtMs: null, exitCode: null, signal: null, peakMemoryBytes: null, ...attempt },
  };
}

/** A crash outcome as the pool reports one: the child was killed by a signal. */
export function crashOf(id: string, tries: number, result: 'CRASHED' | 'TIMED_OUT' = 'CRASHED'): AttemptOutcome {
  return outcomeOf(id, tries, {
    result,
    resultText: result === 'CRASHED' ? 'child process 4242 was killed by SIGKILL' : 'timed out after 100 ms',
    crash: true,
    attempt: { signal: 'SIGKILL' },
  });
}

/** The attempts-table rows of request `id`, oldest first, as stored. */
export async function historyOf(pool: Queryable, id: string, table = 'task_runner_requests_attempts'): Promise<any[]> {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`bad test table name ${table}`);
  const { rows } = await pool.query(`SELECT * FROM ${table} WHERE request_id = $1 ORDER BY id`, [id]);
  return rows;
}
