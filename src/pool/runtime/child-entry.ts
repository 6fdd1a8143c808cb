/**
 * Entry of a child process. It talks to the launcher on fd 3 (see ../protocol.ts): it waits for
 * `init` (the key its reports carry, and whether it may run several tries), says `ready`, then
 * runs the tasks it is sent one at a time and reports each with its memory; after a run marked
 * `exitAfter` it exits once the launcher has closed the channel (see `leave`). It ends itself
 * when the channel closes, so a child whose launcher died does not run on unsupervised, and a
 * retired child simply goes.
 *
 * It starts light: no database driver, the YAML parser only when a try's options need it, and no
 * socket for a child that runs one try (fresh and spare children): it reads its messages and
 * writes its report with blocking calls (see blocking-channel.ts), and while the try runs it
 * checks every 200 ms that its parent is still the launcher that started it (an orphan is
 * re-parented). It cannot wait on the channel then: a read left blocked on libuv's thread pool
 * would hold the process's exit until the launcher closed the channel. A reused child waits
 * between tries with what earlier tries left running, so after `init` it moves the channel to a
 * `net.Socket` and ends itself when the channel closes.
 *
 * A try is fenced by its launcher's lease: the run message carries a deadline (`fenceAtMs`, on
 * the monotonic clock the launcher shares) and `lease` messages move it after each renewal the
 * database accepted. When it passes, the child ends the try and its process group at once
 * (SIGKILL): a launcher frozen or cut off from its database cannot stop it, and once the lease
 * has expired another launcher may start the request again. A child running its one try reads
 * no channel (see above), so it moves to the socket halfway to its first deadline: a try shorter
 * than that never pays for the socket.
 */
import type { Socket } from 'node:net';
import { describeError } from '../../errors.js';
import {
  decodeParentMessage,
  fenceNotice,
  MessageLines,
  monotonicMs,
  type ChildMessage,
  type TaskOutcome,
} from '../protocol.js';
import { fs } from '../../shared/builtins.js';
import { BlockingChannel } from './blocking-channel.js';
import { afterOutputWritten, boundOutput } from './child-output.js';
import { endLeftovers, watchSpawns } from './descendants.js';
import { capText, runTask } from './run-task.js';
import { guardProcessKill } from './signal-guard.js';

/** The launcher never sends more than a run message holds: options are capped long before this. */
const maxParentLineChars = 256 * 1024 * 1024;

const blocking = new BlockingChannel(3, maxParentLineChars);
/** Taken before the guard below wraps it: the fence signals this child's own group. */
const kill = process.kill.bind(process);
/** The launcher, read before anything can have gone wrong with it. */
const launcherPid = process.ppid;
/** The channel as a socket, once this child uses one (a reused child; see the top). */
let socket: Socket | null = null;

/** Set by `init`; a task cannot read this module's scope, so it cannot sign a report. */
let key: string | null = null;
let reuse = false;
let reportRss = false;
/** The task running now: its text cap, whether the child exits after it, whether it reported. */
let current: { maxBytes: number; exitAfter: boolean; reported: boolean } | null = null;

function send(message: ChildMessage, then?: () => void): void {
  const text = `${JSON.stringify(message)}\n`;
  if (socket !== null) {
    socket.write(text, then);
    return;
  }
  if (!blocking.write(text)) channelEnded();
  then?.();
}

/** The exit code of a child that sent its last report and waits for the channel to close. */
let leavingCode: number | null = null;

/** The launcher closed the channel or went: a child in the middle of a try says so by its exit code. */
function channelEnded(): void {
  process.exit(leavingCode ?? (current === null || current.reported ? 0 : 70));
}

/**
 * Exits after the last report, once the launcher has closed the channel (it does on reading a
 * report marked `last`), not at once: a message the launcher wrote to a child that had already
 * exited (a lease renewal's) failed with EPIPE, and Node's socket, destroyed by the failed write,
 * dropped the report still unread in it, and the try was recorded CRASHED "exited with code 0
 * without reporting a result".
 * Waiting keeps the channel open until the report is read; the launcher ends a child that does
 * not go (the pool's retire), and a launcher that died closes the channel with it.
 */
function leave(code: number): void {
  leavingCode = code;
  if (socket === null) {
    for (;;) {
      const got = blocking.readLines();
      if (got.kind === 'end' || got.kind === 'too long') process.exit(code);
      // A lease message sent before the launcher read the report asks nothing of a child that leaves.
      if (got.kind === 'would block') break;
    }
    void useSocket();
  }
  // With a socket, its 'close' ends the child (channelEnded).
}

/**
 * The peak resident size is read again when 20 ms have passed since the last reading, not after
 * every try: it only grows, a reading costs a system call and an object of sixteen fields, and a
 * child running a thousand short tries a second would spend a good part of each try on it.
 */
let peak = { maxRss: 0, at: -Infinity };
function memory(): { rss: number; maxRss: number } {
  const now = Date.now(); // performance.now() would load perf_hooks: ten modules, ~2 ms of a child's start
  if (now - peak.at >= 20) peak = { maxRss: process.resourceUsage().maxRSS * 1024, at: now };
  // A reading up to 20 ms old can predate what this try took: the peak is at least what is resident now.
  const rss = reportRss ? process.memoryUsage.rss() : 0;
  return { rss, maxRss: Math.max(peak.maxRss, rss) };
}

