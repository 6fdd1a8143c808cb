import type { AttemptReport, AttemptStart } from '../pool/attempt.js';
import type { AttemptOutcome, ClaimedRow } from '../store/request-store.js';
import { RequestResult } from '../store/schema.js';

/**
 * Turns how a try ended into the outcome the launch statement writes:
 * - finished → FINISHED; failed → FAILED (invalid options end the request at once);
 * - crashed → CRASHED and timed out → TIMED_OUT, both counted as crashes;
 * - cancelled → CANCELLED, never retried; shut down → INTERRUPTED with the try given back
 *   (stopped because its pid was cleared by hand: `rescheduledOutcome`);
 * - fenced (its lease deadline passed unconfirmed, see lease-fence.ts) → INTERRUPTED, try given back.
 * How the request then stands (PARKED, CANCELLED, retried, ended) is decided by the statement.
 */
export function outcomeOf(row: ClaimedRow, report: AttemptReport, start: AttemptStart | null, timeoutMs: number | null): AttemptOutcome {
  const crashed = report.outcome === 'crashed' || report.outcome === 'aborted';
  const attempt: AttemptOutcome['attempt'] = {
    pid: start?.pid ?? report.pid,
    threadId: start?.threadId ?? report.threadId,
    mode: start?.mode ?? null,
    startedAtMs: start?.startedAtMs ?? null,
    exitCode: crashed ? report.exitCode : null,
    signal: crashed ? report.signal : null,
    peakMemoryBytes: report.peakMemoryBytes,
  };
  switch (report.outcome) {
    case 'finished':
      return outcome(row, RequestResult.FINISHED, report.resultText, ends, attempt);
    case 'failed':
      return outcome(row, RequestResult.FAILED, report.text, report.kind === 'options' ? ends : retries, attempt);
    case 'crashed':
      return outcome(row, RequestResult.CRASHED, report.text, countsAsCrash, attempt);
    case 'aborted':
      switch (report.reason) {
        case 'timeout':
          return outcome(row, RequestResult.TIMED_OUT, `hard timeout of ${timeoutMs} ms reached; ${report.text}`, countsAsCrash, attempt);
        case 'cancel':
          return outcome(row, RequestResult.CANCELLED, report.text, ends, attempt);
        case 'shutdown':
          return outcome(row, RequestResult.INTERRUPTED, `interrupted by launcher shutdown: ${report.text}`, givesBack, attempt);
        case 'lease':
          return outcome(row, RequestResult.INTERRUPTED, `lease lost: fenced by its launcher: ${report.text}`, givesBack, attempt);
      }
  }
}

interface OutcomeFlags {
  final: boolean;
  refund: boolean;
  crash: boolean;
}

const ends: OutcomeFlags = { final: true, refund: false, crash: false };
const retries: OutcomeFlags = { final: false, refund: false, crash: false };
const countsAsCrash: OutcomeFlags = { final: false, refund: false, crash: true };
const givesBack: OutcomeFlags = { final: false, refund: true, crash: false };

/**
 * Every outcome is built here, with its fields in one order: an object spread with a field
 * overridden after it (as this was written before) cost ~1.7 µs per try in a launcher running
 * 10,000 tries a second, and gave the statement's encoder objects of several shapes.
 */
function outcome(row: ClaimedRow, result: AttemptOutcome['result'], resultText: string | null, flags: OutcomeFlags, attempt: AttemptOutcome['attempt']): AttemptOutcome {
  return { id: row.id, tries: row.tries, result, resultText, final: flags.final, refund: flags.refund, crash: flags.crash, attempt };
}

/**
 * A try stopped because its row's pid was cleared by hand (a reschedule): RESCHEDULED, the try
 * given back, the row runnable at once once this is written. `report` is how the stopped try
 * ended (aborted), for the history row's exit code, signal and usage.
 */
export function rescheduledOutcome(
  row: ClaimedRow,
  report: Extract<AttemptReport, { outcome: 'aborted' }>,
  start: AttemptStart | null,
): AttemptOutcome {
  const attempt: AttemptOutcome['attempt'] = {
    pid: start?.pid ?? report.pid,
    threadId: start?.threadId ?? report.threadId,
    mode: start?.mode ?? null,
    startedAtMs: start?.startedAtMs ?? null,
    exitCode: report.exitCode,
    signal: report.signal,
    peakMemoryBytes: report.peakMemoryBytes,
  };
  const text = `rescheduled: its pid was cleared while the try ran, so the try was stopped before the next one could start (${report.text})`;
  return outcome(row, RequestResult.RESCHEDULED, text, givesBack, attempt);
}

/** The outcome of a claimed row that ends without a try: cancelled while queued, released at shutdown, or rescheduled. */
export function notRunOutcome(
  row: ClaimedRow,
  result: 'CANCELLED' | 'INTERRUPTED' | 'RESCHEDULED',
  text: string,
  how: { final: boolean; refund: boolean },
): AttemptOutcome {
  const attempt = { pid: null, threadId: null, mode: null, startedAtMs: null, exitCode: null, signal: null, peakMemoryBytes: null };
  return outcome(row, result, text, { ...how, crash: false }, attempt);
}

/**
 * The report of a fenced try: `aborted` for reason `lease`, keeping what the pool knew of its
 * process (a child that ended itself at its deadline reports as killed by SIGKILL).
 */
export function fencedReport(text: string, report: AttemptReport | null): AttemptReport {
  const crashed = report !== null && (report.outcome === 'crashed' || report.outcome === 'aborted');
  return {
    outcome: 'aborted', reason: 'lease', text,
    pid: report?.pid ?? null, threadId: report?.threadId ?? null, peakMemoryBytes: report?.peakMemoryBytes ?? null,
    exitCode: crashed ? report.exitCode : null, signal: crashed ? report.signal : null,
  };
}
