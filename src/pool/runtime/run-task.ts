/**
 * Runs one task and says how it went, without knowing how it was reached (fork, thread, or the
 * hand-run helper). Every failure becomes a message; nothing here throws.
 */
import { describeError, TaskRunnerError } from '../../errors.js';
import { loadTaskClass } from '../../tasks/load-task.js';
import { parseOptions } from '../../tasks/options.js';
import type { TaskRequestInfo } from '../../tasks/task.js';
import type { FailureKind, RunMessage, TaskOutcome } from '../protocol.js';
import { resultText } from './result-text.js';

/** Caps an error text explicitly: the cut is marked and its size named. */
export function capText(text: string, maxBytes: number): string {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return text;
  const marker = `\n[... error text truncated: ${bytes} bytes, limit ${maxBytes}]`;
  const keep = Math.max(0, maxBytes - Buffer.byteLength(marker, 'utf8'));
  return (
    Buffer.from(text, 'utf8')
      .subarray(0, keep)
      .toString('utf8')
      .replace(/\uFFFD$/, '') + marker
  );
}

function failure(kind: FailureKind, error: unknown, maxBytes: number): TaskOutcome {
  return { type: 'error', kind, text: capText(describeError(error), maxBytes) };
}

/** `run()`'s value as `result_text` (see result-text.ts), within `maxBytes`. */
export function encodeResult(value: unknown, maxBytes: number): string | null {
  const text = resultText(value);
  if (text === null) return null;
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) {
    throw new TaskRunnerError(
      'RESULT_TOO_LARGE',
      `task result is ${bytes} bytes, over the limit of ${maxBytes} bytes (maxResultBytes); it was not stored`,
    );
  }
  return text;
}

export async function runTask(message: RunMessage): Promise<TaskOutcome> {
  const limit = message.maxResultBytes;
  const request: TaskRequestInfo = { ...message.request, createdAt: new Date(message.request.createdAt) };
  let options: unknown;
  try {
    options = parseOptions(message.options, message.maxOptionsBytes);
  } catch (error) {
    // The row's options are wrong, not the code: the message says what, a stack of the parser would not.
    if (error instanceof TaskRunnerError)
      return { type: 'error', kind: 'options', text: capText(error.message, limit) };
    return failure('options', error, limit);
  }
  let TaskClass;
  try {
    TaskClass = await loadTaskClass(message.file, request.taskClassName);
  } catch (error) {
    return failure('load', error, limit);
  }
  let value: unknown;
  try {
    value = await new TaskClass(options, request).run();
  } catch (error) {
    return failure('task', error, limit);
  }
  try {
    return { type: 'result', resultText: encodeResult(value, limit) };
  } catch (error) {
    // A result refused by its kind or size: the message says why; the encoder's stack would not.
    if (error instanceof TaskRunnerError) return { type: 'error', kind: 'result', text: capText(error.message, limit) };
    return failure('result', error, limit);
  }
}
