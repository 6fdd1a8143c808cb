import type { ClaimedRow } from '../store/request-store.js';

/**
 * Whether this launcher's lease on a claimed row is known to hold. A claim sets the lease, and
 * each renewal that succeeded extends it for every row the launcher still holds. A row whose last
 * confirmation (its claim or a renewal) is `leaseMs` old or more may have been recovered by
 * another launcher: it must not start until a renewal says it is still ours. Times are
 * `performance.now()` milliseconds.
 */
export class LeaseClock {
  readonly #leaseMs: number;
  /** When the last renewal that succeeded was sent. */
  #renewedAt = performance.now();

  constructor(leaseMs: number) {
    this.#leaseMs = leaseMs;
  }

  /** A renewal sent at `sentAt` succeeded. */
  renewed(sentAt: number): void {
    this.#renewedAt = Math.max(this.#renewedAt, sentAt);
  }

  /**
   * True when `row` was claimed before `at` (so a renewal sent then should have found it). The
   * claim's time is the row's own `receivedAtMs`, not an entry kept here: a WeakMap entry per row
   * cost a launcher at 10,000 tries a second more than the rest of this clock.
   */
  claimedBefore(row: ClaimedRow, at: number): boolean {
    return row.receivedAtMs < at;
  }

  /** True while `row`'s lease is known to hold. */
  holds(row: ClaimedRow, now: number): boolean {
    return now - Math.max(this.#renewedAt, row.receivedAtMs) < this.#leaseMs;
  }
}
