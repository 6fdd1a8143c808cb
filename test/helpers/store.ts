/**
 * The request store over a test database, with the conveniences the store tests call on it, and
 * factories for the rows and outcomes they write: a row in the middle of a try, an outcome as the
 * dispatcher would hand it over.
 */
import { parseTableName, type TableName } from '../../dist/config/identifiers.js';
import { attemptsOfRequest, type RequestAttempt } from '../../dist/store/attempt-history.js';
import { cancelRequest, type CancelResult } from '../../dist/store/cancel-request.js';
import type { SqlDb } from '../../dist/store/database.js';
import { requestRetry } from '../../dist/store/request-actions.js';
import {
  RequestStore,
  type AttemptOutcome,
  type AttemptRecord,
  type ClaimedRow,
  type RequestStoreParams,
} from '../../dist/store/request-store.js';
import { requestsCountByState, type StatusCounts } from '../../dist/store/state-counts.js';
import { insertRequest, type Queryable, type RequestFields } from './db.js';
import type { Kysely } from 'kysely';

/** What `requestsClaim` takes: a claim alone, for one launcher. */
export interface TestClaimParams {
  limit: number;
  /** Rows started at once; default all of them. */
  startNow?: number;
  launcherId: string;
  host: string;
  launcherPid: number;
  processIdentity: string | null;
  queues: readonly string[] | null;
  leaseMs: number;
  maxOptionsBytes?: number;
}

/**
 * The launcher's store, plus what the store tests do beside the launcher: a claim or outcomes
 * alone (the launch statement with one part), and the operator's statements (free functions in
 * src/store) on the same table.
 */
export class TestStore extends RequestStore {
  readonly #db: SqlDb;
  readonly #table: TableName;

  constructor(params: RequestStoreParams) {
    super(params);
    this.#db = params.db;
    this.#table = params.table;
  }

  /** Claims up to `limit` runnable rows (all started at once unless `startNow` says fewer). */
  async requestsClaim(params: TestClaimParams): Promise<ClaimedRow[]> {
    if (params.limit <= 0) return [];
    const { claimed } = await this.requestsLaunch({
      launcherId: params.launcherId,
      outcomes: [],
      starts: [],
      claim: {
        limit: params.limit,
        startNow: params.startNow ?? params.limit,
        host: params.host,
        launcherPid: params.launcherPid,
        launcherIdentity: params.processIdentity,
        queues: params.queues,
        leaseMs: params.leaseMs,
        maxOptionsBytes: params.maxOptionsBytes ?? 2_147_483_647,
      },
    });
    return claimed;
  }

  /** Writes outcomes of ended tries alone; returns the ids written. */
  async requestsComplete(params: { launcherId: string; outcomes: readonly AttemptOutcome[] }): Promise<Set<string>> {
    if (params.outcomes.length === 0) return new Set();
    const { launcherId, outcomes: ended } = params;
    const { outcomes } = await this.requestsLaunch({ launcherId, outcomes: ended, starts: [], claim: null });
    return new Set(outcomes.map((outcome) => outcome.id));
  }

  requestsRetry(params: { id: string }): Promise<void> {
    return requestRetry(this.#db, this.#table, params.id);
  }

  requestsCancel(params: { id: string }): Promise<CancelResult> {
    return cancelRequest(this.#db, this.#table, params.id);
  }

  requestsCountByState(): Promise<StatusCounts> {
    return requestsCountByState(this.#db, this.#table);
  }

  attemptsList(params: { requestId: string }): Promise<RequestAttempt[]> {
    return attemptsOfRequest(this.#db, this.#table, params.requestId);
  }
}

export const testHost = 'test-host';
export const testLauncher = 'launcher-a';
/** A pid no process has (one past the kernel's limit), for rows whose process is gone. */
export const deadPid = 4_194_304 + 1;

/** A store on `task_runner_requests` with a long backoff, so a retried row is visibly delayed. */
export function storeOn(
  db: Kysely<any>,
  params: { crashLimit?: number; table?: string; backoff?: RequestStoreParams['backoff'] } = {},
): TestStore {
  return new TestStore({
    db,
    table: parseTableName(params.table ?? 'task_runner_requests'),
    backoff: params.backoff ?? { baseMs: 10_000, maxMs: 60_000 },
    crashLimit: params.crashLimit ?? 3,
  });
}

/** A row in the middle of try `tries` (default 1 of 5) under `testLauncher` on `testHost`. */
export function insertRunning(pool: Queryable, fields: RequestFields = {}): Promise<string> {
  return insertRequest(pool, {
    pid: deadPid,
    host: testHost,
    launcher_id: testLauncher,
    process_identity: 'boot:1',
    tries: 1,
    try_limit: 5,
    started_at: new Date(Date.now() - 5_000),
    lease_expires_at: new Date(Date.now() + 60_000),
    ...fields,
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
    attempt: {
      pid: 4242,
      threadId: null,
      mode: 'fresh',
      startedAtMs: null,
      exitCode: null,
      signal: null,
      peakMemoryBytes: null,
      ...attempt,
    },
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
