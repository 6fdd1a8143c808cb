/**
 * The protocol between the launcher and a child: newline-delimited JSON on a socket pair of its
 * own (the child's fd 3), not Node's IPC channel. Node's channel parses whatever arrives inside
 * its own read handler, where a malformed line throws out of the launcher's event loop: a task
 * writing garbage to the descriptor would kill the launcher. Here every line is decoded by
 * {@link MessageLines}, and a bad one is only a protocol violation of that child.
 *
 * Messages are a discriminated union with decoders on both sides. Every report a child sends
 * carries the key the launcher gave it in `init`, before any task code was loaded: the runtime
 * keeps it in its module scope, where a task cannot read it, so a line a task writes to the
 * descriptor itself is told apart from the runtime's and never ends a try.
 */
import { TaskRunnerError } from '../errors.js';
import { isRecord, previewJson } from '../shared/values.js';

/** The request as the child sees it (dates as ISO text: the channel carries JSON). */
export interface WireRequest {
  id: string;
  taskClassName: string;
  tries: number;
  tryLimit: number;
  queue: string;
  priority: number;
  createdAt: string;
}

/** Launcher → child, first message: the key reports must carry, and how the child works. */
export interface InitMessage {
  type: 'init';
  key: string;
  /** The child may run several tries: it ends what each try started before reporting it. */
  reuse: boolean;
  /** Report resident memory with each try (costs a read of /proc; only for an RSS ceiling). */
  reportRss: boolean;
}

/** Launcher → child: run one task. */
export interface RunMessage {
  type: 'run';
  request: WireRequest;
  /** Absolute path resolved by the launcher's registry; never taken from the database. */
  file: string;
  options: string | null;
  maxOptionsBytes: number;
  maxResultBytes: number;
  /** Exit once this task is reported (the child's last task); otherwise wait for the next. */
  exitAfter?: boolean;
  /** The try's lease deadline (`monotonicMs()`): the child ends itself and its process group then. */
  fenceAtMs?: number;
}

/**
 * Launcher → child, while a try runs: a renewal the database accepted moved the lease deadline
 * to `fenceAtMs` (`monotonicMs()`). Sent after each renewal; the child keeps the latest.
 */
export interface LeaseMessage {
  type: 'lease';
  fenceAtMs: number;
}

export type ParentMessage = InitMessage | RunMessage | LeaseMessage;

/**
 * Milliseconds on the clock the launcher and its children share: Node's high-resolution time is
 * the system's monotonic clock (CLOCK_MONOTONIC on Linux), the same in every process of the host
 * and never set back, so a deadline the launcher computes holds as it is in the child, however
 * late the child reads it.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * The line a child writes on stderr as it ends its try at a lease deadline (`at`, as the launcher
 * sent it): its launcher records that try as fenced, not crashed, when `at` is a deadline it sent.
 */
export function fenceNotice(at: number): string {
  return `[cw-task-runner] lease deadline ${at} passed unconfirmed: this try's processes end now`;
}

/** The deadline named by the last fence notice in `stderr`, or null. */
export function fenceNoticeDeadline(stderr: string): number | null {
  const found = [...stderr.matchAll(/\[cw-task-runner\] lease deadline ([0-9.e+]+) passed unconfirmed/g)].at(-1);
  return found === undefined ? null : Number(found[1]);
}

/** The child's memory after a task: resident now (0 when not asked for) and the peak so far, in bytes. */
export interface ChildMemory {
  rss: number;
  maxRss: number;
}

/** Why a try failed, as the child saw it. `options` failures are permanent. */
export type FailureKind = 'task' | 'load' | 'options' | 'result';

/** A try's end as the runtime states it (without the channel's key and memory). */
export type TaskOutcome =
  { type: 'result'; resultText: string | null } | { type: 'error'; kind: FailureKind; text: string };

/** Child → launcher. */
export type ChildMessage =
  { type: 'ready'; key: string } | (TaskOutcome & { key: string; memory?: ChildMemory; last?: boolean });

const failureKinds: ReadonlySet<string> = new Set(['task', 'load', 'options', 'result']);

function invalid(what: string, message: unknown): TaskRunnerError {
  return new TaskRunnerError('PROTOCOL_INVALID', `invalid ${what} message: ${previewJson(message, 200)}`);
}

function decodeMemory(value: unknown): ChildMemory | undefined | null {
  if (value === undefined) return undefined;
  if (isRecord(value) && typeof value.rss === 'number' && typeof value.maxRss === 'number') {
    return { rss: value.rss, maxRss: value.maxRss };
  }
  return null;
}

/** A try's outcome as the runtime produced it (also what a worker thread hands back). */
export function decodeTaskOutcome(message: unknown): TaskOutcome {
  if (isRecord(message)) {
    if (message.type === 'result' && (message.resultText === null || typeof message.resultText === 'string')) {
      return { type: 'result', resultText: message.resultText };
    }
    if (
      message.type === 'error' &&
      typeof message.kind === 'string' &&
      failureKinds.has(message.kind) &&
      typeof message.text === 'string'
    ) {
      return { type: 'error', kind: message.kind as FailureKind, text: message.text };
    }
  }
  throw invalid('task outcome', message);
}

