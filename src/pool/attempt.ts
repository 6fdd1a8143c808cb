import type { FailureKind, WireRequest } from './protocol.js';

/** One try to run in isolation. The pool never sees the database: this is all it gets. */
export interface AttemptJob {
  request: WireRequest;
  /** Task file resolved by the launcher's registry. */
  file: string;
  options: string | null;
  maxOptionsBytes: number;
  maxResultBytes: number;
}

/** Where a try runs, reported as soon as it has started. */
export interface AttemptStart {
  pid: number;
  processIdentity: string | null;
  threadId: number | null;
}

/** How a try ended. */
export type AttemptReport =
  | { outcome: 'finished'; pid: number | null; resultText: string | null }
  | { outcome: 'failed'; pid: number | null; kind: FailureKind; text: string }
  | {
      outcome: 'crashed';
      pid: number | null;
      exitCode: number | null;
      signal: string | null;
      /** The last bytes the child wrote to stderr. */
      stderrTail: string;
      text: string;
    };

export interface AttemptHooks {
  /** Called once the process runs, before the task does (the launcher records the pid). */
  onStart?(start: AttemptStart): void;
  /** Each line the child writes to stdout or stderr. */
  onOutput?(stream: 'stdout' | 'stderr', line: string): void;
}
