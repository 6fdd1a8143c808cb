import type { TableName } from '../config/identifiers.js';
import { defaults } from '../config/runner-config.js';
import {
  activityOpen,
  activityPerMinute,
  activityRunning,
  endedByResult,
  launchersAlive,
  launcherTableExporter,
  type LauncherAlive,
  type MinuteActivity,
  type OpenActivity,
  type RunningTry,
} from './activity.js';
import { cancelRequest, type CancelResult } from './cancel-request.js';
import {
  requestShow,
  requestsList,
  type ListRequestsParams,
  type RequestDetail,
  type RequestFilter,
  type RequestPage,
} from './inspection.js';
import { requestDelete, requestRetry, requestsRetryMatching } from './request-actions.js';
import { requestsCountByState, type StatusCounts } from './state-counts.js';
import type { SqlDb } from './database.js';

/**
 * Everything an operator asks of a request table and does to it, in one object: what the CLI's
 * `show`, `list` and `status`, the dashboard and the metrics scrape use, over the free functions
 * of inspection.ts, state-counts.ts and activity.ts. Read statements only, except the actions
 * (retry, cancel, delete, bulk retry: request-actions.ts and cancel-request.ts), each of which
 * leaves a claimed row to its launcher.
 */
export class Inspector {
  readonly #db: SqlDb;
  readonly #table: TableName;

  constructor(params: { db: SqlDb; table: TableName }) {
    this.#db = params.db;
    this.#table = params.table;
  }

  get table(): TableName {
    return this.#table;
  }

  list(params: ListRequestsParams = {}): Promise<RequestPage> {
    return requestsList(this.#db, this.#table, params);
  }

  show(id: string): Promise<RequestDetail | null> {
    return requestShow(this.#db, this.#table, id);
  }

  counts(): Promise<StatusCounts> {
    return requestsCountByState(this.#db, this.#table);
  }

  open(): Promise<OpenActivity> {
    return activityOpen(this.#db, this.#table);
  }

  perMinute(minutes = 60): Promise<MinuteActivity[]> {
    return activityPerMinute(this.#db, this.#table, minutes);
  }

  running(limit = 200): Promise<RunningTry[]> {
    return activityRunning(this.#db, this.#table, limit);
  }

  /** Launchers that heart-beat within `staleMs` (default: the default lease). */
  launchers(staleMs: number = defaults.leaseMs): Promise<LauncherAlive[]> {
    return launchersAlive(this.#db, this.#table, staleMs);
  }

  /** The launcher that exports the table's figures to Prometheus (see `launcherTableExporter`). */
  tableExporter(staleMs: number = defaults.leaseMs): Promise<string | null> {
    return launcherTableExporter(this.#db, this.#table, staleMs);
  }

  endedByResult(): Promise<Record<string, number>> {
    return endedByResult(this.#db, this.#table);
  }

  retry(id: string): Promise<void> {
    return requestRetry(this.#db, this.#table, id);
  }

  cancel(id: string): Promise<CancelResult> {
    return cancelRequest(this.#db, this.#table, id);
  }

  delete(id: string): Promise<void> {
    return requestDelete(this.#db, this.#table, id);
  }

  retryMatching(filter: RequestFilter, limit?: number): Promise<string[]> {
    return requestsRetryMatching(this.#db, this.#table, filter, limit);
  }
}
