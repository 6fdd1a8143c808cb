import type { RunnerConfig } from '../config/runner-config.js';
import { describeError, UnknownTaskError } from '../errors.js';
import type { AttemptReport } from '../pool/attempt.js';
import type { ForkPool } from '../pool/fork-pool.js';
import type { AttemptOutcome, AttemptPid, RequestStore } from '../store/request-store.js';
import { RequestResult, type ClaimedRequest } from '../store/schema.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { TaskRegistry } from '../tasks/registry.js';
import { BatchWriter } from './batch-writer.js';
import type { RunnerEvents } from './events.js';

/** A claimed request this launcher is working on. */
export interface RunningRequest {
  id: string;
  taskClassName: string;
  tries: number;
  /** The child's pid once it runs; null before. */
  pid: number | null;
  startedAt: Date;
}

export interface DispatcherParams {
  pool: ForkPool;
  registry: TaskRegistry;
  store: RequestStore;
  config: RunnerConfig;
  launcherId: string;
  events: TypedEmitter<RunnerEvents>;
  /** A request's outcome is written: its slot is free. */
  onSettled(): void;
}

const key = (item: { id: string }): string => item.id;

/**
 * Carries each claimed request through one try: resolve its task file, run it in the pool,
 * record the child's pid, write the outcome. Pid writes and outcomes go through group-commit
 * writers, so many tries finishing together cost few statements. A request counts against the
 * concurrency cap from claim until its outcome is written.
 */
export class Dispatcher {
  readonly #p: DispatcherParams;
  readonly #running = new Map<string, RunningRequest>();
  readonly #settled = new Set<Promise<void>>();
  readonly #pidWriter: BatchWriter<AttemptPid>;
  readonly #outcomeWriter: BatchWriter<AttemptOutcome>;
  #interrupting = false;

  constructor(params: DispatcherParams) {
    this.#p = params;
    const { store, launcherId, config } = params;
    const onError = (during: string) => (error: Error, attempt: number) => {
      config.logger.error(`${during} failed`, { attempt, error: error.message });
      params.events.emit('error', { error, during });
    };
    this.#pidWriter = new BatchWriter<AttemptPid>({
      flush: (attempts) => store.requestsSetPid({ launcherId, attempts }),
      key,
      onError: onError('recording pids'),
    });
    this.#outcomeWriter = new BatchWriter<AttemptOutcome>({
      flush: (outcomes) => store.requestsComplete({ launcherId, outcomes }),
      key,
      onError: onError('recording outcomes'),
    });
  }

  get inFlight(): number {
    return this.#running.size;
  }

  running(): RunningRequest[] {
    return [...this.#running.values()].map((entry) => ({ ...entry }));
  }

  dispatch(row: ClaimedRequest): void {
    this.#running.set(row.id, { id: row.id, taskClassName: row.taskClassName, tries: row.tries, pid: null, startedAt: row.startedAt });
    const done = this.#runOne(row)
      .catch((error: unknown) => {
        this.#p.config.logger.error('dispatch failed', { id: row.id, error: describeError(error) });
      })
      .finally(() => {
        this.#running.delete(row.id);
        this.#settled.delete(done);
        this.#p.onSettled();
      });
    this.#settled.add(done);
  }

  /** Resolves true once every claimed request's outcome is written, false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const all = (async () => {
      while (this.#settled.size > 0) await Promise.all([...this.#settled]);
      return true as const;
    })();
    const result = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return result;
  }

  /** Terminates running children; their rows are released as INTERRUPTED with the try given back. */
  async interrupt(): Promise<void> {
    this.#interrupting = true;
    await this.#p.pool.close();
    await this.drain(60_000);
  }

  async close(): Promise<void> {
    await this.#pidWriter.close();
    await this.#outcomeWriter.close();
  }

  async #runOne(row: ClaimedRequest): Promise<void> {
    const { config, events, pool, registry } = this.#p;
    let file: string;
    try {
      file = await registry.resolve(row.taskClassName);
    } catch (error) {
      const text = error instanceof UnknownTaskError ? error.message : describeError(error);
      await this.#complete(row, { id: row.id, tries: row.tries, result: RequestResult.FAILED, resultText: text, final: false, refund: false });
      return;
    }
    let pidWritten: Promise<boolean> = Promise.resolve(true);
    const report = await pool.run(
      {
        request: {
          id: row.id, taskClassName: row.taskClassName, tries: row.tries, tryLimit: row.tryLimit,
          queue: row.queue, priority: row.priority, createdAt: row.createdAt.toISOString(),
        },
        file,
        options: row.options,
        maxOptionsBytes: config.maxOptionsBytes,
        maxResultBytes: config.maxResultBytes,
      },
      {
        onStart: (start) => {
          const entry = this.#running.get(row.id);
          if (entry !== undefined) entry.pid = start.pid;
          pidWritten = this.#pidWriter.write({ id: row.id, tries: row.tries, ...start });
          void pidWritten.then((ok) => {
            if (ok) events.emit('task:started', { id: row.id, taskClassName: row.taskClassName, tries: row.tries, pid: start.pid, threadId: start.threadId });
          });
        },
        onOutput: (stream, line) => {
          config.logger.info(`[task ${row.id} ${stream}] ${line}`);
          events.emit('task:output', { id: row.id, stream, line });
        },
      },
    );
    // The pid must be in the row before the outcome clears it.
    await pidWritten;
    await this.#complete(row, this.#outcomeOf(row, report));
  }

  #outcomeOf(row: ClaimedRequest, report: AttemptReport): AttemptOutcome {
    const base = { id: row.id, tries: row.tries };
    switch (report.outcome) {
      case 'finished':
        return { ...base, result: RequestResult.FINISHED, resultText: report.resultText, final: true, refund: false };
      case 'failed':
        // Invalid options cannot get better by retrying: the request ends at once, its text kept.
        return { ...base, result: RequestResult.FAILED, resultText: report.text, final: report.kind === 'options', refund: false };
      case 'crashed':
        if (this.#interrupting) {
          return { ...base, result: RequestResult.INTERRUPTED, resultText: `interrupted by launcher shutdown: ${report.text}`, final: false, refund: true };
        }
        return { ...base, result: RequestResult.CRASHED, resultText: report.text, final: false, refund: false };
    }
  }

  async #complete(row: ClaimedRequest, outcome: AttemptOutcome): Promise<void> {
    const { config, events } = this.#p;
    if (outcome.result !== RequestResult.FINISHED) {
      const log = outcome.result === RequestResult.INTERRUPTED ? config.logger.warn : config.logger.error;
      log(`task ${row.taskClassName} ${outcome.result}`, { id: row.id, try: row.tries, text: outcome.resultText ?? '' });
    }
    const written = await this.#outcomeWriter.write(outcome);
    if (!written) {
      config.logger.warn('outcome not recorded: the row is no longer this launcher\'s (recovered elsewhere?)', { id: row.id });
      return;
    }
    const final = outcome.final || (!outcome.refund && row.tries >= row.tryLimit);
    events.emit('task:completed', {
      id: row.id, taskClassName: row.taskClassName, tries: row.tries,
      result: outcome.result, resultText: outcome.resultText, final,
    });
  }
}
