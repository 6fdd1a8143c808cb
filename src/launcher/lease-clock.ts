import type { ClaimedRow } from '../store/request-store.js';

/**
 * How far before its lease could expire for another launcher a try is fenced (ended by its own
 * child, or by the launcher in thread mode): a tenth of the lease, at least 100 ms, at most a
 * third of it. It covers a child's timer firing late on a loaded machine and the kill itself.
 */
export function fenceMarginMs(leaseMs: number): number {
  return Math.min(Math.max(Math.round(leaseMs / 10), 100), Math.floor(leaseMs / 3));
}

/**
 * Whether this launcher's lease on a claimed row is known to hold, and until when. A claim sets
 * the lease, and each renewal that succeeded extends it for every row the launcher still holds.
 * The database's clock decides when it expires (`lease_expires_at = now() + leaseMs`), and its
 * `now()` is never earlier than the moment the statement was sent: so `leaseMs` after the send
 * (of the claim, or of the last renewal that succeeded) the row may be another launcher's, and
 * the fence deadline is a margin before that (`fenceMarginMs`). A row must not start past its
 * deadline, and a try still running then is ended. Times are `performance.now()` milliseconds.
 */
export class LeaseClock {
  readonly #leaseMs: number;
  readonly #validMs: number;
  /** When the last renewal that succeeded was sent. */
  #renewedAt = Number.NEGATIVE_INFINITY;

  constructor(leaseMs: number) {
    this.#leaseMs = leaseMs;
    this.#validMs = leaseMs - fenceMarginMs(leaseMs);
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  /** When the last renewal that succeeded was sent (-Infinity before the first). */
  get renewedAt(): number {
    return this.#renewedAt;
  }

  /** A renewal sent at `sentAt` succeeded. */
  renewed(sentAt: number): void {
    this.#renewedAt = Math.max(this.#renewedAt, sentAt);
  }

  /**
   * True when `row` was claimed before `at` (so a renewal sent then should have found it). The
   * claim's time is the row's own `receivedAtMs` (the launch loop sets it to when the claiming
   * statement was sent), not an entry kept here: a WeakMap entry per row cost a launcher at
   * 10,000 tries a second more than the rest of this clock.
   */
  claimedBefore(row: ClaimedRow, at: number): boolean {
    return row.receivedAtMs < at;
  }

  /** The fence deadline of `row`: its try must have ended by then unless a renewal moves it. */
  fenceAt(row: ClaimedRow): number {
    return Math.max(this.#renewedAt, row.receivedAtMs) + this.#validMs;
  }

  /** True while `row`'s lease is known to hold (before its fence deadline). */
  holds(row: ClaimedRow, now: number): boolean {
    return now < this.fenceAt(row);
  }
}
