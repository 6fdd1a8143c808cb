import type { TableName } from '../config/identifiers.js';
import type { RetentionConfig } from '../config/retention-config.js';
import type { Logger } from '../shared/logger.js';
import { Periodic } from '../shared/periodic.js';
import type { Service } from '../shared/service.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { SqlDb } from '../store/database.js';
import { requestsPrune, type PruneResult } from '../store/prune-requests.js';
import type { RunnerEvents } from './events.js';

export interface RetentionServiceParams {
  db: SqlDb;
  table: TableName;
  retention: RetentionConfig;
  events: TypedEmitter<RunnerEvents>;
  logger: Logger;
  /** Something failed; the service goes on. */
  report(error: Error, during: string): void;
  /** True once the runner is stopping: a run in progress ends after its current batch. */
  shouldStop?: () => boolean;
}

/**
 * Retention: every `retention.intervalMs`, deletes ended requests older than their rule allows,
 * with their history (`requestsPrune`, which says why this is safe with any number of launchers
 * and how an adopted table is kept). `runOnce()` is one run, for tests and `runner.prune()`.
 */
export class RetentionService implements Service {
  readonly #p: RetentionServiceParams;
  readonly #periodic: Periodic;
  #stopped = false;

  constructor(params: RetentionServiceParams) {
    this.#p = params;
    this.#periodic = new Periodic({
      intervalMs: params.retention.intervalMs,
      run: () => this.runOnce(),
      onError: (error) => params.report(error, 'pruning ended requests'),
    });
  }

  start(): Promise<void> {
    return this.#periodic.start();
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.#periodic.stop();
  }

  /** Prunes once (`dryRun` counts instead, and says nothing); returns what went. */
  async runOnce(params: { dryRun?: boolean } = {}): Promise<PruneResult> {
    const { db, table, retention, events, logger, shouldStop } = this.#p;
    const result = await requestsPrune(db, table, retention, {
      ...params,
      shouldStop: () => this.#stopped || (shouldStop?.() ?? false),
    });
    if (params.dryRun !== true) {
      const removed = Object.values(result.requests).reduce((sum, n) => sum + n, 0);
      if (removed > 0) {
        logger.info('pruned ended requests', { ...result.requests, attempts: result.attempts, more: result.more });
      }
      events.emit('retention:pruned', result);
    }
    return result;
  }
}
