import type { AttemptReport, AttemptStart } from '../pool/attempt.js';
import type { AttemptOutcome, AttemptRecord } from '../store/attempt-outcome.js';
import type { ClaimedRow } from '../store/launch-statement.js';
import { RequestResult } from '../store/schema.js';

/**
 * Every outcome the launcher writes is built here (ARCHITECTURE.md, "How a try ended", has the
 * whole table). An outcome says what to write for one try: its own `result` and text, and three
 * flags for the launch statement's rules (../store/outcome-rules.ts): `endNow` (end the request
 * whatever tries remain), `refund` (give the try back, the row runnable at once) and `crash`
 * (count it against `crashLimit`). How the request then stands (PARKED, CANCELLED, retried,
 * ended) is the statement's to decide, never this file's.
 *
 * From the pool's report (`reportedOutcome`):
 * - finished → FINISHED; failed → FAILED (invalid options end the request now);
 * - crashed → CRASHED and timed out → TIMED_OUT, both counted as crashes;
 * - cancelled → CANCELLED, ended now; shut down → INTERRUPTED with the try given back;
 * - fenced (its lease deadline passed unconfirmed, see lease-fence.ts) → INTERRUPTED, try given back;
 * - stopped because its pid was cleared by hand → RESCHEDULED, try given back.
 * Without one: a try no pool had (`unstartedOutcome`), one refused before it ran
 * (`refusedOutcome`), a held row that never started (`heldOutcome`), and the plainest outcome the
 * launch loop falls back to when the database refuses one (`plainestOutcome`).
 */

/** What the launcher knows of an ended try besides its report (the dispatcher's entry). */
export interface EndedTry {
  readonly row: ClaimedRow;
  readonly start: AttemptStart | null;
  /** Its hard timeout in ms, named in a TIMED_OUT text. */
  readonly timeoutMs: number | null;
  /** Its lease deadline passed unconfirmed: its child or the launcher ended it (the fence). */
  readonly fenced: boolean;
  /** Its row's pid was cleared by hand: it was stopped for a reschedule. */
  readonly wiped: boolean;
  /**
   * Its row was recovered by another launcher: nothing is written for it, and its outcome (a
   * fenced one) serves only, when it was fenced, to tell that launcher's history row so.
   */
  readonly lost: boolean;
}

interface OutcomeFlags {
  endNow: boolean;
  refund: boolean;
  crash: boolean;
}

const ends: OutcomeFlags = { endNow: true, refund: false, crash: false };
const retries: OutcomeFlags = { endNow: false, refund: false, crash: false };
const countsAsCrash: OutcomeFlags = { endNow: false, refund: false, crash: true };
const givesBack: OutcomeFlags = { endNow: false, refund: true, crash: false };

/**
 * Every outcome object is made here, with its fields in one order, so the statement's encoder
 * sees objects of one shape: an object spread with a field overridden after it makes several,
 * and costs the launcher measurably per try on the hot path.
 */
function outcome(
  row: ClaimedRow,
  result: AttemptOutcome['result'],
  resultText: string | null,
  flags: OutcomeFlags,
  attempt: AttemptRecord,
): AttemptOutcome {
  const { endNow, refund, crash } = flags;
  return { id: row.id, tries: row.tries, result, resultText, endNow, refund, crash, attempt };
}

/** The history row of a try whose process is known by its report and its start. */
function attemptOf(report: AttemptReport, start: AttemptStart | null): AttemptRecord {
  const stopped = report.outcome === 'crashed' || report.outcome === 'aborted';
  return {
    pid: start?.pid ?? report.pid,
    threadId: start?.threadId ?? report.threadId,
    mode: start?.mode ?? null,
    startedAtMs: start?.startedAtMs ?? null,
    exitCode: stopped ? report.exitCode : null,
    signal: stopped ? report.signal : null,
    peakMemoryBytes: report.peakMemoryBytes,
  };
}

/** The history row of a try that never reached a process. */
function noAttempt(): AttemptRecord {
  return {
    pid: null,
    threadId: null,
    mode: null,
    startedAtMs: null,
    exitCode: null,
    signal: null,
    peakMemoryBytes: null,
  };
}

/** Why a fenced try ended, before what its pool (or the launcher) said of it. */
function fenceText(text: string): string {
  return `its lease was not confirmed in time (the launcher cut off from the database, or frozen); ${text}`;
}

function fencedOutcome(row: ClaimedRow, text: string, attempt: AttemptRecord): AttemptOutcome {
  return outcome(row, RequestResult.INTERRUPTED, `lease lost: fenced by its launcher: ${text}`, givesBack, attempt);
}

/** RESCHEDULED, the try given back: the row is runnable at once once this is written. */
function rescheduledOutcome(row: ClaimedRow, text: string, attempt: AttemptRecord): AttemptOutcome {
  const resultText =
    'rescheduled: its pid was cleared while the try ran, so the try was stopped before the next ' +
    `one could start (${text})`;
  return outcome(row, RequestResult.RESCHEDULED, resultText, givesBack, attempt);
}

