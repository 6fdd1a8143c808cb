/**
 * Says how a thread-mode try ended, as an {@link AttemptReport} (built by reports.ts): the
 * worker's answer (mapped exactly as fork mode maps a child's message), an abort, or a thread
 * that died under the try.
 */
import { describeError } from '../errors.js';
import type { AbortReason, AttemptHooks, AttemptJob, AttemptReport, AttemptUsage } from './attempt.js';
import { OutputLines } from './output-lines.js';
import { abortedReport, crashedReport, failedReport, finishedReport } from './reports.js';
import { decodeThreadResult, type ThreadOutput } from './thread-result.js';

function replayOutput(output: ThreadOutput, job: AttemptJob, onOutput: NonNullable<AttemptHooks['onOutput']>): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    if (output[stream].length === 0) continue; // most tries write nothing: no splitter for them
    const lines = new OutputLines((line) => onOutput(stream, line, job));
    lines.push(output[stream]);
    lines.end();
  }
  if (output.droppedBytes > 0) {
    onOutput(
      'stderr',
      `[${output.droppedBytes} more bytes of output dropped: a thread-mode try keeps at most 64 KiB]`,
      job,
    );
  }
}

/**
 * A worker's answer: `result` is finished, `error` is failed; a malformed answer fails as `task`.
 * What the try wrote is passed to `onOutput` line by line first, as a child's output would be.
 */
export function answerReport(
  value: unknown,
  usage: AttemptUsage,
  job: AttemptJob,
  onOutput?: AttemptHooks['onOutput'],
): AttemptReport {
  let result;
  try {
    result = decodeThreadResult(value);
  } catch (error) {
    return failedReport(usage, 'task', describeError(error));
  }
  if (onOutput !== undefined) replayOutput(result.output, job, onOutput);
  const ran: AttemptUsage = { ...usage, threadId: result.threadId, peakMemoryBytes: result.peakMemoryBytes };
  const { message } = result;
  if (message.type === 'result') return finishedReport(ran, message.resultText);
  return failedReport(ran, message.kind, message.text);
}

/** The launcher stopped the try; `usage.threadId` null means it never reached a thread. */
export function threadAbortedReport(reason: AbortReason, usage: AttemptUsage): AttemptReport {
  const text =
    usage.threadId === null
      ? `aborted (${reason}) before it started`
      : `aborted (${reason}): thread ${usage.threadId} was terminated`;
  return abortedReport(usage, reason, null, null, text);
}

/**
 * The thread died without answering: an uncaught exception, its heap limit, or `process.exit()`.
 * Piscina rejects the try with what ended the thread: the error itself, or "worker exited with
 * code: N" for an exit. A thread ended by an uncaught exception exits with code 1.
 */
export function threadCrashedReport(rejection: unknown, usage: AttemptUsage): AttemptReport {
  const thread = `thread ${usage.threadId ?? '?'}`;
  const exited = /^worker exited with code: (-?\d+)$/.exec((rejection as Error | null)?.message ?? '');
  let text: string;
  let exitCode: number | null = null;
  if ((rejection as { code?: unknown } | null)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    text = `${thread} ran out of memory (resourceLimits) without reporting a result: ${(rejection as Error).message}`;
  } else if (exited !== null) {
    exitCode = Number(exited[1]);
    text = `${thread} exited with code ${exitCode} without reporting a result`;
  } else {
    exitCode = 1;
    text = `${thread} crashed without reporting a result: uncaught ${describeError(rejection)}`;
  }
  return crashedReport(usage, exitCode, null, '', text);
}
