/**
 * Entry of a thread-mode worker (piscina loads it once per thread and calls the default export
 * for each try). It runs the try with the same transport-free runtime as a child process and
 * answers with the outcome, its own thread id, its heap size and what the try wrote. Where and
 * when the try started, and the processes it started, go to the try's shared slot (see
 * ../thread-slots.ts) as they happen.
 *
 * Installed at load, before any task: the child_process wrappers (thread-spawns.ts) and a guard
 * on `process.kill` (a thread lives in the launcher: "its own" process is the launcher). Nothing
 * else: an exception escaping a task (a throwing timer, a rejection nobody handles) ends this
 * thread, and the pool reports the try as crashed.
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { threadId, workerData } from 'node:worker_threads';
import { describeError } from '../../errors.js';
import { isRecord } from '../../shared/values.js';
import { decodeRunMessage, type TaskOutcome } from '../protocol.js';
import type { ThreadResult } from '../thread-result.js';
import { endProcesses, ThreadSlots, type ThreadSlotsData } from '../thread-slots.js';
import { runTask } from './run-task.js';
import { guardProcessKill } from './signal-guard.js';
import { withCapturedOutput } from './thread-output.js';
import { trackThreadSpawns } from './thread-spawns.js';

const slots = new ThreadSlots((workerData as { slots: ThreadSlotsData }).slots);
/** The slot of the try running now; -1 between tries. */
let slot = -1;

function launcherGroup(): number | null {
  try {
    const stat = readFileSync('/proc/self/stat', 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ', 3)[2]);
  } catch {
    return null;
  }
}

const group = launcherGroup();
guardProcessKill({
  refused: [process.pid, 0, -1, process.ppid, ...(group === null ? [] : [-group])],
  what: 'a thread-mode task runs inside the launcher and may not signal its process, its group, its parent or every process',
});
trackThreadSpawns((pid) => slot >= 0 && slots.addProcess(slot, pid));

/** What piscina is given for one try: the run message and the try's slot. */
export interface ThreadTask {
  slot: number;
  run: unknown;
}

export default async function runInThread(task: unknown): Promise<ThreadResult> {
  if (!isRecord(task) || typeof task.slot !== 'number') throw new Error('malformed thread task');
  slot = task.slot;
  slots.begin(slot, threadId, performance.timeOrigin + performance.now());
  try {
    const { value: message, output } = await withCapturedOutput(async (): Promise<TaskOutcome> => {
      try {
        return await runTask(decodeRunMessage(task.run));
      } catch (error) {
        // Only a malformed request gets here: runTask itself turns every failure into an outcome.
        return { type: 'error', kind: 'load', text: describeError(error) };
      }
    });
    return { message, threadId, peakMemoryBytes: getHeapStatistics().total_heap_size, output };
  } finally {
    endProcesses(slots.processes(slot));
    slot = -1;
  }
}
