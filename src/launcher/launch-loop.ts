import { describeError } from '../errors.js';
import type { Logger } from '../shared/logger.js';
import { isConnectionError } from '../store/database.js';
import type {
  AppliedOutcome,
  AttemptOutcome,
  AttemptStartRecord,
  ClaimedRow,
  ClaimOrder,
  LaunchResult,
  RequestStore,
} from '../store/request-store.js';
import { plainestOutcome } from './attempt-outcome.js';

export interface LaunchLoopParams {
  store: RequestStore;
  launcherId: string;
  /** The claim to make with the next statement, or null (asked right before each statement). */
  claimOrder(): ClaimOrder | null;
  /** Rows a statement claimed (`asked` is how many it asked for). */
  onClaimed(rows: ClaimedRow[], asked: number): void;
  /** A claim failed; the statement is retried. */
  onClaimFailed(): void;
  /** Outcomes a statement wrote, and those it did not because the row is no longer this launcher's. */
  onOutcomes(applied: AppliedOutcome[], stale: AttemptOutcome[]): void;
  /** Starts a statement wrote. */
  onStarts(written: Set<string>): void;
  /** An outcome that could not be stored even in its plainest form: the row keeps its pid. */
  onGaveUp(outcome: AttemptOutcome, error: Error): void;
  onError(error: Error, during: string): void;
  /** Each statement, timed (one `performance.now()` pair per statement, not per try): for metrics. */
  onStatement?(timing: LaunchStatementTiming): void;
  /** Group-commit delay: how long an outcome may wait for others to share its statement. */
  batchDelayMs: number;
  /**
   * How long the start of a try may wait, with no outcome waiting, for an outcome or a claim to
   * share its statement (a try that ends first has its start written with its outcome).
   */
  startDelayMs: number;
  logger: Logger;
}

/** One launch statement as it went. */
export interface LaunchStatementTiming {
  /** Round trip of the statement, milliseconds. */
  durationMs: number;
  /** True when it carried a claim (the claim statement latency); false: outcomes and starts only. */
  claim: boolean;
  outcomes: number;
  starts: number;
  /** Failed, and how: the connection (everything retried) or refused by PostgreSQL (split row by row). */
  failure: 'connection' | 'refused' | null;
}

/** Outcomes per statement at most; more wait for the next one. */
const maxOutcomesPerStatement = 1_000;
const retry = { baseMs: 100, maxMs: 2_000 };

/**
 * The launcher's single writer: one statement in flight at a time (see launch-statement.ts),
 * carrying every outcome and start that waits, and the claim the policy asks for. While one is
 * in flight, what arrives waits for the next, so a burst of endings costs few statements; an
 * outcome alone waits `batchDelayMs` for company, a start with no outcome waits up to
 * `startDelayMs` (an outcome arriving meanwhile cuts that to `batchDelayMs`), and a claim never
 * waits. Fresh children take tens of milliseconds a try, so most starts then ride on the next
 * outcome or claim instead of costing a statement of their own. Nothing here holds a slot: a
 * try's slot was freed when the try ended.
 *
 * How a statement can fail, and what then happens:
 * - the database is unreachable or the connection died: everything is kept and the statement is
 *   retried with a backoff (up to 2 s), for as long as it takes; claims wait too;
 * - PostgreSQL refused a value (a row's outcome it cannot store): the statement is split, each
 *   outcome written alone, and one that still fails is written in its plainest form (FAILED,
 *   saying why its outcome could not be stored); only if that fails too is it given up, and said so.
 */
export class LaunchLoop {
  readonly #p: LaunchLoopParams;
  #outcomes: AttemptOutcome[] = [];
  readonly #starts = new Map<string, AttemptStartRecord>();
  #running = false;
  #again = false;
  #claims = true;
  #flushing = false;
  #failures = 0;
  #inFlight = 0;
  #idle: (() => void)[] = [];
  #closed = false;
  #wakeDelay: (() => void) | null = null;
  /** Ends the group-commit delay running now at `performance.now()` + ms, if that is sooner. */
  #shortenDelay: ((ms: number) => void) | null = null;
  /** Settles when the statement or exclusive work running now is done (see `exclusive`). */
  #gate: Promise<void> = Promise.resolve();

  constructor(params: LaunchLoopParams) {
    this.#p = params;
  }

