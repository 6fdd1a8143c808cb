import type { AttemptReport, AttemptStart } from '../pool/attempt.js';
import type { AttemptOutcome } from '../store/request-store.js';
import { RequestResult, type ClaimedRequest } from '../store/schema.js';

/**
 * Turns how a try ended into what the row records:
 * - finished → FINISHED; failed → FAILED (invalid options end the request at once);
 * - crashed → CRASHED and timed out → TIMED_OUT, both counted as crashes;
 * - cancelled → CANCELLED, never retried; shut down → INTERRUPTED with the try given back.
 */
export function outcomeOf(row: ClaimedRequest, report: AttemptReport, start: AttemptStart | null, timeoutMs: number | null): AttemptOutcome {
  const exit = report.outcome === 'crashed' || report.outcome === 'aborted' ? { exitCode: report.exitCode, signal: report.signal } : { exitCode: null, signal: null };
  const base = {
    id: row.id,
    tries: row.tries,
    attempt: {
      pid: start?.pid ?? report.pid,
      threadId: start?.threadId ?? report.threadId,
      mode: start?.mode ?? null,
      startedAt: start?.startedAt ?? null,
      peakMemoryBytes: report.peakMemoryBytes,
      ...exit,
    },
  };
  const plain = { final: false, refund: false, crash: false };
  switch (report.outcome) {
    case 'finished':
      return { ...base, ...plain, result: RequestResult.FINISHED, resultText: report.resultText, final: true };
    case 'failed':
      return { ...base, ...plain, result: RequestResult.FAILED, resultText: report.text, final: report.kind === 'options' };
    case 'crashed':
      return { ...base, ...plain, result: RequestResult.CRASHED, resultText: report.text, crash: true };
    case 'aborted':
      switch (report.reason) {
        case 'timeout':
          return { ...base, ...plain, result: RequestResult.TIMED_OUT, resultText: `hard timeout of ${timeoutMs} ms reached; ${report.text}`, crash: true };
        case 'cancel':
          return { ...base, ...plain, result: RequestResult.CANCELLED, resultText: report.text, final: true };
        case 'shutdown':
          return { ...base, ...plain, result: RequestResult.INTERRUPTED, resultText: `interrupted by launcher shutdown: ${report.text}`, refund: true };
      }
  }
}
