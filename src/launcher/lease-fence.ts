import { monotonicMs } from '../pool/protocol.js';
import type { Logger } from '../shared/logger.js';
import type { ClaimedRow } from '../store/request-store.js';
import type { LeaseClock } from './lease-clock.js';

/** A running try as the fence sees it. */
export interface FencedTry {
  readonly row: ClaimedRow;
  fenced: boolean;
}

export interface LeaseFenceParams {
  clock: LeaseClock;
  logger: Logger;
  /** The tries running now. */
  running(): Iterable<FencedTry>;
  /** Ends these tries now: their deadline passed with no renewal confirming their lease. */
  fence(tries: readonly FencedTry[], unconfirmedMs: number): void;
}

/** `performance.now()` milliseconds as `monotonicMs()`, the clock a launcher's children share. */
export function toMonotonicMs(performanceMs: number): number {
  return performanceMs + (monotonicMs() - performance.now());
}

/**
 * The launcher's side of the lease fence. Every try has a deadline (`LeaseClock.fenceAt`): a
 * margin before its lease could expire for another launcher. A child ends itself then (it was
 * told the deadline, see pool/protocol.ts), since a launcher frozen or cut off cannot stop it;
 * this ends the try from the launcher as well (threads, which live in the launcher's process,
 * have only this), at the nearest deadline of a running try. It also says what is happening: a
 * warning once renewals are late (half a lease with none accepted) or fail, an error when tries
 * are fenced, and once a renewal is accepted again, how long the launcher went without one.
 *
 * The timer is set for the nearest deadline when a try starts and when it fires; renewals only
 * move deadlines later, so a timer that fires early finds nothing due and is set again.
 */
export class LeaseFence {
  readonly #p: LeaseFenceParams;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Number.POSITIVE_INFINITY;
  #lateTimer: NodeJS.Timeout | null = null;
  /** Since when renewals have been late or failing (the last accepted one's send), or null. */
  #troubleSince: number | null = null;
  #fencedCount = 0;
  #closed = false;

  constructor(params: LeaseFenceParams) {
    this.#p = params;
  }

  /** A try of `row` started (or is about to): the timer is set for its deadline if that is nearer. */
  started(row: ClaimedRow): void {
    const { clock } = this.#p;
    this.#armAt(clock.fenceAt(row));
    // A try started before the first renewal after its claim is watched from its claim.
    if (this.#lateTimer === null && this.#troubleSince === null)
      this.#armLate(Math.max(clock.renewedAt, row.receivedAtMs) + clock.leaseMs / 2);
  }

  /** A renewal sent at `sentAt` was accepted (the clock already knows). */
  renewed(): void {
    const { clock, logger } = this.#p;
    if (this.#troubleSince !== null) {
      const withoutMs = Math.round(performance.now() - this.#troubleSince);
      logger.warn('lease confirmed again: a renewal was accepted after the database could not be reached', {
        withoutMs,
        fencedTries: this.#fencedCount,
      });
    }
    this.#troubleSince = null;
    this.#fencedCount = 0;
    // A renewal that took long to be accepted leaves less than half a lease: the next tick gets its chance first.
    this.#armLate(Math.max(clock.renewedAt + clock.leaseMs / 2, performance.now() + clock.leaseMs / 3));
  }

  /** A renewal failed (it is tried again at the next tick). */
  failed(error: Error): void {
    const { clock, logger } = this.#p;
    const first = this.#troubleSince === null;
    this.#troubleSince ??= this.#lastConfirmed();
    if (!first) return;
    logger.warn('lease renewal failed: running tries are fenced at their deadline unless a renewal is accepted first', {
      error: error.message,
      deadlineInMs: Math.round(clock.renewedAt + clock.leaseMs - performance.now()),
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#lateTimer !== null) clearTimeout(this.#lateTimer);
  }

  #armLate(at: number): void {
    if (this.#closed) return;
    if (this.#lateTimer !== null) clearTimeout(this.#lateTimer);
    this.#lateTimer = setTimeout(() => this.#late(), Math.max(0, at - performance.now()));
    this.#lateTimer.unref();
  }

  #late(): void {
    this.#lateTimer = null;
    const { clock, logger } = this.#p;
    if (this.#troubleSince !== null || (clock.renewedAt === Number.NEGATIVE_INFINITY && !this.#anyRunning())) return;
    this.#troubleSince = this.#lastConfirmed();
    logger.warn(
      'lease renewal late: no renewal accepted for half a lease; running tries are fenced at their deadline unless one is',
      {
        sinceMs: Math.round(performance.now() - this.#troubleSince),
        leaseMs: clock.leaseMs,
      },
    );
  }

  /** The last confirmation of any lease this launcher holds: its last renewal, or a later claim. */
  #lastConfirmed(): number {
    let at = this.#p.clock.renewedAt;
    for (const tried of this.#p.running()) at = Math.max(at, tried.row.receivedAtMs);
    return Number.isFinite(at) ? at : performance.now();
  }

  #anyRunning(): boolean {
    for (const _ of this.#p.running()) return true;
    return false;
  }

  #armAt(at: number): void {
    if (this.#closed || at >= this.#timerAt) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#due(), Math.max(0, at - performance.now()));
    this.#timer.unref();
  }

  /**
   * Fences now the tries whose deadline has passed, before anything moves it: a renewal that
   * comes back after a launcher woke (frozen) must not revive a try whose deadline its child
   * already acted on. The timer does the same at each deadline.
   */
  fenceDue(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#due();
  }

  #due(): void {
    this.#timer = null;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const { clock } = this.#p;
    const now = performance.now();
    const due: FencedTry[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const tried of this.#p.running()) {
      if (tried.fenced) continue;
      const at = clock.fenceAt(tried.row);
      if (at <= now) due.push(tried);
      else next = Math.min(next, at);
    }
    if (due.length > 0) {
      const unconfirmedMs = Math.round(now - Math.max(clock.renewedAt, ...due.map((t) => t.row.receivedAtMs)));
      this.#fencedCount += due.length;
      this.#troubleSince ??= this.#lastConfirmed();
      this.#p.logger.error(
        'lease not confirmed in time: tries fenced (ended before their lease could expire for another launcher)',
        {
          ids: due.map((t) => t.row.id).join(','),
          unconfirmedMs,
          leaseMs: clock.leaseMs,
        },
      );
      this.#p.fence(due, unconfirmedMs);
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armAt(next);
  }
}
