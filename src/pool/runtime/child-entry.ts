/**
 * Entry of a forked child. It reports `ready` once loaded, then runs the tasks it is sent one at
 * a time, reporting each with its memory; after a run marked `exitAfter` it exits. It ends itself
 * when the launcher's IPC channel closes, so a child whose launcher died does not run on
 * unsupervised, and a retired child simply goes.
 *
 * The IPC channel is the launcher's alone: `process.send` is taken away before any task loads,
 * so task code cannot forge a report or flood the launcher through it.
 */
import { describeError } from '../../errors.js';
import { decodeParentMessage, type ChildMessage } from '../protocol.js';
import { capText, runTask } from './run-task.js';

const send = process.send?.bind(process);
process.send = undefined;

/** The task running now: its text cap, whether the child exits after it, whether it reported. */
let current: { maxBytes: number; exitAfter: boolean; reported: boolean } | null = null;

function memory(): { rss: number; maxRss: number } {
  return { rss: process.memoryUsage.rss(), maxRss: process.resourceUsage().maxRSS * 1024 };
}

/** Reports the current task's end once; a child that may no longer be trusted exits after it. */
function report(message: ChildMessage, exitAfterReport: boolean): void {
  const task = current;
  if (task === null || task.reported || send === undefined) return;
  task.reported = true;
  const exit = exitAfterReport || task.exitAfter;
  send({ ...message, memory: memory(), last: exit } as ChildMessage, () => {
    if (exit) process.exit(exitAfterReport ? 1 : 0);
  });
  if (!exit) current = null;
}

function failLoose(label: string, error: unknown): void {
  // Outside any task (a timer a finished task left behind) there is no one to tell: just go.
  if (current === null || current.reported) process.exit(1);
  report({ type: 'error', kind: 'task', text: capText(`${label}: ${describeError(error)}`, current.maxBytes) }, true);
  setTimeout(() => process.exit(1), 1000).unref();
}

process.on('disconnect', () => process.exit(current === null || current.reported ? 0 : 70));
process.on('uncaughtException', (error) => failLoose('uncaught exception', error));
process.on('unhandledRejection', (reason) => failLoose('unhandled rejection', reason));

process.on('message', (raw: unknown) => {
  let message;
  try {
    message = decodeParentMessage(raw);
  } catch (error) {
    current = { maxBytes: 64 * 1024, exitAfter: true, reported: false };
    report({ type: 'error', kind: 'load', text: describeError(error) }, true);
    return;
  }
  if (current !== null) process.exit(71); // one task at a time: a second one means a broken launcher
  current = { maxBytes: message.maxResultBytes, exitAfter: message.exitAfter ?? true, reported: false };
  void runTask(message).then((outcome) => report(outcome, false));
});

send?.({ type: 'ready' } satisfies ChildMessage);
