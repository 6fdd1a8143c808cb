import type { AttemptReport, AttemptStart } from '../pool/attempt.js';
import type { AttemptOutcome, ClaimedRow } from '../store/request-store.js';
import { RequestResult } from '../store/schema.js';

/**
 * Turns how a try ended into the outcome the launch statement writes:
 * - finished → FINISHED; failed → FAILED (invalid options end the request at once);
 * - crashed → CRASHED and timed out → TIMED_OUT, both counted as crashes;
 * - cancelled → CANCELLED, never retried; shut down → INTERRUPTED with the try given back.
 * How the request then stands (PARKED, CANCELLED, retried, ended) is decided by the statement.
 */
export function outcomeOf(row: ClaimedRow, report: AttemptReport, start: AttemptStart | null, timeoutMs: number | null): AttemptOutcome {
  const crashed = report.outcome === 'crashed' || report.outcome === 'aborted';
  const base = {
    id: row.id,
    tries: row.tries,
    final: false,
    refund: false,
    crash: false,
    attempt: {
      pid: start?.pid ?? report.pid,
      threadId: start?.threadId ?? report.threadId,
      mode: start?.mode ?? null,
      startedAtMs: start?.startedAtMs ?? null,
      peakMemoryBytes: report.peakMemoryBytes,
      exitCode: crashed ? report.exitCode : null,
      signal: crashed ? report.signal : null,
    },
  };
  switch (report.outcome) {
    case 'finished':
      return { ...base, result: RequestResult.FINISHED, resultText: report.resultText, final: true };
    case 'failed':
      return { ...base, result: RequestResult.FAILED, resultText: report.text, final: report.kind === 'options' };
    case 'crashed':
      return { ...base, result: RequestResult.CRASHED, resultText: report.text, crash: true };
    case 'aborted':
      switch (report.reason) {
        case 'timeout':
          return { ...base, result: RequestResult.TIMED_OUT, resultText: `hard timeout of ${timeoutMs} ms reached; ${report.text}`, crash: true };
        case 'cancel':
          return { ...base, result: RequestResult.CANCELLED, resultText: report.text, final: true };
        case 'shutdown':
          return { ...base, result: RequestResult.INTERRUPTED, resultText: `interrupted by launcher shutdown: ${report.text}`, refund: true };
      }
  }
}

/** The outcome of a claimed row that ends without a try: cancelled while queued, or released at shutdown. */
export function notRunOutcome(
  row: ClaimedRow,
  result: 'CANCELLED' | 'INTERRUPTED',
  text: string,
  how: { final: boolean; refund: boolean },
): AttemptOutcome {
  return {
    id: row.id,
    tries: row.tries,
    result,
    resultText: text,
    final: how.final,
    refund: how.refund,
    crash: false,
    attempt: { pid: null, threadId: null, mode: null, startedAtMs: null, exitCode: null, signal: null, peakMemoryBytes: null },
  };
}
