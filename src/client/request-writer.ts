import type { TableName } from '../config/identifiers.js';
import { defaults } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';
import { requestsInsert } from '../store/insert-requests.js';
import { requestsInsertUnique, type MaybeUniqueRequest } from '../store/unique-requests.js';
import type { Executor, SqlDb } from '../store/database.js';
import { stringifyOptions } from '../tasks/options.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { currentTraceparent } from '../shared/tracing.js';
import { maxInt4 } from '../shared/values.js';
import type { ScheduleParams } from '../tasks/task.js';
import { uniqueOf } from './unique-params.js';

/** Scheduling choices plus, optionally, the caller's transaction to insert in. */
export interface ScheduleCallParams extends ScheduleParams {
  /** A Kysely transaction or instance, or a pg client inside `BEGIN`: the row commits with it. */
  db?: Executor;
}

/** One request of a bulk schedule. */
export interface ScheduleItem {
  taskClassName: string;
  options?: unknown;
  params?: ScheduleParams;
}

const namePattern = /^[A-Za-z_$][A-Za-z0-9_$]*(::[A-Za-z_$][A-Za-z0-9_$]*)*$/;

function invalid(message: string): TaskRunnerError {
  return new TaskRunnerError('CONFIG_INVALID', `invalid schedule parameters: ${message}`);
}

/** A `delayMs` goes to the database as it is, which adds it to its own now (not this process's clock). */
function delayOf(params: ScheduleParams): { delayUntil: Date | null; delayMs: number | null } {
  if (params.delayUntil !== undefined) {
    if (!(params.delayUntil instanceof Date) || Number.isNaN(params.delayUntil.getTime())) {
      throw invalid('delayUntil must be a valid Date');
    }
    return { delayUntil: params.delayUntil, delayMs: null };
  }
  if (params.delayMs !== undefined) {
    if (typeof params.delayMs !== 'number' || !Number.isFinite(params.delayMs) || params.delayMs < 0) {
      throw invalid('delayMs must be a non-negative number');
    }
    return { delayUntil: null, delayMs: params.delayMs === 0 ? null : params.delayMs };
  }
  return { delayUntil: null, delayMs: null };
}

function timeoutOf(params: ScheduleParams): number | null {
  const value = params.timeoutMs;
  if (value === undefined) return null;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > maxInt4) {
    throw invalid(
      `timeoutMs must be a whole number of milliseconds from 1 to 2147483647, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function int(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > maxInt4) {
    throw invalid(`${name} must be an integer of at least ${min}`);
  }
  return value;
}

/**
 * Turns schedule calls into rows: validates the name (against the tasks directory when one is
 * known), serialises options to YAML within the size cap, and inserts in one statement.
 */
export class RequestWriter {
  readonly #db: SqlDb;
  readonly #table: TableName;
  readonly #registry: TaskRegistry | null;
  readonly #maxOptionsBytes: number;

  constructor(params: { db: SqlDb; table: TableName; registry: TaskRegistry | null; maxOptionsBytes: number }) {
    this.#db = params.db;
    this.#table = params.table;
    this.#registry = params.registry;
    this.#maxOptionsBytes = params.maxOptionsBytes;
  }

  #row(item: ScheduleItem): MaybeUniqueRequest {
    const name = item.taskClassName;
    if (typeof name !== 'string' || !namePattern.test(name)) {
      throw new TaskRunnerError('TASK_UNKNOWN', `invalid task class name ${JSON.stringify(name)}`);
    }
    const params = item.params ?? {};
    const queue = params.queue ?? defaults.queue;
    if (typeof queue !== 'string' || queue.length === 0 || queue.length > 200) {
      throw invalid('queue must be a non-empty string of at most 200 characters');
    }
    return {
      taskClassName: name,
      options: stringifyOptions(item.options ?? {}, this.#maxOptionsBytes),
      tryLimit: int('tryLimit', params.tryLimit, defaults.tryLimit, 1),
      priority: int('priority', params.priority, 0, -2_147_483_648),
      ...delayOf(params),
      queue,
      timeoutMs: timeoutOf(params),
      ...uniqueOf(params),
    };
  }

  /**
   * Schedules one request; resolves with its id.
   *
   * @example
   * const id = await runner.schedule('SendReport', { accountId: 7 }, { delayMs: 60_000 });
   * await db.transaction().execute((trx) => runner.schedule('SendReport', { accountId: 7 }, { db: trx }));
   */
  async schedule(taskClassName: string, options?: unknown, params: ScheduleCallParams = {}): Promise<string> {
    const { db, ...rest } = params;
    const [id] = await this.scheduleMany([{ taskClassName, options, params: rest }], { db });
    return id!;
  }

  /** Schedules many requests in one statement; resolves with their ids in order. */
  async scheduleMany(items: readonly ScheduleItem[], params: { db?: Executor } = {}): Promise<string[]> {
    const rows = items.map((item) => this.#row(item));
    const traceparent = currentTraceparent();
    if (traceparent !== null) for (const row of rows) row.traceparent = traceparent;
    // Names are checked once each, against the tasks directory as last scanned (rescanned on a miss).
    if (this.#registry !== null) {
      for (const name of new Set(rows.map((row) => row.taskClassName))) {
        if (this.#registry.lookup(name) === undefined) await this.#registry.resolve(name);
      }
    }
    // Unique keys need a lock and a look first (unique-requests.ts); without one, one INSERT does.
    if (rows.some((row) => row.uniqueKey != null))
      return requestsInsertUnique(params.db ?? this.#db, this.#table, rows);
    return requestsInsert(params.db ?? this.#db, this.#table, rows);
  }
}
