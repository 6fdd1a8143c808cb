import { TaskRunnerError } from '../errors.js';

/**
 * The start/stop contract every long-lived part shares: `start()` twice is one start,
 * `stop()` before `start()` or twice is a no-op, and `stop()` waits for a start in progress.
 */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Wraps start and stop bodies so they obey the {@link Service} contract. */
export class ServiceState {
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

  get started(): boolean {
    return this.#starting !== null && this.#stopping === null;
  }

  get stopping(): boolean {
    return this.#stopping !== null;
  }

  start(body: () => Promise<void>): Promise<void> {
    if (this.#stopping !== null) {
      return Promise.reject(new TaskRunnerError('STOPPED', 'this runner was stopped; create a new one to start again'));
    }
    this.#starting ??= body();
    return this.#starting;
  }

  /** `idle` runs instead of `body` when the service was never started (release what exists). */
  stop(body: () => Promise<void>, idle: () => Promise<void> = async () => undefined): Promise<void> {
    if (this.#starting === null) {
      this.#stopping ??= idle();
      return this.#stopping;
    }
    const starting = this.#starting;
    this.#stopping ??= starting.catch(() => undefined).then(body);
    return this.#stopping;
  }
}
