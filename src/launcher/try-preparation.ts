import type { RunnerConfig, TaskMode } from '../config/runner-config.js';
import { describeError, UnknownTaskError } from '../errors.js';
import type { AttemptJob } from '../pool/attempt.js';
import type { AttemptOutcome } from '../store/attempt-outcome.js';
import type { ClaimedRow } from '../store/request-store.js';
import type { TaskRegistry } from '../tasks/registry.js';
import type { TaskTraits } from '../tasks/task-traits.js';
import { refusedOutcome } from './attempt-outcome.js';
import { trySettings, type TrySettings } from './task-settings.js';

/** What the dispatcher needs of task classes (see `TaskTraitsReader`). */
export interface TraitsSource {
  peek(file: string, taskClassName: string): TaskTraits | null;
  read(file: string, taskClassName: string): Promise<TaskTraits>;
}

/** A try ready to hand to a pool. */
export interface PreparedTry {
  job: AttemptJob;
  mode: TaskMode;
  /** Hard timeout in ms; null: none. */
  timeoutMs: number | null;
}

/** A try that cannot run, and the outcome it ends with. */
export interface RefusedTry {
  refused: AttemptOutcome;
}

function refusal(row: ClaimedRow, kind: 'options' | 'load', text: string): RefusedTry {
  return { refused: refusedOutcome(row, kind, text) };
}

/**
 * Turns a claimed row into the job a pool runs: its task file (from the registry), its class's
 * traits, and its settings (mode, timeout, confinement; see `trySettings`). A row whose options
 * are over the limit, or whose task cannot be found or loaded, is refused with the outcome its
 * try ends with. When the name and the class's traits are known (every try after a class's first,
 * until its file changes) this is synchronous: no promise per try.
 */
export class TryPreparer {
  readonly #config: RunnerConfig;
  readonly #registry: TaskRegistry;
  readonly #traits: TraitsSource;
  /** Settings warnings already logged: once per launcher, not once per try. */
  readonly #warned = new Set<string>();
  readonly #warn = (text: string): void => {
    if (this.#warned.has(text)) return;
    this.#warned.add(text);
    this.#config.logger.warn(text);
  };

  /**
   * Settings by class, for each version of its traits (a changed file brings new traits): they
   * depend on nothing else but a request's own timeout, so they are worked out once, not per try.
   */
  readonly #settings = new WeakMap<TaskTraits, Map<string, TrySettings>>();

  constructor(params: { config: RunnerConfig; registry: TaskRegistry; traits: TraitsSource }) {
    this.#config = params.config;
    this.#registry = params.registry;
    this.#traits = params.traits;
  }

  prepare(row: ClaimedRow): PreparedTry | RefusedTry | Promise<PreparedTry | RefusedTry> {
    const { maxOptionsBytes } = this.#config;
    // A table made by Rails allows a NULL name; no retry can give the row one, so it ends now
    // (refused as oversized options are: the row cannot run as it is).
    if (row.taskClassName === null) return refusal(row, 'options', 'task_class_name is NULL: no task to run');
    if (row.optionsBytes !== null && row.optionsBytes > maxOptionsBytes) {
      const text =
        `options are ${row.optionsBytes} bytes, over the limit of ${maxOptionsBytes} bytes ` +
        '(maxOptionsBytes); the request cannot run';
      return refusal(row, 'options', text);
    }
    const name = row.taskClassName;
    const file = this.#registry.lookup(name);
    const traits = file === undefined ? null : this.#traits.peek(file, name);
    if (file !== undefined && traits !== null) return this.#prepared(row, name, file, traits);
    // A name not seen yet, or a file not looked at for a while: the try waits for the I/O.
    return this.#resolve(name, file).then(
      ({ file: found, traits: read }) => this.#prepared(row, name, found, read),
      (error: unknown) =>
        refusal(row, 'load', error instanceof UnknownTaskError ? error.message : describeError(error)),
    );
  }

  async #resolve(name: string, known: string | undefined): Promise<{ file: string; traits: TaskTraits }> {
    const file = known ?? (await this.#registry.resolve(name));
    return { file, traits: await this.#traits.read(file, name) };
  }

  #prepared(row: ClaimedRow, taskClassName: string, file: string, traits: TaskTraits): PreparedTry {
    const config = this.#config;
    const byClass = this.#settingsOf(taskClassName, traits);
    const settings = row.timeoutMs === null ? byClass : { ...byClass, timeoutMs: row.timeoutMs };
    const job: AttemptJob = {
      request: {
        id: row.id,
        taskClassName,
        tries: row.tries,
        tryLimit: row.tryLimit,
        queue: row.queue,
        priority: row.priority,
        createdAt: new Date(row.createdAtMs).toISOString(),
      },
      file,
      options: row.options,
      maxOptionsBytes: config.maxOptionsBytes,
      maxResultBytes: config.maxResultBytes,
    };
    if (settings.confinement !== null) job.confinement = settings.confinement;
    return { job, mode: settings.mode, timeoutMs: settings.timeoutMs };
  }

  #settingsOf(taskClassName: string, traits: TaskTraits): TrySettings {
    let byName = this.#settings.get(traits);
    if (byName === undefined) this.#settings.set(traits, (byName = new Map()));
    let settings = byName.get(taskClassName);
    if (settings === undefined)
      byName.set(taskClassName, (settings = trySettings(this.#config, taskClassName, traits, null, this.#warn)));
    return settings;
  }
}
