/**
 * Entry of a child process. It talks to the launcher on fd 3 (see ../protocol.ts): it waits for
 * `init` (the key its reports carry, and whether it may run several tries), says `ready`, then
 * runs the tasks it is sent one at a time and reports each with its memory; after a run marked
 * `exitAfter` it exits. It ends itself when the channel closes, so a child whose launcher died
 * does not run on unsupervised, and a retired child simply goes.
 *
 * It starts light: no database driver, and the YAML parser only when a try's options need it.
 */
import { Socket } from 'node:net';
import { describeError } from '../../errors.js';
import { decodeParentMessage, MessageLines, type ChildMessage, type TaskOutcome } from '../protocol.js';
import { endLeftovers, watchSpawns } from './descendants.js';
import { capText, runTask } from './run-task.js';
import { guardProcessKill } from './signal-guard.js';

/** The launcher never sends more than a run message holds: options are capped long before this. */
const maxParentLineChars = 256 * 1024 * 1024;

const channel = new Socket({ fd: 3, readable: true, writable: true });
channel.setEncoding('utf8');
// The launcher gone mid-write must not become an uncaught error: 'close' below handles it.
channel.on('error', () => undefined);

/** Set by `init`; a task cannot read this module's scope, so it cannot sign a report. */
let key: string | null = null;
let reuse = false;
let reportRss = false;
/** The task running now: its text cap, whether the child exits after it, whether it reported. */
let current: { maxBytes: number; exitAfter: boolean; reported: boolean } | null = null;

function send(message: ChildMessage, then?: () => void): void {
  channel.write(`${JSON.stringify(message)}\n`, then);
}

/**
 * The peak resident size is read again when 20 ms have passed since the last reading, not after
 * every try: it only grows, a reading costs a system call and an object of sixteen fields, and a
 * child running a thousand short tries a second would spend a good part of each try on it.
 */
let peak = { maxRss: 0, at: -Infinity };
function memory(): { rss: number; maxRss: number } {
  const now = performance.now();
  if (now - peak.at >= 20) peak = { maxRss: process.resourceUsage().maxRSS * 1024, at: now };
  return { rss: reportRss ? process.memoryUsage.rss() : 0, maxRss: peak.maxRss };
}

/** Reports the current task's end once; a child that may no longer be trusted exits after it. */
function report(outcome: TaskOutcome, exitAfterReport: boolean): void {
  const task = current;
  if (task === null || task.reported || key === null) return;
  task.reported = true;
  // A try's leftovers that cannot be found (a permission policy hides /proc) leave with the child.
  const exit = exitAfterReport || task.exitAfter || (reuse && !endLeftovers());
  send({ ...outcome, key, memory: memory(), last: exit }, () => {
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

function onMessage(raw: unknown): void {
  let message;
  try {
    message = decodeParentMessage(raw);
  } catch (error) {
    current = { maxBytes: 64 * 1024, exitAfter: true, reported: false };
    report({ type: 'error', kind: 'load', text: describeError(error) }, true);
    return;
  }
  if (message.type === 'init') {
    if (key !== null) process.exit(71); // said once: a second one means a broken launcher
    ({ key, reuse, reportRss } = message);
    if (reuse) watchSpawns();
    send({ type: 'ready', key });
    return;
  }
  if (key === null || current !== null) process.exit(71); // one task at a time, after init
  current = { maxBytes: message.maxResultBytes, exitAfter: message.exitAfter ?? true, reported: false };
  void runTask(message).then((outcome) => report(outcome, false));
}

const lines = new MessageLines({ maxLineChars: maxParentLineChars, onMessage, onViolation: () => process.exit(71) });
channel.on('data', (chunk: string) => lines.push(chunk));
channel.on('close', () => process.exit(current === null || current.reported ? 0 : 70));

guardProcessKill({ refused: [-1, process.ppid], what: 'a task may not signal its launcher or every process' });
process.on('uncaughtException', (error) => failLoose('uncaught exception', error));
process.on('unhandledRejection', (reason) => failLoose('unhandled rejection', reason));
