/**
 * Every error the runner throws or records carries a stable `code`, so callers and the CLI can
 * branch on it without parsing messages. Subclasses exist only where they carry data.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'TABLE_NAME_INVALID'
  | 'TASK_UNKNOWN'
  | 'TASK_INVALID'
  | 'OPTIONS_INVALID'
  | 'OPTIONS_TOO_LARGE'
  | 'RESULT_TOO_LARGE'
  | 'RESULT_INVALID'
  | 'REQUEST_NOT_FOUND'
  | 'DATABASE_UNAVAILABLE'
  | 'CHILD_CRASHED'
  | 'CHILD_START_FAILED'
  | 'PROTOCOL_INVALID'
  | 'ALREADY_RUNNING'
  | 'EMBEDDED_UNAVAILABLE'
  | 'STOPPED';

/** Base class of every error the runner produces. */
export class TaskRunnerError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TaskRunnerError';
    this.code = code;
  }
}

/** A config option failed validation; `field` names it (`concurrency`, `retryBackoff.baseMs`). */
export class ConfigError extends TaskRunnerError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('CONFIG_INVALID', `invalid config "${field}": ${message}`);
    this.name = 'ConfigError';
    this.field = field;
  }
}

const shownNameChars = 100;
const shownKnownNames = 50;

/** A task name that no file in the tasks directory provides. */
export class UnknownTaskError extends TaskRunnerError {
  readonly taskClassName: string;

  constructor(taskClassName: string, known: readonly string[]) {
    // The name may come from any row (a megabyte, say): the message shows its start only.
    const name =
      taskClassName.length <= shownNameChars
        ? taskClassName
        : `${taskClassName.slice(0, shownNameChars)}… (${taskClassName.length} characters)`;
    const shown = known.slice(0, shownKnownNames).join(', ');
    const list =
      known.length === 0
        ? '(none)'
        : known.length > shownKnownNames
          ? `${shown} and ${known.length - shownKnownNames} more`
          : shown;
    super('TASK_UNKNOWN', `unknown task class "${name}"; known tasks: ${list}`);
    this.name = 'UnknownTaskError';
    this.taskClassName = taskClassName;
  }
}

/** A child process that ended without reporting a result. */
export class ChildCrashError extends TaskRunnerError {
  readonly pid: number | null;
  readonly exitCode: number | null;
  readonly signal: string | null;

  constructor(pid: number | null, exitCode: number | null, signal: string | null, detail = '') {
    const how = signal !== null ? `was killed by ${signal}` : `exited with code ${exitCode}`;
    super('CHILD_CRASHED', `child process ${pid ?? '?'} ${how} without reporting a result${detail}`);
    this.name = 'ChildCrashError';
    this.pid = pid;
    this.exitCode = exitCode;
    this.signal = signal;
  }
}

/** Describes any thrown value as text with its stack, for logs and `result_text`. */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const stack = error.stack ?? `${error.name}: ${error.message}`;
    return stack.includes(error.message) ? stack : `${error.name}: ${error.message}\n${stack}`;
  }
  return `non-error value thrown: ${String(error)}`;
}
