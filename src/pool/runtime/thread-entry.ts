/**
 * Entry of a thread-mode worker (piscina loads it once per thread and calls the default export
 * for each try). It runs the try with the same transport-free runtime as a forked child and
 * answers with the outcome, its own thread id, its heap size and what the try wrote.
 *
 * Nothing is installed at import: an exception escaping a task (a throwing timer, a rejection
 * nobody handles) ends this thread, and the pool reports the try as crashed.
 */
import { getHeapStatistics } from 'node:v8';
import { threadId } from 'node:worker_threads';
import { describeError } from '../../errors.js';
import { decodeParentMessage, type ChildMessage } from '../protocol.js';
import type { ThreadResult } from '../thread-result.js';
import { runTask } from './run-task.js';
import { withCapturedOutput } from './thread-output.js';

export default async function runInThread(task: unknown): Promise<ThreadResult> {
  const { value: message, output } = await withCapturedOutput(async (): Promise<ChildMessage> => {
    try {
      return await runTask(decodeParentMessage(task));
    } catch (error) {
      // Only a malformed request gets here: runTask itself turns every failure into a message.
      return { type: 'error', kind: 'load', text: describeError(error) };
    }
  });
  return { message, threadId, peakMemoryBytes: getHeapStatistics().total_heap_size, output };
}
