/**
 * The IPC protocol between the launcher and a child. Messages are a discriminated union; the
 * receiving side decodes everything it gets, so a malformed or foreign message is an error
 * with a name, never an `any` passed along.
 */
import { TaskRunnerError } from '../errors.js';

/** The request as the child sees it (dates as ISO text: the IPC channel carries JSON). */
export interface WireRequest {
  id: string;
  taskClassName: string;
  tries: number;
  tryLimit: number;
  queue: string;
  priority: number;
  createdAt: string;
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
}

export type ParentMessage = RunMessage;

/** The child's memory after a task: resident now and the peak so far, in bytes. */
export interface ChildMemory {
  rss: number;
  maxRss: number;
}

/** Why a try failed, as the child saw it. `options` failures are permanent. */
export type FailureKind = 'task' | 'load' | 'options' | 'result';

/** Child → launcher. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'result'; resultText: string | null; memory?: ChildMemory; last?: boolean }
  | { type: 'error'; kind: FailureKind; text: string; memory?: ChildMemory; last?: boolean };

const failureKinds: ReadonlySet<string> = new Set(['task', 'load', 'options', 'result']);

function invalid(what: string, message: unknown): TaskRunnerError {
  let shown: string;
  try {
    shown = JSON.stringify(message)?.slice(0, 200) ?? String(message);
  } catch {
    shown = String(message);
  }
  return new TaskRunnerError('PROTOCOL_INVALID', `invalid ${what} message: ${shown}`);
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function decodeMemory(value: unknown): ChildMemory | undefined | null {
  if (value === undefined) return undefined;
  if (isRecord(value) && typeof value.rss === 'number' && typeof value.maxRss === 'number') {
    return { rss: value.rss, maxRss: value.maxRss };
  }
  return null;
}

export function decodeChildMessage(message: unknown): ChildMessage {
  if (!isRecord(message)) throw invalid('child', message);
  const memory = decodeMemory(message.memory);
  if (memory === null) throw invalid('child', message);
  if (!(message.last === undefined || typeof message.last === 'boolean')) throw invalid('child', message);
  const withMemory = { ...(memory === undefined ? {} : { memory }), ...(message.last === true ? { last: true } : {}) };
  switch (message.type) {
    case 'ready':
      return { type: 'ready' };
    case 'result':
      if (message.resultText === null || typeof message.resultText === 'string') {
        return { type: 'result', resultText: message.resultText, ...withMemory };
      }
      break;
    case 'error':
      if (typeof message.kind === 'string' && failureKinds.has(message.kind) && typeof message.text === 'string') {
        return { type: 'error', kind: message.kind as FailureKind, text: message.text, ...withMemory };
      }
      break;
  }
  throw invalid('child', message);
}

export function decodeParentMessage(message: unknown): ParentMessage {
  if (!isRecord(message) || message.type !== 'run') throw invalid('launcher', message);
  const { request, file, options, maxOptionsBytes, maxResultBytes, exitAfter } = message;
  if (
    !isRecord(request) ||
    typeof request.id !== 'string' ||
    typeof request.taskClassName !== 'string' ||
    typeof request.tries !== 'number' ||
    typeof request.tryLimit !== 'number' ||
    typeof request.queue !== 'string' ||
    typeof request.priority !== 'number' ||
    typeof request.createdAt !== 'string' ||
    typeof file !== 'string' ||
    !(options === null || typeof options === 'string') ||
    typeof maxOptionsBytes !== 'number' ||
    typeof maxResultBytes !== 'number' ||
    !(exitAfter === undefined || typeof exitAfter === 'boolean')
  ) {
    throw invalid('launcher', message);
  }
  return {
    type: 'run',
    request: {
      id: request.id,
      taskClassName: request.taskClassName,
      tries: request.tries,
      tryLimit: request.tryLimit,
      queue: request.queue,
      priority: request.priority,
      createdAt: request.createdAt,
    },
    file,
    options,
    maxOptionsBytes,
    maxResultBytes,
    exitAfter: exitAfter ?? true,
  };
}
