/**
 * What a worker thread hands back for one try: the runtime's outcome, the thread it ran on, and
 * the thread's heap. It crosses a thread boundary, so the launcher decodes it like any message.
 */
import { TaskRunnerError } from '../errors.js';
import { isRecord, previewJson } from '../shared/values.js';
import { decodeTaskOutcome, type TaskOutcome } from './protocol.js';

/** What one try wrote, capped (see `maxThreadOutputBytes`); `droppedBytes` were over the cap. */
export interface ThreadOutput {
  stdout: string;
  stderr: string;
  droppedBytes: number;
}

export interface ThreadResult {
  /** `result` or `error`, exactly as `runTask` produced it. */
  message: TaskOutcome;
  /** `threadId` of the worker that ran the try. */
  threadId: number;
  /**
   * The worker isolate's V8 heap as committed when the try ended (`total_heap_size`). V8 grows
   * that figure with use and gives memory back slowly, so it stands for the thread's high-water
   * mark; a thread runs many tries, so it also counts what earlier tries left behind.
   */
  peakMemoryBytes: number;
  /** What the try wrote to stdout and stderr. */
  output: ThreadOutput;
}

const noOutput: ThreadOutput = Object.freeze({ stdout: '', stderr: '', droppedBytes: 0 });

function decodeOutput(value: unknown): ThreadOutput | null {
  if (value === undefined) return noOutput;
  if (typeof value !== 'object' || value === null) return null;
  const { stdout, stderr, droppedBytes } = value as Record<string, unknown>;
  if (typeof stdout !== 'string' || typeof stderr !== 'string' || typeof droppedBytes !== 'number') return null;
  return { stdout, stderr, droppedBytes };
}

/** Checks a worker's answer; anything that is not a {@link ThreadResult} is a protocol error. */
export function decodeThreadResult(value: unknown): ThreadResult {
  if (isRecord(value)) {
    const { message, threadId, peakMemoryBytes } = value;
    const output = decodeOutput(value.output);
    if (Number.isInteger(threadId) && typeof peakMemoryBytes === 'number' && output !== null) {
      return { message: decodeTaskOutcome(message), threadId: threadId as number, peakMemoryBytes, output };
    }
  }
  throw new TaskRunnerError('PROTOCOL_INVALID', `invalid thread result: ${previewJson(value, 200)}`);
}
