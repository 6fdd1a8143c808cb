import { fork, type ChildProcess } from 'node:child_process';
import { ChildCrashError, describeError } from '../errors.js';
import type { AttemptHooks, AttemptJob, AttemptReport } from './attempt.js';
import { readProcessIdentity } from './process-identity.js';
import { decodeChildMessage, type ParentMessage } from './protocol.js';

const stderrTailBytes = 4096;
/** After a child has exited, how long to wait for its IPC and pipes to drain before deciding. */
const closeGraceMs = 500;

export interface ChildHandleParams {
  entry: string;
  env: NodeJS.ProcessEnv;
  execArgv: readonly string[];
}

/**
 * One forked child running one try. It owns the process from spawn to exit: it forwards output,
 * keeps the tail of stderr, turns messages and exits into one {@link AttemptReport}, and escalates
 * SIGTERM to SIGKILL when asked to terminate. The child leads its own process group, so
 * terminating it reaches any process it started.
 */
export class ChildHandle {
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #closed: Promise<void>;
  #stderrTail = '';
  #report: AttemptReport | null = null;
  #exitInfo: { code: number | null; signal: string | null } | null = null;

  private constructor(child: ChildProcess) {
    this.#child = child;
    // Listened for from the start: 'close' can follow 'exit' synchronously.
    this.#closed = new Promise((resolve) => child.once('close', () => resolve()));
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitInfo = { code, signal };
        resolve();
      });
      child.once('error', () => {
        if (child.pid === undefined) {
          this.#exitInfo = { code: null, signal: null };
          resolve();
        }
      });
    });
  }

  static spawn(params: ChildHandleParams): ChildHandle {
    const child = fork(params.entry, [], {
      env: params.env,
      execArgv: [...params.execArgv],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
      serialization: 'json',
    });
    return new ChildHandle(child);
  }

  get pid(): number | null {
    return this.#child.pid ?? null;
  }

  /** Resolves when the process has exited (or failed to start). */
  get exited(): Promise<void> {
    return this.#exited;
  }

  get alive(): boolean {
    return this.#exitInfo === null && this.#child.pid !== undefined;
  }

  /** Sends the job and resolves with how the try ended. */
  run(job: AttemptJob, hooks: AttemptHooks): Promise<AttemptReport> {
    const child = this.#child;
    this.#forwardOutput(hooks);
    return new Promise<AttemptReport>((resolve) => {
      let spawnError: Error | null = null;
      const settle = (report: AttemptReport): void => {
        if (this.#report !== null) return;
        this.#report = report;
        resolve(report);
      };
      child.on('message', (raw: unknown) => {
        let message;
        try {
          message = decodeChildMessage(raw);
        } catch (error) {
          settle({ outcome: 'failed', pid: this.pid, kind: 'task', text: describeError(error) });
          this.terminate(0);
          return;
        }
        if (message.type === 'result') settle({ outcome: 'finished', pid: this.pid, resultText: message.resultText });
        if (message.type === 'error') settle({ outcome: 'failed', pid: this.pid, kind: message.kind, text: message.text });
      });
      child.once('error', (error) => {
        spawnError = error;
      });
      child.once('spawn', () => {
        const pid = child.pid!;
        void readProcessIdentity(pid).then((processIdentity) => {
          hooks.onStart?.({ pid, processIdentity, threadId: null });
          const message: ParentMessage = { type: 'run', ...job };
          child.send(message, (error) => {
            if (error) spawnError ??= error;
          });
        });
      });
      void this.#exited.then(async () => {
        // Messages and output sent just before exit may still be in flight: wait for the
        // channels to close (bounded, since a grandchild may hold a pipe open).
        await Promise.race([
          this.#closed,
          new Promise((done) => setTimeout(done, closeGraceMs).unref()),
        ]);
        const { code, signal } = this.#exitInfo ?? { code: null, signal: null };
        const tail = this.#stderrTail.trim();
        const detail = spawnError !== null ? ` (${spawnError.message})` : tail.length > 0 ? `; stderr tail:\n${tail}` : '';
        settle({
          outcome: 'crashed',
          pid: this.pid,
          exitCode: code,
          signal,
          stderrTail: tail,
          text: new ChildCrashError(this.pid, code, signal, detail).message,
        });
      });
    });
  }

  /** SIGTERM to the child's process group, SIGKILL after `killTimeoutMs`; resolves at exit. */
  async terminate(killTimeoutMs: number): Promise<void> {
    if (!this.alive) return this.#exited;
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), killTimeoutMs);
    timer.unref();
    await this.#exited;
    clearTimeout(timer);
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        this.#child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  #forwardOutput(hooks: AttemptHooks): void {
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = this.#child[name];
      if (stream === null) continue;
      stream.setEncoding('utf8');
      let partial = '';
      stream.on('data', (chunk: string) => {
        if (name === 'stderr') this.#stderrTail = (this.#stderrTail + chunk).slice(-stderrTailBytes);
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) hooks.onOutput?.(name, line);
      });
      stream.on('end', () => {
        if (partial.length > 0) hooks.onOutput?.(name, partial);
        partial = '';
      });
    }
  }
}
