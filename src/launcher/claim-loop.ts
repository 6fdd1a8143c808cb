import type { ClaimedRequest } from '../store/schema.js';

export interface ClaimLoopParams {
  /** Claims up to `limit` rows (one statement). */
  claim(limit: number): Promise<ClaimedRequest[]>;
  /** Milliseconds until the nearest delayed row becomes runnable, or null. */
  nextDelayMs(): Promise<number | null>;
  freeSlots(): number;
  onClaimed(rows: ClaimedRequest[]): void;
  onIdle(): void;
  onError(error: Error): void;
  pollIntervalMs: number;
}

/**
 * Decides when to claim. A wake-up (notification, freed slot, poll, delay timer) asks for a pass;
 * passes never overlap, and a wake-up during a pass makes it go round once more, so none is lost
 * and a burst of notifications costs one claim. A pass claims as long as it fills every free slot;
 * when it claims less, nothing more is runnable now, so it sets a timer for the nearest
 * `delay_until` (capped by the poll interval) and goes idle.
 */
export class ClaimLoop {
  readonly #params: ClaimLoopParams;
  #running = false;
  #again = false;
  #stopped = true;
  #timer: NodeJS.Timeout | null = null;
  #pass: Promise<void> = Promise.resolve();
  #failures = 0;

  constructor(params: ClaimLoopParams) {
    this.#params = params;
  }

  start(): void {
    this.#stopped = false;
    this.wake();
  }

  /** Stops claiming and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#pass;
  }

  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = true;
    this.#pass = this.#run();
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(delayMs: number): void {
    this.#clearTimer();
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.wake();
    }, delayMs);
    // Deliberately not unref'd: a started runner keeps its process alive, like a server.
  }

  async #run(): Promise<void> {
    try {
      do {
        this.#again = false;
        await this.#passOnce();
      } while (this.#again && !this.#stopped);
    } finally {
      this.#running = false;
    }
  }

  async #passOnce(): Promise<void> {
    try {
      for (;;) {
        if (this.#stopped) return;
        const limit = this.#params.freeSlots();
        if (limit <= 0) {
          // Full: a freed slot wakes the loop; the poll timer is only a safety net.
          this.#arm(this.#params.pollIntervalMs);
          return;
        }
        const rows = await this.#params.claim(limit);
        this.#failures = 0;
        if (rows.length > 0) this.#params.onClaimed(rows);
        if (rows.length < limit) break;
      }
      if (this.#stopped) return;
      const delayMs = await this.#params.nextDelayMs();
      this.#arm(delayMs === null ? this.#params.pollIntervalMs : Math.min(delayMs + 1, this.#params.pollIntervalMs));
      this.#params.onIdle();
    } catch (error) {
      // Database down or similar: report, and try again after a backoff no longer than a poll.
      this.#failures += 1;
      this.#params.onError(error as Error);
      this.#arm(Math.min(100 * 2 ** Math.min(this.#failures, 8), this.#params.pollIntervalMs));
    }
  }
}
