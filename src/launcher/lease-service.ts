import { Periodic } from '../shared/periodic.js';
import type { Service } from '../shared/service.js';
import type { RequestStore } from '../store/request-store.js';
import type { Dispatcher } from './dispatcher.js';
import type { LaunchLoop } from './launch-loop.js';
import { announceRecovered, type RecoveryListeners } from './recovered-rows.js';

export interface LeaseServiceParams extends RecoveryListeners {
  store: RequestStore;
  launcherId: string;
  host: string;
  leaseMs: number;
  /** The renewal runs between launch statements, never beside one (see `LaunchLoop.exclusive`). */
  loop: Pick<LaunchLoop, 'exclusive'>;
  /** Told what each renewal found: the lease clock and fence, cancels, pids cleared by hand. */
  dispatcher: Pick<Dispatcher, 'leaseRenewed' | 'leaseRenewalFailed' | 'cancel' | 'rescheduled'>;
  /**
   * Writes this launcher's row of the launchers table (who is alive, for status and the
   * dashboard): once at `start()`, then after each renewal. Null: no heartbeat.
   */
  heartbeat: (() => Promise<void>) | null;
  /** Something failed; the service goes on. */
  report(error: Error, during: string): void;
}

/** What one run of the lease service found. */
export interface LeaseRunResult {
  /** False when the renewal failed (the fence says so; the tries' deadlines do the rest). */
  accepted: boolean;
  /** Rows of this launcher whose lease was extended. */
  renewed: string[];
  /** Rows this launcher ran or held that another launcher recovered: their tries stopped, held rows dropped. */
  lost: string[];
  /** Rows cancelled while running here, whose notification may have been missed: their tries told to stop. */
  cancelled: string[];
  /** Rows of this launcher whose pid was cleared by hand: their tries stopped (written RESCHEDULED once stopped). */
  rescheduled: string[];
  /** Of those, rows with no try here, released at once. */
  released: string[];
  /** Rows of other launchers recovered: their lease ran out, or their pid was cleared by hand. */
  recovered: string[];
}

/**
 * The lease: every third of a lease, the launcher renews the lease of every row it holds or runs,
 * which also tells it of rows lost while it was frozen or cut off (taken by another launcher),
 * of cancels whose notification it missed and of pids cleared by hand under its tries; then it
 * beats its heartbeat and recovers the rows of launchers on other hosts whose lease ran out
 * (within a third of a lease of it), and rows whose pid was cleared under a launcher that is
 * gone. Only a renewal the database accepted moves the tries' fence deadlines (lease-clock.ts).
 *
 * `runOnce()` is one such run; `renewSoon()` renews alone, at once, for a notice that a pid was
 * cleared under one of this launcher's tries (one renewal at a time, and one more for notices
 * that came during it).
 */
export class LeaseService implements Service {
  readonly #p: LeaseServiceParams;
  readonly #periodic: Periodic;
  /** False once the table turned out to have no launchers table (not migrated since it came). */
  #beating = true;
  #renewing = false;
  #renewAgain = false;

  constructor(params: LeaseServiceParams) {
    this.#p = params;
    this.#beating = params.heartbeat !== null;
    this.#periodic = new Periodic({
      intervalMs: leaseRenewalIntervalMs(params.leaseMs),
      run: () => this.runOnce(),
      onError: (error) => params.report(error, 'renewing leases'),
    });
  }

  /** Registers the launcher (its first heartbeat), then renews every third of a lease. */
  async start(): Promise<void> {
    const { heartbeat } = this.#p;
    if (heartbeat !== null) {
      await heartbeat().catch((error: Error & { code?: string }) => {
        // A table not migrated since the launchers table came (autoMigrate: false) has none: skip it.
        this.#beating = error.code !== '42P01';
        this.#p.report(error, 'registering the launcher');
      });
    }
    await this.#periodic.start();
  }

  stop(): Promise<void> {
    return this.#periodic.stop();
  }

  /** One renewal, the heartbeat, and (when the renewal was accepted) the recovery of other launchers' rows. */
  async runOnce(): Promise<LeaseRunResult> {
    const { store, host, heartbeat } = this.#p;
    // The renewal first: the tries' fence deadlines wait on it, the heartbeat does not.
    const result = await this.#renew();
    if (this.#beating && heartbeat !== null) {
      await heartbeat().catch((error: Error) => this.#p.report(error, 'heart-beating the launcher'));
    }
    if (!result.accepted) return result;
    const expired = await store.requestsRecoverExpired({ host });
    announceRecovered(this.#p, expired, 'lease');
    const wiped = await store.requestsRecoverWiped();
    announceRecovered(this.#p, wiped, 'lease');
    result.recovered = [...expired, ...wiped];
    return result;
  }

  /** Renews now (a pid was cleared under one of this launcher's tries: the renewal finds it and stops the try). */
  renewSoon(): void {
    if (this.#renewing) {
      this.#renewAgain = true;
      return;
    }
    this.#renewing = true;
    this.#renewAgain = false;
    void this.#renew()
      .catch((error: Error) => this.#p.report(error, 'renewing leases'))
      .finally(() => {
        this.#renewing = false;
        if (this.#renewAgain) this.renewSoon();
      });
  }

  /** Renews, and says what the renewal found (a failure is the fence's to tell). */
  async #renew(): Promise<LeaseRunResult> {
    const { store, launcherId, leaseMs, loop, dispatcher } = this.#p;
    const result: LeaseRunResult = {
      accepted: false,
      renewed: [],
      lost: [],
      cancelled: [],
      rescheduled: [],
      released: [],
      recovered: [],
    };
    // Never beside a launch statement (see LaunchLoop.exclusive); sentAt is when it is really sent.
    let sentAt = 0;
    const renewal = await loop
      .exclusive(() => {
        sentAt = performance.now();
        return store.requestsRenewLeases({ launcherId, leaseMs });
      })
      .catch((error: Error) => {
        // Said by the fence (a warning, once per streak); the tries' deadlines do the rest.
        dispatcher.leaseRenewalFailed(error);
        this.#p.events.emit('error', { error, during: 'renewing leases' });
        return null;
      });
    if (renewal === null) return result;
    result.accepted = true;
    result.renewed = renewal.renewed;
    const lost = dispatcher.leaseRenewed(renewal.renewed, sentAt);
    result.lost = [...lost.stopped, ...lost.dropped];
    result.cancelled = renewal.cancelled;
    for (const id of renewal.cancelled) dispatcher.cancel(id);
    if (renewal.wiped.length > 0) {
      result.rescheduled = renewal.wiped;
      result.released = await this.#releaseWiped(renewal.wiped);
    }
    return result;
  }

  /**
   * Rows of ours whose pid was cleared by hand: their tries are stopped (and written RESCHEDULED
   * once stopped, which releases them); a row with no try here is released at once.
   */
  async #releaseWiped(wiped: readonly string[]): Promise<string[]> {
    const { store, launcherId, loop, dispatcher, logger } = this.#p;
    const unknown = dispatcher.rescheduled(wiped);
    if (unknown.length === 0) return [];
    const released = await loop.exclusive(() => store.requestsReleaseWiped({ launcherId, ids: unknown }));
    if (released.length > 0) {
      logger.warn('pid cleared by hand on rows with no try here: released', { ids: released.join(',') });
    }
    return released;
  }
}

/** How often leases are renewed: a third of a lease, at least 100 ms. */
export function leaseRenewalIntervalMs(leaseMs: number): number {
  return Math.max(100, Math.floor(leaseMs / 3));
}
