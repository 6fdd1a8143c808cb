/**
 * Entry of a thread-mode worker (piscina loads it once per thread and calls the default export
 * for each batch of tries, see ../thread-batch.ts). It runs the batch's tries one after another
 * with the same transport-free runtime as a child process, skipping any the launcher took back
 * before it got to them, and posts each one's outcome (with its own thread id, its heap size and
 * what the try wrote) on its parent port as soon as the try ends. Where and when a try
 * started, and the processes it started, go to the try's shared slot (see ../thread-slots.ts) as
 * they happen.
 *
 * Between two tries the thread turns its event loop once, so what the earlier try left ready to
 * run (an immediate, a settled promise) runs then rather than inside the next try.
 *
 * Installed at load, before any task: the child_process wrappers (thread-spawns.ts) and a guard
 * on `process.kill` (a thread lives in the launcher: "its own" process is the launcher). Nothing
 * else: an exception escaping a task (a throwing timer, a rejection nobody handles) ends this
 * thread, and the pool reports the try as crashed.
 */
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { describeError } from '../../errors.js';
import { decodeRunMessage, type TaskOutcome } from '../protocol.js';
import { decodeThreadBatch, type BatchResult } from '../thread-batch.js';
import type { ThreadResult } from '../thread-result.js';
import { endProcesses, ThreadSlots, type ThreadSlotsData } from '../thread-slots.js';
import type { ThreadGroupsData } from '../try-cgroup.js';
import { runTask } from './run-task.js';
import { guardProcessKill } from './signal-guard.js';
import { ThreadTryGroups } from './thread-cgroup.js';
import { withCapturedOutput } from './thread-output.js';
import { trackThreadSpawns } from './thread-spawns.js';

const data = workerData as { slots: ThreadSlotsData; cgroup?: ThreadGroupsData | null };
const slots = new ThreadSlots(data.slots);
/** A control group per try that starts a process, where the launcher has them. */
const groups = data.cgroup == null ? null : new ThreadTryGroups(data.cgroup);
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
trackThreadSpawns(
  (pid) => {
    groups?.started(pid);
    return slot >= 0 && slots.addProcess(slot, pid);
  },
  () => groups?.beforeSpawn(),
);

async function runOne(run: unknown): Promise<ThreadResult> {
  const { value: message, output } = await withCapturedOutput(async (): Promise<TaskOutcome> => {
    try {
      return await runTask(decodeRunMessage(run));
    } catch (error) {
      // Only a malformed request gets here: runTask itself turns every failure into an outcome.
      return { type: 'error', kind: 'load', text: describeError(error) };
    }
  });
  return { message, threadId, peakMemoryBytes: getHeapStatistics().total_heap_size, output };
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export default async function runBatch(task: unknown): Promise<number> {
  const entries = decodeThreadBatch(task);
  let ran = 0;
  for (const entry of entries) {
    if (ran > 0) await nextTurn();
    if (!slots.begin(entry.slot, entry.ticket, threadId, performance.timeOrigin + performance.now())) continue; // taken back
    ran++;
    slot = entry.slot;
    groups?.begin(entry.slot, entry.ticket);
    let result: ThreadResult;
    try {
      result = await runOne(entry.run);
    } finally {
      endProcesses(slots.processes(entry.slot));
      groups?.end();
      slot = -1;
    }
    const posted: BatchResult = { type: 'thread result', slot: entry.slot, ticket: entry.ticket, result };
    parentPort!.postMessage(posted);
    slots.finish(entry.slot);
  }
  return ran;
}