/** The running try's lease deadline (`monotonicMs()`) and its timer; Infinity: no fence. */
let fenceAtMs = Number.POSITIVE_INFINITY;
let fenceTimer: NodeJS.Timeout | null = null;

/** Moves the deadline later (never earlier: a renewal's message may arrive after a later one). */
function extendFence(at: number | undefined): void {
  if (at === undefined || current === null || current.reported || (fenceTimer !== null && at <= fenceAtMs)) return;
  const first = fenceTimer === null;
  fenceAtMs = at;
  armFence();
  // A child that reads no channel now listens from halfway to its first deadline on.
  if (first && socket === null)
    setTimeout(
      () => {
        if (current !== null && !current.reported && socket === null) void useSocket();
      },
      Math.max(0, (at - monotonicMs()) / 2),
    ).unref();
}

function armFence(): void {
  if (fenceTimer !== null) clearTimeout(fenceTimer);
  fenceTimer = setTimeout(fence, Math.max(0, fenceAtMs - monotonicMs()));
  fenceTimer.unref();
}

function clearFence(): void {
  if (fenceTimer !== null) clearTimeout(fenceTimer);
  fenceTimer = null;
  fenceAtMs = Number.POSITIVE_INFINITY;
}

/** The deadline passed unconfirmed: the try and every process in its group end now. */
function fence(): void {
  if (current === null || current.reported) return;
  if (monotonicMs() < fenceAtMs) {
    armFence();
    return;
  }
  // Said on stderr, written at once (no stream buffer to lose): the launcher tells this fence
  // from a crash by it, with the deadline it sent (so a task cannot claim a fence it did not get).
  try {
    fs.writeSync(2, `\n${fenceNotice(fenceAtMs)}\n`);
  } catch {
    // stderr closed: the launcher then records a crash by SIGKILL
  }
  try {
    kill(-process.pid, 'SIGKILL');
  } catch {
    kill(process.pid, 'SIGKILL');
  }
}

/** Reports the current task's end once; a child that may no longer be trusted exits after it. */
function report(outcome: TaskOutcome, exitAfterReport: boolean): void {
  const task = current;
  if (task === null || task.reported || key === null) return;
  task.reported = true;
  clearFence();
  // A try's leftovers that cannot be found (a permission policy hides /proc) leave with the child.
  const exit = exitAfterReport || task.exitAfter || (reuse && !endLeftovers());
  // The try's output goes out before its report (child-output.ts): exiting drops what still waits.
  const signed = key;
  afterOutputWritten(() =>
    send({ ...outcome, key: signed, memory: memory(), last: exit }, () => {
      if (exit) leave(exitAfterReport ? 1 : 0);
    }),
  );
  if (exit) return;
  current = null;
  // Another try may come: without a socket nothing would read it.
  if (socket === null) void useSocket();
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
  if (message.type === 'lease') {
    extendFence(message.fenceAtMs);
    return;
  }
  if (key === null || current !== null) process.exit(71); // one task at a time, after init
  current = { maxBytes: message.maxResultBytes, exitAfter: message.exitAfter ?? true, reported: false };
  extendFence(message.fenceAtMs);
  void runTask(message).then((outcome) => report(outcome, false));
}

const lines = new MessageLines({ maxLineChars: maxParentLineChars, onMessage, onViolation: () => process.exit(71) });

/** Moves the channel to a socket: what was read and not yet a line goes first. */
async function useSocket(): Promise<void> {
  // Taken, not imported, where Node allows it: an import() would start the ES module loader.
  const getBuiltin = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  const { Socket } =
    (getBuiltin?.call(process, 'node:net') as typeof import('node:net') | undefined) ?? (await import('node:net'));
  socket = new Socket({ fd: 3, readable: true, writable: true });
  socket.setEncoding('utf8');
  // The launcher gone mid-write must not become an uncaught error: 'close' below handles it.
  socket.on('error', () => undefined);
  lines.push(blocking.unread());
  socket.on('data', (chunk: string) => lines.push(chunk));
  socket.on('close', channelEnded);
}

/**
 * While a try runs without a socket: the child ends itself once its launcher is gone. The timer
 * also keeps the child alive as the socket would, so a try that awaits what nothing will settle
 * waits for its timeout instead of ending the process unreported.
 */
function watchLauncher(): void {
  setInterval(() => {
    if (process.ppid !== launcherPid) channelEnded();
  }, 200);
}

guardProcessKill({ refused: [-1, process.ppid], what: 'a task may not signal its launcher or every process' });
boundOutput();
process.on('uncaughtException', (error) => failLoose('uncaught exception', error));
process.on('unhandledRejection', (reason) => failLoose('unhandled rejection', reason));

// Blocking reads until a try starts (a fresh or spare child) or `init` says the child is reused.
for (;;) {
  const got = blocking.readLines();
  if (got.kind === 'would block') break;
  if (got.kind === 'end') channelEnded();
  if (got.kind === 'too long') process.exit(71);
  if (got.kind === 'lines') lines.push(got.text);
  if (reuse || current !== null) break;
}
if (reuse || current === null) void useSocket();
else watchLauncher();
