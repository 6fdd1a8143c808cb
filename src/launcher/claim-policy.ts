/**
 * Decides how many rows to claim and when, for the launch loop, which asks before every
 * statement. The rules:
 *
 * - Claim only what can start soon. A launcher holds at most `prefetch` rows it has not started,
 *   and no more than it expects to start within `prefetchHorizonMs`, judged from how long its
 *   recent tries held their slots (an average over the last few dozen). Until a try has ended
 *   nothing is known and nothing is held beyond the free slots. So a launcher running no-op tasks
 *   keeps a queue of `prefetch` and never waits for a round trip between tries, while one running
 *   ten-second tasks holds nothing it cannot start, and leaves the rest to other launchers.
 * - Refill at three quarters. The queue is topped up once a quarter of its target is gone (or a
 *   slot would otherwise go idle), so each claim fetches a batch, not a row. Not later: a claim
 *   rides on the launcher's next statement, which may queue behind one carrying a hundred
 *   outcomes, so rows arrive up to two statements after they are asked for. Refilled at half,
 *   a launcher running threads at c=8 (10,000 tries/s, statements of 6-10 ms) emptied its queue
 *   before the rows came: slots stood idle in 14% of samples, and throughput was 8,700/s against
 *   9,700/s refilled at three quarters (4 runs each, alternated).
 * - Stop asking when there is nothing. A claim that came back short means nothing more is
 *   runnable now: no claim is made until something wakes the policy (a notification, the poll
 *   timer, the timer set for the nearest `delay_until`, a reconnect). Then it goes idle.
 */
export interface ClaimPolicyParams {
  concurrency: number;
  prefetch: number;
  prefetchHorizonMs: number;
  pollIntervalMs: number;
  /** Milliseconds until the nearest delayed row becomes runnable, or null. */
  nextDelayMs(): Promise<number | null>;
  /** Something may be claimable: the launch loop should ask again. */
  onWake(): void;
  /** Nothing runnable: the launcher waits for a wake-up. */
  onIdle(): void;
  onError(error: Error): void;
}

/** The launcher's state when it asks. */
export interface ClaimState {
  running: number;
  queued: number;
  /** True while outcomes wait to be written beyond their cap: start nothing new. */
  blocked: boolean;
}

/** Weight of the latest try in the running average of try durations. */
const durationWeight = 0.05;

export class ClaimPolicy {
  readonly #p: ClaimPolicyParams;
  #stopped = true;
  #exhausted = false;
  #averageMs: number | null = null;
  #timer: NodeJS.Timeout | null = null;
  #idleCheck: Promise<void> | null = null;

  constructor(params: ClaimPolicyParams) {
    this.#p = params;
  }

  start(): void {
    this.#stopped = false;
    this.wake();
  }

  /** Stops claiming; waits for an idle check in progress. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    await this.#idleCheck;
  }

  /** A row may have become runnable (a notification, a timer, a reconnect). */
  wake(): void {
    if (this.#stopped) return;
    this.#exhausted = false;
    this.#clearTimer();
    this.#p.onWake();
  }

  /** How long the slot of a try that just ended was held. */
  tryEnded(durationMs: number): void {
    this.#averageMs =
      this.#averageMs === null ? durationMs : this.#averageMs + durationWeight * (durationMs - this.#averageMs);
  }

  /** Rows to hold beyond the running ones, by the rules above. */
  get heldTarget(): number {
    if (this.#averageMs === null) return 0;
    const startable = Math.floor((this.#p.prefetchHorizonMs * this.#p.concurrency) / Math.max(this.#averageMs, 0.01));
    return Math.min(this.#p.prefetch, startable);
  }

  /** The claim to make now: how many rows, and how many of them start at once; null for none. */
  order(state: ClaimState): { limit: number; startNow: number } | null {
    if (this.#stopped || this.#exhausted || state.blocked) return null;
    const free = Math.max(0, this.#p.concurrency - state.running - state.queued);
    const target = this.heldTarget;
    const held = Math.max(0, state.queued - Math.max(0, this.#p.concurrency - state.running));
    if (free === 0 && held > (target * 3) / 4) return null;
    const limit = free + target - held;
    return limit > 0 ? { limit, startNow: free } : null;
  }

  /** What a claim brought back; a short claim means nothing more is runnable now. */
  claimed(asked: number, got: number): void {
    if (got >= asked || this.#stopped) return;
    this.#exhausted = true;
    this.#idleCheck ??= this.#settleIdle().finally(() => {
      this.#idleCheck = null;
    });
  }

  /** A claim failed (the launch loop retries it): wake again once it has. */
  failed(): void {
    this.#exhausted = false;
  }

  async #settleIdle(): Promise<void> {
    let delayMs: number | null = null;
    try {
      delayMs = await this.#p.nextDelayMs();
    } catch (error) {
      this.#p.onError(error as Error);
    }
    if (this.#stopped || !this.#exhausted) return;
    this.#arm(delayMs === null ? this.#p.pollIntervalMs : Math.min(delayMs + 1, this.#p.pollIntervalMs));
    this.#p.onIdle();
  }

  #arm(delayMs: number): void {
    this.#clearTimer();
    // Deliberately not unref'd: a started runner keeps its process alive, like a server.
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.wake();
    }, delayMs);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }
}