  /** Outcomes not yet written (waiting or in a statement in flight). */
  get unwritten(): number {
    return this.#outcomes.length + this.#inFlight;
  }

  addOutcome(outcome: AttemptOutcome): void {
    this.#outcomes.push(outcome);
    // Starts waiting for company have found it: the outcome's own (shorter) delay applies.
    this.#shortenDelay?.(this.#p.batchDelayMs);
    this.kick();
  }

  addStart(start: AttemptStartRecord): void {
    this.#starts.set(start.id, start);
    this.kick();
  }

  /** The try ended before its start was written: the outcome records it instead. */
  dropStart(id: string): boolean {
    return this.#starts.delete(id);
  }

  /** Something may be wanted: runs a statement unless one is in flight (then another follows). */
  kick(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      // A claim must not sit out a group-commit delay.
      if (this.#wakeDelay !== null && this.#wantsClaim()) this.#wakeDelay();
      return;
    }
    this.#running = true;
    void this.#run();
  }

  /**
   * Runs `work` while no launch statement is in flight, and holds the next one until it is done.
   * The launcher's other writes to its own rows (the lease renewal) go through here: run beside
   * a launch statement that updates some of the same rows in another order, the two deadlock.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#gate.then(work);
    this.#gate = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Stops claiming (what is pending is still written). */
  stopClaiming(): void {
    this.#claims = false;
  }

  /** Stops for good: a statement being retried is given up (after `flush`, at shutdown). */
  close(): void {
    this.#closed = true;
    this.#wakeDelay?.();
  }

  /**
   * Writes everything pending at once, no delay, no claims. Resolves true once done, false after
   * `timeoutMs` (the database is down: what is left stays unwritten, and its rows keep their pid).
   */
  async flush(timeoutMs: number): Promise<boolean> {
    this.#claims = false;
    this.#flushing = true;
    this.#wakeDelay?.();
    this.kick();
    if (!this.#running && this.unwritten === 0 && this.#starts.size === 0) return true;
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async #run(): Promise<void> {
    try {
      for (;;) {
        this.#again = false;
        if (this.#closed) break;
        if (this.#outcomes.length === 0 && this.#starts.size === 0 && !this.#wantsClaim()) break;
        if (!this.#flushing && !this.#wantsClaim()) {
          const delayMs =
            this.#outcomes.length > 0 ? this.#p.batchDelayMs : Math.max(this.#p.startDelayMs, this.#p.batchDelayMs);
          if (delayMs > 0) await this.#groupCommitDelay(delayMs);
        }
        await this.#statement();
      }
    } finally {
      this.#running = false;
      if (this.#again) this.kick();
      else if (this.#outcomes.length === 0 && this.#starts.size === 0) this.#wakeIdle();
    }
  }

  #wantsClaim(): boolean {
    return this.#claims && this.#p.claimOrder() !== null;
  }

  #groupCommitDelay(delayMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let deadline = performance.now() + delayMs;
      const done = (): void => {
        clearTimeout(timer);
        this.#wakeDelay = null;
        this.#shortenDelay = null;
        resolve();
      };
      let timer = setTimeout(done, delayMs);
      this.#wakeDelay = done;
      this.#shortenDelay = (ms) => {
        const sooner = performance.now() + ms;
        if (sooner >= deadline) return;
        deadline = sooner;
        clearTimeout(timer);
        timer = setTimeout(done, ms);
      };
    });
  }