/** Decodes a child's line; throws PROTOCOL_INVALID for anything malformed. The key is checked by the caller. */
export function decodeChildMessage(message: unknown): ChildMessage {
  if (!isRecord(message) || typeof message.key !== 'string') throw invalid('child', message);
  if (message.type === 'ready') return { type: 'ready', key: message.key };
  const memory = decodeMemory(message.memory);
  if (memory === null || !(message.last === undefined || typeof message.last === 'boolean'))
    throw invalid('child', message);
  return {
    ...decodeTaskOutcome(message),
    key: message.key,
    ...(memory === undefined ? {} : { memory }),
    ...(message.last === true ? { last: true } : {}),
  };
}

function decodeRequest(request: unknown): WireRequest | null {
  if (
    !isRecord(request) ||
    typeof request.id !== 'string' ||
    typeof request.taskClassName !== 'string' ||
    typeof request.tries !== 'number' ||
    typeof request.tryLimit !== 'number' ||
    typeof request.queue !== 'string' ||
    typeof request.priority !== 'number' ||
    typeof request.createdAt !== 'string'
  ) {
    return null;
  }
  const { id, taskClassName, tries, tryLimit, queue, priority, createdAt } = request;
  return { id, taskClassName, tries, tryLimit, queue, priority, createdAt };
}

/** Decodes a run message (the fork runtime and the thread runtime both receive these). */
export function decodeRunMessage(message: unknown): RunMessage {
  if (isRecord(message) && message.type === 'run') {
    const request = decodeRequest(message.request);
    const { file, options, maxOptionsBytes, maxResultBytes, exitAfter, fenceAtMs } = message;
    if (
      request !== null &&
      typeof file === 'string' &&
      (options === null || typeof options === 'string') &&
      typeof maxOptionsBytes === 'number' &&
      typeof maxResultBytes === 'number' &&
      (exitAfter === undefined || typeof exitAfter === 'boolean') &&
      (fenceAtMs === undefined || typeof fenceAtMs === 'number')
    ) {
      const run: RunMessage = {
        type: 'run',
        request,
        file,
        options,
        maxOptionsBytes,
        maxResultBytes,
        exitAfter: exitAfter ?? true,
      };
      if (fenceAtMs !== undefined) run.fenceAtMs = fenceAtMs;
      return run;
    }
  }
  throw invalid('launcher', message);
}

export function decodeParentMessage(message: unknown): ParentMessage {
  if (isRecord(message) && message.type === 'init') {
    if (
      typeof message.key === 'string' &&
      typeof message.reuse === 'boolean' &&
      typeof message.reportRss === 'boolean'
    ) {
      return { type: 'init', key: message.key, reuse: message.reuse, reportRss: message.reportRss };
    }
    throw invalid('launcher', message);
  }
  if (isRecord(message) && message.type === 'lease') {
    if (typeof message.fenceAtMs === 'number') return { type: 'lease', fenceAtMs: message.fenceAtMs };
    throw invalid('launcher', message);
  }
  return decodeRunMessage(message);
}

/**
 * Splits a channel's text into JSON messages, one per line. A line that is not JSON, or a line
 * growing past `maxLineChars` with no newline, is reported once to `onViolation` and the reader
 * stops: the peer is no longer trusted.
 */
export class MessageLines {
  readonly #onMessage: (message: unknown) => void;
  readonly #onViolation: (reason: string) => void;
  readonly #maxLineChars: number;
  #partial = '';
  #broken = false;

  constructor(params: { maxLineChars: number; onMessage(message: unknown): void; onViolation(reason: string): void }) {
    this.#onMessage = params.onMessage;
    this.#onViolation = params.onViolation;
    this.#maxLineChars = params.maxLineChars;
  }

  push(chunk: string): void {
    if (this.#broken) return;
    let start = 0;
    let newline = chunk.indexOf('\n');
    while (newline >= 0) {
      const line =
        this.#partial.length === 0 ? chunk.slice(start, newline) : this.#partial + chunk.slice(start, newline);
      this.#partial = '';
      if (!this.#line(line)) return;
      start = newline + 1;
      newline = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) this.#partial += chunk.slice(start);
    if (this.#partial.length > this.#maxLineChars) this.#violate(`a message over ${this.#maxLineChars} characters`);
  }

  #line(line: string): boolean {
    if (line.length === 0) return true;
    if (line.length > this.#maxLineChars) {
      this.#violate(`a message over ${this.#maxLineChars} characters`);
      return false;
    }
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      this.#violate(`a line that is not JSON: ${line.slice(0, 120)}`);
      return false;
    }
    this.#onMessage(message);
    return !this.#broken;
  }

  #violate(reason: string): void {
    this.#broken = true;
    this.#partial = '';
    this.#onViolation(reason);
  }
}
