import type { Service } from './service.js';

export interface PeriodicParams {
  intervalMs: number;
  /** One run; the next starts no earlier than `intervalMs` after this one began. */
  run(): Promise<unknown>;
  /** A run failed; the next goes on at its time. */
  onError(error: Error): void;
}

/**
 * A body run every `intervalMs` on an unref'd timer, never two at once: a tick that comes while
 * the last run is still going is skipped. Obeys the {@link Service} contract: `start()` twice is
 * one start, `stop()` before `start()` or twice is a no-op, and nothing runs after `stop()`
 * (a run already going finishes on its own and reports as usual).
 */
export class Periodic implements Service {
  readonly #p: PeriodicParams;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #stopped = false;

  constructor(params: PeriodicParams) {
    this.#p = params;
  }

  async start(): Promise<void> {
    if (this.#timer !== null || this.#stopped) return;
    this.#timer = setInterval(() => this.#tick(), this.#p.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    if (this.#busy) return;
    this.#busy = true;
    this.#p
      .run()
      .catch((error: Error) => this.#p.onError(error))
      .finally(() => {
        this.#busy = false;
      });
  }
}
