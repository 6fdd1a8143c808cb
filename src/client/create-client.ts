import type pg from 'pg';
import type { Kysely } from 'kysely';
import { parseTableName } from '../config/identifiers.js';
import { defaults, type DatabaseInput } from '../config/runner-config.js';
import { openDatabase, type Executor } from '../store/database.js';
import { attemptsOfRequest, type RequestAttempt } from '../store/attempt-history.js';
import { cancelRequest, type CancelResult } from '../store/cancel-request.js';
import { requestFind } from '../store/inspection.js';
import { requestRetry } from '../store/request-actions.js';
import { requestsCountByState, type StatusCounts } from '../store/state-counts.js';
import type { TaskRequestRow } from '../store/schema.js';
import { TaskRegistry } from '../tasks/registry.js';
import type { RequestEnqueuer } from '../tasks/task.js';
import { RequestWriter, type ScheduleCallParams, type ScheduleItem } from './request-writer.js';

export interface RunnerClientOptions {
  db: DatabaseInput;
  tableName?: string;
  /** When given, names are checked against it at schedule time. */
  tasksDir?: string;
  maxOptionsBytes?: number;
}

/** Schedules and inspects requests without running any: for web processes and scripts. */
export interface RunnerClient extends RequestEnqueuer {
  readonly db: Kysely<any>;
  schedule(taskClassName: string, options?: unknown, params?: ScheduleCallParams): Promise<string>;
  scheduleMany(items: readonly ScheduleItem[], params?: { db?: Executor }): Promise<string[]>;
  retry(id: string | number | bigint): Promise<void>;
  find(id: string | number | bigint): Promise<TaskRequestRow | null>;
  counts(): Promise<StatusCounts>;
  /**
   * Cancels a request: a waiting one never runs; a running one is killed by its launcher and
   * ends CANCELLED; an ended one is left alone. Rejects with REQUEST_NOT_FOUND for a missing id.
   */
  cancel(id: string | number | bigint): Promise<CancelResult>;
  /** The recorded tries of a request, oldest first. */
  attempts(id: string | number | bigint): Promise<RequestAttempt[]>;
  /** Closes the pool the scheduler opened for a connection string; a given pool is left open. */
  close(): Promise<void>;
}

/**
 * @example
 * const scheduler = createClient({ db: pool });
 * await scheduler.schedule('SendReport', { accountId: 7 });
 */
export function createClient(options: RunnerClientOptions): RunnerClient {
  const table = parseTableName(options.tableName ?? defaults.tableName);
  const database = openDatabase(options.db as string | pg.Pool | Kysely<any>, 4);
  const scheduler = new RequestWriter({
    db: database.db,
    table,
    registry: options.tasksDir === undefined ? null : new TaskRegistry(options.tasksDir),
    maxOptionsBytes: options.maxOptionsBytes ?? defaults.maxOptionsBytes,
  });
  return {
    db: database.db,
    schedule: (name, opts, params) => scheduler.schedule(name, opts, params),
    scheduleMany: (items, params) => scheduler.scheduleMany(items, params),
    retry: (id) => requestRetry(database.db, table, String(id)),
    find: (id) => requestFind(database.db, table, String(id)),
    counts: () => requestsCountByState(database.db, table),
    cancel: (id) => cancelRequest(database.db, table, String(id)),
    attempts: (id) => attemptsOfRequest(database.db, table, String(id)),
    close: () => database.close(),
  };
}
