/**
 * Turns how a thread-mode try ended into an {@link AttemptReport}: the worker's answer (mapped
 * exactly as fork mode maps a child's message), an abort, or a thread that died under the try.
 */
import { describeError } from '../errors.js';
import type { AbortReason, AttemptHooks, AttemptReport, AttemptUsage } from './attempt.js';
import { OutputLines } from './output-lines.js';
import { decodeThreadResult, type ThreadOutput } from './thread-result.js';

function replayOutput(output: ThreadOutput, onOutput: NonNullable<AttemptHooks['onOutput']>): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    const lines = new OutputLines((line) => onOutput(stream, line));
    lines.push(output[stream]);
    lines.end();
  }
  if (output.droppedBytes > 0) {
    onOutput('stderr', `[${output.droppedBytes} more bytes of output dropped: a thread-mode try keeps at most 64 KiB]`);
  }
}

/**
 * A worker's answer: `result` is finished, `error` is failed; a malformed answer fails as `task`.
 * What the try wrote is passed to `onOutput` line by line first, as a child's output would be.
 */
export function answerReport(value: unknown, usage: AttemptUsage, onOutput?: AttemptHooks['onOutput']): AttemptReport {
  let result;
  try {
    result = decodeThreadResult(value);
  } catch (error) {
    return { outcome: 'failed', ...usage, kind: 'task', text: describeError(error) };
  }
  if (onOutput !== undefined) replayOutput(result.output, onOutput);
  const ran: AttemptUsage = { ...usage, threadId: result.threadId, peakMemoryBytes: result.peakMemoryBytes };
  const { message } = result;
  if (message.type === 'result') return { outcome: 'finished', ...ran, resultText: message.resultText };
  if (message.type === 'error') return { outcome: 'failed', ...ran, kind: message.kind, text: message.text };
  return { outcome: 'failed', ...ran, kind: 'task', text: `unexpected thread answer: ${message.type}` };
}

/** The launcher stopped the try; `usage.threadId` null means it never reached a thread. */
export function abortedReport(reason: AbortReason, usage: AttemptUsage): AttemptReport {
  const text =
    usage.threadId === null
      ? `aborted (${reason}) before it started`
      : `aborted (${reason}): thread ${usage.threadId} was terminated`;
  return { outcome: 'aborted', ...usage, reason, exitCode: null, signal: null, text };
}

export interface ThreadDeath {
  /** What the thread threw outside the task (its 'error' event): an uncaught exception or OOM. */
  uncaught: { error: unknown } | null;
  /** The thread's exit code, once it has exited. */
  exitCode: number | null;
  /** What piscina rejected the try with. */
  rejection: unknown;
}

/** The thread died without answering: an uncaught exception, its heap limit, or `process.exit()`. */
export function crashedReport(death: ThreadDeath, usage: AttemptUsage): AttemptReport {
  const thread = `thread ${usage.threadId ?? '?'}`;
  const uncaught = death.uncaught?.error;
  let text: string;
  if ((uncaught as { code?: unknown } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    text = `${thread} ran out of memory (resourceLimits) without reporting a result: ${(uncaught as Error).message}`;
  } else if (death.uncaught !== null) {
    text = `${thread} crashed without reporting a result: uncaught ${describeError(uncaught)}`;
  } else if (death.exitCode !== null) {
    text = `${thread} exited with code ${death.exitCode} without reporting a result`;
  } else {
    text = `${thread} crashed without reporting a result: ${describeError(death.rejection)}`;
  }
  return { outcome: 'crashed', ...usage, exitCode: death.exitCode, signal: null, stderrTail: '', text };
}