  /** Sends one launch statement, never beside other exclusive work (see `exclusive`). */
  #launch(
    outcomes: readonly AttemptOutcome[],
    starts: readonly AttemptStartRecord[],
    claim: ClaimOrder | null,
  ): Promise<LaunchResult> {
    return this.exclusive(async () => {
      const sentAt = performance.now();
      const result = await this.#p.store.requestsLaunch({ launcherId: this.#p.launcherId, outcomes, starts, claim });
      // A claimed row's lease runs from the database's now(), never earlier than this send: its
      // lease clock starts here, not when the answer came (which may be long after, once a cut
      // connection heals, when the lease has already expired for everyone else).
      for (const row of result.claimed) row.receivedAtMs = sentAt;
      return result;
    });
  }

  /** One statement: what waits, plus a claim; retried or split on failure. */
  async #statement(): Promise<void> {
    const outcomes =
      this.#outcomes.length <= maxOutcomesPerStatement
        ? this.#outcomes
        : this.#outcomes.slice(0, maxOutcomesPerStatement);
    this.#outcomes =
      this.#outcomes.length <= maxOutcomesPerStatement ? [] : this.#outcomes.slice(maxOutcomesPerStatement);
    // A start whose try ended meanwhile is left out: its outcome records it, and one statement
    // must not update a row twice.
    const ending = new Set(outcomes.map((outcome) => outcome.id));
    const starts = [...this.#starts.values()].filter((start) => !ending.has(start.id));
    this.#starts.clear();
    const claim = this.#claims ? this.#p.claimOrder() : null;
    this.#inFlight = outcomes.length;
    let result: LaunchResult;
    const begunAt = performance.now();
    try {
      result = await this.#launch(outcomes, starts, claim);
    } catch (error) {
      this.#inFlight = 0;
      if (claim !== null) this.#p.onClaimFailed();
      const connection = isConnectionError(error);
      this.#p.onStatement?.({
        durationMs: performance.now() - begunAt,
        claim: claim !== null,
        outcomes: outcomes.length,
        starts: starts.length,
        failure: connection ? 'connection' : 'refused',
      });
      if (connection || (outcomes.length === 0 && starts.length === 0)) {
        // Nothing is lost: put it all back, wait, try again.
        this.#outcomes = [...outcomes, ...this.#outcomes];
        for (const start of starts) if (!this.#starts.has(start.id)) this.#starts.set(start.id, start);
        this.#failures += 1;
        this.#p.onError(
          error as Error,
          outcomes.length > 0 ? 'recording outcomes' : claim !== null ? 'claiming' : 'recording starts',
        );
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(retry.baseMs * 2 ** (this.#failures - 1), retry.maxMs)),
        );
        return;
      }
      await this.#isolate(outcomes, starts, error as Error);
      return;
    }
    this.#p.onStatement?.({
      durationMs: performance.now() - begunAt,
      claim: claim !== null,
      outcomes: outcomes.length,
      starts: starts.length,
      failure: null,
    });
    this.#inFlight = 0;
    this.#failures = 0;
    this.#deliver(outcomes, result);
    if (claim !== null) this.#p.onClaimed(result.claimed, claim.limit);
  }

  #deliver(sent: readonly AttemptOutcome[], result: LaunchResult): void {
    if (result.starts.size > 0) this.#p.onStarts(result.starts);
    if (sent.length === 0) return;
    const applied = new Set(result.outcomes.map((outcome) => outcome.id));
    const stale = applied.size === sent.length ? [] : sent.filter((outcome) => !applied.has(outcome.id));
    this.#p.onOutcomes(result.outcomes, stale);
  }

  /**
   * A statement PostgreSQL refused for what it carried, not for the connection: each outcome and
   * start is written alone, so one bad value costs no other row its outcome.
   */
  async #isolate(
    outcomes: readonly AttemptOutcome[],
    starts: readonly AttemptStartRecord[],
    error: Error,
  ): Promise<void> {
    this.#p.logger.warn('a launch statement was refused; writing its outcomes one by one', {
      outcomes: outcomes.length,
      starts: starts.length,
      error: error.message,
    });
    for (const start of starts) {
      try {
        const result = await this.#launch([], [start], null);
        this.#deliver([], result);
      } catch (failure) {
        this.#p.logger.error('the start of a try could not be recorded', {
          id: start.id,
          error: describeError(failure),
        });
      }
    }
    for (const outcome of outcomes) await this.#writeAlone(outcome);
  }

  async #writeAlone(outcome: AttemptOutcome): Promise<void> {
    for (const attempt of [outcome, plainestOutcome(outcome)]) {
      try {
        this.#deliver([attempt], await this.#launch([attempt], [], null));
        if (attempt !== outcome)
          this.#p.logger.error('outcome stored in its plainest form', { id: outcome.id, result: outcome.result });
        return;
      } catch (failure) {
        if (isConnectionError(failure)) {
          // The connection went meanwhile: back to the queue, like any unwritten outcome.
          this.#outcomes.unshift(outcome);
          return;
        }
        if (attempt !== outcome) this.#p.onGaveUp(outcome, failure as Error);
        else
          this.#p.logger.error('an outcome was refused by the database', {
            id: outcome.id,
            error: describeError(failure),
          });
      }
    }
  }

  #wakeIdle(): void {
    const waiting = this.#idle;
    this.#idle = [];
    for (const wake of waiting) wake();
  }
}