/**
 * The outcome of a try its pool reported on. A fenced try that was stopped (crashed or aborted:
 * a child that ends itself at its deadline reports as killed by SIGKILL) is written as fenced;
 * one stopped for a reschedule is written RESCHEDULED; a try that ended by itself first keeps
 * how it ended. A lost try gets a fenced outcome, never written (see {@link EndedTry.lost}).
 */
export function reportedOutcome(ended: EndedTry, report: AttemptReport): AttemptOutcome {
  const { row } = ended;
  const attempt = attemptOf(report, ended.start);
  if (ended.fenced && (report.outcome === 'crashed' || report.outcome === 'aborted')) {
    const text = fenceText(report.text);
    return ended.wiped && !ended.lost ? rescheduledOutcome(row, text, attempt) : fencedOutcome(row, text, attempt);
  }
  if (ended.lost) return fencedOutcome(row, report.outcome === 'finished' ? '' : report.text, attempt);
  switch (report.outcome) {
    case 'finished':
      return outcome(row, RequestResult.FINISHED, report.resultText, ends, attempt);
    case 'failed':
      return outcome(row, RequestResult.FAILED, report.text, report.kind === 'options' ? ends : retries, attempt);
    case 'crashed':
      return outcome(row, RequestResult.CRASHED, report.text, countsAsCrash, attempt);
    case 'aborted':
      if (ended.wiped) return rescheduledOutcome(row, report.text, attempt);
      switch (report.reason) {
        case 'timeout': {
          const text = `hard timeout of ${ended.timeoutMs} ms reached; ${report.text}`;
          return outcome(row, RequestResult.TIMED_OUT, text, countsAsCrash, attempt);
        }
        case 'cancel':
          return outcome(row, RequestResult.CANCELLED, report.text, ends, attempt);
        case 'shutdown':
          return outcome(
            row,
            RequestResult.INTERRUPTED,
            `interrupted by launcher shutdown: ${report.text}`,
            givesBack,
            attempt,
          );
        case 'lease':
          return fencedOutcome(row, report.text, attempt);
      }
  }
}

/**
 * The outcome of a try the launcher stopped before any pool had it (it was still being
 * prepared): `text` says what stopped it. Stopped for a reschedule → RESCHEDULED; otherwise its
 * lease deadline passed (fenced), or its lease was lost (see {@link EndedTry.lost}).
 */
export function unstartedOutcome(ended: EndedTry, text: string): AttemptOutcome {
  const why = ended.fenced ? fenceText(text) : text;
  if (ended.wiped && !ended.lost) return rescheduledOutcome(ended.row, why, noAttempt());
  return fencedOutcome(ended.row, why, noAttempt());
}

/**
 * A try refused before it ran: FAILED. Options that cannot be used (too long, or no task named)
 * end the request now, as no retry can change them; a task file that could not be loaded is
 * retried.
 */
export function refusedOutcome(row: ClaimedRow, kind: 'options' | 'load', text: string): AttemptOutcome {
  return outcome(row, RequestResult.FAILED, text, kind === 'options' ? ends : retries, noAttempt());
}

/** How a row held in the local queue ends without a try, by why. */
const heldEndings = {
  /** Cancelled while held: CANCELLED, ended now. */
  cancelled: { result: RequestResult.CANCELLED, text: 'cancelled before it started', flags: ends },
  /** Released at shutdown: INTERRUPTED, the try given back. */
  released: {
    result: RequestResult.INTERRUPTED,
    text: 'released unstarted: the launcher is shutting down',
    flags: givesBack,
  },
  /** Its pid cleared by hand while held: RESCHEDULED, the try given back. */
  rescheduled: {
    result: RequestResult.RESCHEDULED,
    text: 'rescheduled before it started: its pid was cleared while it was held',
    flags: givesBack,
  },
} as const;

/** Why a row held in the local queue ends without a try. */
export type HeldEnding = keyof typeof heldEndings;

/** The outcome of a claimed row that ends without a try: cancelled while held, released at shutdown, or rescheduled. */
export function heldOutcome(row: ClaimedRow, why: HeldEnding): AttemptOutcome {
  const { result, text, flags } = heldEndings[why];
  return outcome(row, result, text, flags, noAttempt());
}

/** An outcome reduced to what the database cannot refuse: FAILED, saying why the real one was not stored. */
export function plainestOutcome(refused: AttemptOutcome): AttemptOutcome {
  const attempt = noAttempt();
  attempt.mode = refused.attempt.mode;
  const text = `the outcome of this try (${refused.result}) could not be stored; the database refused it`;
  const { endNow, refund, crash } = retries;
  const { id, tries } = refused;
  return { id, tries, result: RequestResult.FAILED, resultText: text, endNow, refund, crash, attempt };
}
