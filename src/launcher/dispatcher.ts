import type { RunnerConfig, TaskMode } from '../config/runner-config.js';
import { describeError, UnknownTaskError } from '../errors.js';
import type { AttemptMode, AttemptStart, TaskPool } from '../pool/attempt.js';
import type { AttemptOutcome, AttemptPid, RequestStore } from '../store/request-store.js';
import { RequestResult, type ClaimedRequest } from '../store/schema.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { TaskRegistry } from '../tasks/registry.js';
import type { TaskTraits } from '../tasks/task-traits.js';
import { outcomeOf } from './attempt-outcome.js';
import { BatchWriter } from './batch-writer.js';
import type { RunnerEvents } from './events.js';
import { trySettings } from './task-settings.js';
import { settleAll } from '../shared/settle-all.js';

/** A claimed request this launcher is working on. */
export interface RunningRequest {
  id: string;
  taskClassName: string;
  tries: number;
  /** The child's pid once it runs (the launcher's own in thread mode); null before. */
  pid: number | null;
  threadId: number | null;
  mode: AttemptMode | null;
  startedAt: Date;
}

/** What the dispatcher needs to know of task classes (see `TaskTraitsReader`). */
export interface TraitsSource {
  read(file: string, taskClassName: string): Promise<TaskTraits>;
}

export interface DispatcherParams {
  /** Child processes: the default. */
  processPool: TaskPool;
  /** Worker threads, created on first use. */
  threadPool(): TaskPool;
  traits: TraitsSource;
  registry: TaskRegistry;
  store: RequestStore;
  config: RunnerConfig;
  launcherId: string;
  events: TypedEmitter<RunnerEvents>;
  /** A request's outcome is written: its slot is free. */
  onSettled(): void;
}

interface Entry extends RunningRequest {
  controller: AbortController;
  timer: NodeJS.Timeout | null;
}

const key = (item: { id: string }): string => item.id;

/**
 * Carries each claimed request through one try: resolve its task file and settings, run it in
 * the process or thread pool under a hard timeout, record where it runs, write the outcome. Pid
 * writes and outcomes go through group-commit writers, so many tries finishing together cost few
 * statements. A request counts against the concurrency cap from claim until its outcome is
 * written. Each try has an AbortController: its timeout, a cancel and shutdown all stop it
 * through that one path.
 */
export class Dispatcher {
  readonly #p: DispatcherParams;
  readonly #running = new Map<string, Entry>();
  readonly #settled = new Set<Promise<void>>();
  readonly #pidWriter: BatchWriter<AttemptPid>;
  readonly #outcomeWriter: BatchWriter<AttemptOutcome>;
  #threadPool: TaskPool | null = null;

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

  /** Tries queued or running in the pools. */
  get poolBusy(): number {
    return this.#p.processPool.busy + (this.#threadPool?.busy ?? 0);
  }

  running(): RunningRequest[] {
    return [...this.#running.values()].map(({ controller: _c, timer: _t, ...entry }) => ({ ...entry }));
  }

  dispatch(row: ClaimedRequest): void {
    this.#running.set(row.id, {
      id: row.id, taskClassName: row.taskClassName, tries: row.tries, pid: null, threadId: null, mode: null,
      startedAt: row.startedAt, controller: new AbortController(), timer: null,
    });
    const done = this.#runOne(row)
      .catch((error: unknown) => {
        this.#p.config.logger.error('dispatch failed', { id: row.id, error: describeError(error) });
      })
      .finally(() => {
        const entry = this.#running.get(row.id);
        if (entry?.timer != null) clearTimeout(entry.timer);
        this.#running.delete(row.id);
        this.#settled.delete(done);
        this.#p.onSettled();
      });
    this.#settled.add(done);
  }

  /** Stops the try of request `id` if it runs here; it is recorded CANCELLED. True if it did. */
  cancel(id: string): boolean {
    const entry = this.#running.get(id);
    if (entry === undefined || entry.controller.signal.aborted) return false;
    this.#p.config.logger.warn('cancelling a running task', { id, pid: entry.pid ?? '' });
    entry.controller.abort('cancel');
    return true;
  }

  /** Resolves true once every claimed request's outcome is written, false after `timeoutMs`. */
  drain(timeoutMs: number): Promise<boolean> {
    return settleAll(this.#settled, timeoutMs);
  }

  /** Stops every running try; their rows are released as INTERRUPTED with the try given back. */
  async interrupt(): Promise<void> {
    for (const entry of this.#running.values()) entry.controller.abort('shutdown');
    await this.drain(60_000);
  }

  /** Ends the pools (after `drain` or `interrupt`) and flushes the writers. */
  async close(): Promise<void> {
    await Promise.all([this.#p.processPool.close(), this.#threadPool?.close()]);
    await this.#pidWriter.close();
    await this.#outcomeWriter.close();
  }

  #pool(mode: TaskMode): TaskPool {
    if (mode === 'process') return this.#p.processPool;
    this.#threadPool ??= this.#p.threadPool();
    return this.#threadPool;
  }

  async #runOne(row: ClaimedRequest): Promise<void> {
    const { config, events, registry } = this.#p;
    const entry = this.#running.get(row.id)!;
    let file: string;
    try {
      file = await registry.resolve(row.taskClassName);
    } catch (error) {
      const text = error instanceof UnknownTaskError ? error.message : describeError(error);
      await this.#complete(row, outcomeOf(row, { outcome: 'failed', kind: 'load', text, pid: null, threadId: null, peakMemoryBytes: null }, null, null));
      return;
    }
    const settings = trySettings(config, row.taskClassName, await this.#p.traits.read(file, row.taskClassName), row.timeoutMs);
    let start: AttemptStart | null = null;
    let pidWritten: Promise<boolean> = Promise.resolve(true);
    const signal = entry.controller.signal;
    const report = await this.#pool(settings.mode).run(
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
        onStart: (s) => {
          start = s;
          Object.assign(entry, { pid: s.pid, threadId: s.threadId, mode: s.mode });
          if (settings.timeoutMs !== null) {
            entry.timer = setTimeout(() => {
              config.logger.warn('hard timeout reached: stopping the task', { id: row.id, timeoutMs: settings.timeoutMs ?? '' });
              entry.controller.abort('timeout');
            }, settings.timeoutMs);
          }
          pidWritten = this.#pidWriter.write({ id: row.id, tries: row.tries, pid: s.pid, processIdentity: s.processIdentity, threadId: s.threadId });
          void pidWritten.then((ok) => {
            if (ok) events.emit('task:started', { id: row.id, taskClassName: row.taskClassName, tries: row.tries, pid: s.pid, threadId: s.threadId, mode: s.mode });
          });
        },
        onOutput: (stream, line) => {
          config.logger.info(`[task ${row.id} ${stream}] ${line}`);
          events.emit('task:output', { id: row.id, stream, line });
        },
      },
      signal,
    );
    if (entry.timer !== null) clearTimeout(entry.timer);
    // The pid must be in the row before the outcome clears it.
    await pidWritten;
    await this.#complete(row, outcomeOf(row, report, start, settings.timeoutMs));
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
    const parked = outcome.crash && row.crashes + 1 >= config.crashLimit;
    const final = outcome.final || parked || (!outcome.refund && row.tries >= row.tryLimit);
    events.emit('task:completed', {
      id: row.id, taskClassName: row.taskClassName, tries: row.tries,
      result: outcome.result, resultText: outcome.resultText, final, parked,
    });
  }
}
