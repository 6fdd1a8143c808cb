import type { StartRetryConfig } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import { isConnectionError } from '../store/database.js';

export interface StartRetryParams<T> {
  /** Null: one try, its error as it is. */
  retry: StartRetryConfig | null;
  logger: Logger;
  /** What is being tried, for the log ("migrating the request table"). */
  what: string;
  /** One try; it rejects with the driver's error when the database cannot be used. */
  attempt: () => Promise<T>;
  /** Stops the waiting (a stop asked for meanwhile): the wait ends and the last error is thrown. */
  signal?: AbortSignal;
}

/**
 * Whether waiting may mend a failure at start: the server is down, starting or shutting down,
 * unreachable, or has no free connection (53300). A wrong password (28xxx), a database that does
 * not exist (3D000) or a refused statement will not change by waiting, and end the start at once.
 */
export function isWorthWaitingFor(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return isConnectionError(error) && code !== '3D000';
}

/**
 * Runs `attempt` until it succeeds, waiting between tries while the failure is one waiting can
 * mend (see `isWorthWaitingFor`): the waits double from `baseMs` up to `maxMs`, each failure is
 * logged once with the next wait, and after `giveUpAfterMs` (null: never) it gives up with
 * DATABASE_UNAVAILABLE naming the tries and the last error. A daemon started before its database
 * (boot order, both restarted, a failover) then comes up with it, as it rides out a database
 * that goes away later.
 */
export async function withStartRetry<T>(params: StartRetryParams<T>): Promise<T> {
  const { retry, logger, what, signal } = params;
  const begunAt = performance.now();
  for (let tries = 1; ; tries += 1) {
    try {
      const result = await params.attempt();
      if (tries > 1)
        logger.info('the database is reachable: starting', {
          tries,
          waitedMs: Math.round(performance.now() - begunAt),
        });
      return result;
    } catch (error) {
      if (retry === null || !isWorthWaitingFor(error)) throw error;
      const elapsedMs = performance.now() - begunAt;
      const delayMs = Math.min(retry.baseMs * 2 ** Math.min(tries - 1, 30), retry.maxMs);
      if (signal?.aborted === true) throw error;
      if (retry.giveUpAfterMs !== null && elapsedMs + delayMs > retry.giveUpAfterMs) {
        throw new TaskRunnerError(
          'DATABASE_UNAVAILABLE',
          `cannot use the database: gave up ${what} after ${tries} ${tries === 1 ? 'try' : 'tries'} in ${Math.round(elapsedMs)} ms ` +
            `(startRetry.giveUpAfterMs ${retry.giveUpAfterMs}): ${messageOf(error)}`,
          { cause: error },
        );
      }
      logger.warn(`the database cannot be used yet (${what}): retrying`, {
        try: tries,
        delayMs,
        error: messageOf(error),
      });
      if (!(await wait(delayMs, signal))) throw error;
    }
  }
}

/** Resolves true after `ms`, false at once when `signal` aborts first. */
function wait(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve(true);
    }, ms);
    const stop = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/** The error as one line: its message, or its parts' (an AggregateError of each address tried). */
function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.message === '') return error.errors.map(messageOf).join('; ');
  return error instanceof Error ? error.message : String(error);
}
