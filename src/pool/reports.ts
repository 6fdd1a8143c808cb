/**
 * Every {@link AttemptReport} a pool gives is built here: how a try's process or thread ended,
 * and nothing about what that means for its request (the launcher decides that, see
 * ../launcher/attempt-outcome.ts). Each kind has its fields in one order, so every report of a
 * kind has one shape.
 */
import type { AbortReason, AttemptReport, AttemptUsage } from './attempt.js';
import type { FailureKind } from './protocol.js';

/** The usage of a try that never reached a child or a thread: nothing is known of a process. */
export const noUsage: AttemptUsage = Object.freeze({ pid: null, threadId: null, peakMemoryBytes: null });

/** The task returned: `resultText` is its value as the row stores it. */
export function finishedReport(usage: AttemptUsage, resultText: string | null): AttemptReport {
  const { pid, threadId, peakMemoryBytes } = usage;
  return { outcome: 'finished', pid, threadId, peakMemoryBytes, resultText };
}

/** The task threw, or its file, options or result could not be used (`kind` says which). */
export function failedReport(usage: AttemptUsage, kind: FailureKind, text: string): AttemptReport {
  const { pid, threadId, peakMemoryBytes } = usage;
  return { outcome: 'failed', pid, threadId, peakMemoryBytes, kind, text };
}

/** The process or thread ended without reporting a result, nobody having asked it to. */
export function crashedReport(
  usage: AttemptUsage,
  exitCode: number | null,
  signal: string | null,
  stderrTail: string,
  text: string,
): AttemptReport {
  const { pid, threadId, peakMemoryBytes } = usage;
  return { outcome: 'crashed', pid, threadId, peakMemoryBytes, exitCode, signal, stderrTail, text };
}

/** The pool stopped the try for `reason` (the launcher's abort, or the child's own lease fence). */
export function abortedReport(
  usage: AttemptUsage,
  reason: AbortReason,
  exitCode: number | null,
  signal: string | null,
  text: string,
): AttemptReport {
  const { pid, threadId, peakMemoryBytes } = usage;
  return { outcome: 'aborted', pid, threadId, peakMemoryBytes, reason, exitCode, signal, text };
}

/** A try that never reached a child or thread (no child could start, the pool closed): crashed. */
export function notStartedReport(text: string): AttemptReport {
  return crashedReport(noUsage, null, null, '', text);
}

/** A try stopped for `reason` before its task started. */
export function abortedBeforeStartReport(reason: AbortReason): AttemptReport {
  return abortedReport(noUsage, reason, null, null, `${reason} before the task started`);
}
