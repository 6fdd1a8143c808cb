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
}

export type ParentMessage = RunMessage;

/** Why a try failed, as the child saw it. `options` failures are permanent. */
export type FailureKind = 'task' | 'load' | 'options' | 'result';

/** Child → launcher. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'result'; resultText: string | null }
  | { type: 'error'; kind: FailureKind; text: string };

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

export function decodeChildMessage(message: unknown): ChildMessage {
  if (!isRecord(message)) throw invalid('child', message);
  switch (message.type) {
    case 'ready':
      return { type: 'ready' };
    case 'result':
      if (message.resultText === null || typeof message.resultText === 'string') {
        return { type: 'result', resultText: message.resultText };
      }
      break;
    case 'error':
      if (typeof message.kind === 'string' && failureKinds.has(message.kind) && typeof message.text === 'string') {
        return { type: 'error', kind: message.kind as FailureKind, text: message.text };
      }
      break;
  }
  throw invalid('child', message);
}

export function decodeParentMessage(message: unknown): ParentMessage {
  if (!isRecord(message) || message.type !== 'run') throw invalid('launcher', message);
  const { request, file, options, maxOptionsBytes, maxResultBytes } = message;
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
    typeof maxResultBytes !== 'number'
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
  };
}
