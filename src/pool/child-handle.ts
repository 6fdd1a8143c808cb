import { fork, type ChildProcess } from 'node:child_process';
import { ChildCrashError, describeError } from '../errors.js';
import { abortReasonOf, type AttemptHooks, type AttemptJob, type AttemptReport } from './attempt.js';
import { OutputLines } from './output-lines.js';
import { readProcessIdentity } from './process-identity.js';
import { decodeChildMessage, type ChildMemory, type ParentMessage } from './protocol.js';

const stderrTailBytes = 4096;
/** After a child has exited, how long to wait for its IPC and pipes to drain before deciding. */
const closeGraceMs = 500;

export interface ChildHandleParams {
  entry: string;
  env: NodeJS.ProcessEnv;
  execArgv: readonly string[];
  /** Between SIGTERM and SIGKILL when a run is aborted. */
  killTimeoutMs: number;
  /** Output written before the child's first try (while booting). */
  onIdleOutput?(stream: 'stdout' | 'stderr', line: string): void;
}

interface CurrentRun {
  settle(report: AttemptReport): void;
  abortReason: ReturnType<typeof abortReasonOf> | null;
}

/**
 * One forked child from spawn to exit. It reports `ready` once its runtime has loaded, and may
 * then run tasks one at a time: each run forwards the task's output, keeps the tail of stderr
 * written during it, and turns the child's message (or its exit) into one
 * {@link AttemptReport}. The child leads its own process group, so terminating it reaches any
 * process a task started.
 */
export class ChildHandle {
  readonly #child: ChildProcess;
  readonly #killTimeoutMs: number;
  readonly #exited: Promise<void>;
  readonly #closed: Promise<void>;
  readonly #ready: Promise<boolean>;
  readonly identity: Promise<string | null>;
  #stderrTail = '';
  #current: CurrentRun | null = null;
  /**
   * Where output goes: the latest try's hooks. A child's pipes are not ordered with its IPC
   * channel, so lines a try wrote may arrive after its report; until the next try starts they are
   * still that try's.
   */
  #outputHooks: AttemptHooks | null = null;
  #exitInfo: { code: number | null; signal: string | null } | null = null;
  #spawnError: Error | null = null;
  #memory: ChildMemory | null = null;
  #tasksRun = 0;
  #leaving = false;

  private constructor(child: ChildProcess, params: ChildHandleParams) {
    this.#child = child;
    this.#killTimeoutMs = params.killTimeoutMs;
    // Listened for from the start: 'close' can follow 'exit' synchronously.
    this.#closed = new Promise((resolve) => child.once('close', () => resolve()));
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exitInfo = { code, signal };
        resolve();
      });
      child.once('error', (error) => {
        this.#spawnError ??= error;
        if (child.pid === undefined) {
          this.#exitInfo = { code: null, signal: null };
          resolve();
        }
      });
    });
    let markReady: (ready: boolean) => void = () => undefined;
    this.#ready = new Promise((resolve) => {
      markReady = resolve;
    });
    void this.#exited.then(() => markReady(false));
    this.identity = new Promise((resolve) => {
      child.once('spawn', () => resolve(readProcessIdentity(child.pid!)));
      void this.#exited.then(() => resolve(null));
    });
    // One exit handler for the child's whole life settles the try running then, so a child that
    // runs thousands of tries does not collect a handler per try.
    void this.#exited.then(() => {
      if (this.#current !== null) void this.#settleAtExit(this.#current);
    });
    child.on('message', (raw: unknown) => this.#onMessage(raw, markReady));
    this.#forwardOutput(params);
  }

  static spawn(params: ChildHandleParams): ChildHandle {
    const child = fork(params.entry, [], {
      env: params.env,
      execArgv: [...params.execArgv],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
      serialization: 'json',
    });
    return new ChildHandle(child, params);
  }

  get pid(): number | null {
    return this.#child.pid ?? null;
  }

  /** True once the runtime has loaded; false if the child exited first (never hand it a task). */
  get ready(): Promise<boolean> {
    return this.#ready;
  }

  /** Resolves when the process has exited (or failed to start). */
  get exited(): Promise<void> {
    return this.#exited;
  }

  get alive(): boolean {
    return this.#exitInfo === null && this.#child.pid !== undefined;
  }

  get busy(): boolean {
    return this.#current !== null;
  }

  /** Tasks this child has been given. */
  get tasksRun(): number {
    return this.#tasksRun;
  }

  /** True once the child said it exits after its report: it gets no further task. */
  get leaving(): boolean {
    return this.#leaving || !this.alive;
  }

  /** Memory the child reported after its last task; null before. */
  get memory(): ChildMemory | null {
    return this.#memory;
  }

  /** Why the child could not start, once it exited before `ready`. */
  startFailure(): string {
    const tail = this.#stderrTail.trim();
    const { code, signal } = this.#exitInfo ?? { code: null, signal: null };
    const cause = this.#spawnError?.message ?? `exit code ${code}${signal !== null ? `, signal ${signal}` : ''}`;
    return `child failed to start (${cause})${tail.length > 0 ? `; stderr tail:\n${tail}` : ''}`;
  }

  /**
   * Sends one job to a ready, idle child and resolves with how it ended. Aborting `signal`
   * terminates the child (its process group) and reports the try `aborted`, unless the child
   * reported first.
   */
  run(job: AttemptJob, hooks: AttemptHooks, signal: AbortSignal, exitAfter: boolean): Promise<AttemptReport> {
    if (this.#current !== null) throw new Error('a child runs one task at a time');
    this.#tasksRun += 1;
    this.#stderrTail = '';
    this.#outputHooks = hooks;
    return new Promise<AttemptReport>((resolve) => {
      const onAbort = (): void => {
        if (this.#current !== current || current.abortReason !== null) return;
        current.abortReason = abortReasonOf(signal);
        void this.terminate(this.#killTimeoutMs);
      };
      const current: CurrentRun = {
        abortReason: null,
        settle: (report) => {
          if (this.#current !== current) return;
          this.#current = null;
          signal.removeEventListener('abort', onAbort);
          resolve(report);
        },
      };
      this.#current = current;
      signal.addEventListener('abort', onAbort);
      if (signal.aborted) onAbort();
      // Exited already (the constructor's exit handler found no try to settle): settle now.
      if (this.#exitInfo !== null) void this.#settleAtExit(current);
      const message: ParentMessage = { type: 'run', ...job, exitAfter };
      this.#child.send(message, (error) => {
        if (error) this.#spawnError ??= error;
      });
    });
  }

  /** Closes the IPC channel: an idle child exits by itself. */
  retire(): void {
    if (this.#child.connected) this.#child.disconnect();
  }

  /** SIGTERM to the child's process group, SIGKILL after `killTimeoutMs`; resolves at exit. */
  async terminate(killTimeoutMs: number): Promise<void> {
    if (!this.alive) return this.#exited;
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), killTimeoutMs);
    timer.unref();
    await this.#exited;
    clearTimeout(timer);
    // Whatever the task started in the group goes too, even if the child itself left in time.
    this.#signal('SIGKILL');
  }

  #usage(): { pid: number | null; threadId: null; peakMemoryBytes: number | null } {
    return { pid: this.pid, threadId: null, peakMemoryBytes: this.#memory?.maxRss ?? null };
  }

  #onMessage(raw: unknown, markReady: (ready: boolean) => void): void {
    let message;
    try {
      message = decodeChildMessage(raw);
    } catch (error) {
      this.#current?.settle({ outcome: 'failed', ...this.#usage(), kind: 'task', text: describeError(error) });
      void this.terminate(0);
      return;
    }
    if (message.type === 'ready') {
      markReady(true);
      return;
    }
    if (message.memory !== undefined) this.#memory = message.memory;
    if (message.last === true) this.#leaving = true;
    const current = this.#current;
    if (current === null) {
      // A report with no task running: the child is confused. It is not trusted again.
      void this.terminate(0);
      return;
    }
    if (message.type === 'result') current.settle({ outcome: 'finished', ...this.#usage(), resultText: message.resultText });
    else current.settle({ outcome: 'failed', ...this.#usage(), kind: message.kind, text: message.text });
  }

  async #settleAtExit(current: CurrentRun): Promise<void> {
    if (this.#current !== current) return;
    // Messages and output sent just before exit may still be in flight: wait for the channels
    // to close (bounded, since a grandchild may hold a pipe open).
    await Promise.race([this.#closed, new Promise((done) => setTimeout(done, closeGraceMs).unref())]);
    const { code, signal } = this.#exitInfo ?? { code: null, signal: null };
    const tail = this.#stderrTail.trim();
    if (current.abortReason !== null) {
      const what = current.abortReason === 'timeout' ? 'timed out' : current.abortReason === 'cancel' ? 'cancelled' : 'interrupted';
      current.settle({
        outcome: 'aborted',
        ...this.#usage(),
        reason: current.abortReason,
        exitCode: code,
        signal,
        text: `${what}: child ${this.pid} was terminated (${signal !== null ? `signal ${signal}` : `exit code ${code}`})`,
      });
      return;
    }
    const detail = this.#spawnError !== null ? ` (${this.#spawnError.message})` : tail.length > 0 ? `; stderr tail:\n${tail}` : '';
    current.settle({
      outcome: 'crashed',
      ...this.#usage(),
      exitCode: code,
      signal,
      stderrTail: tail,
      text: new ChildCrashError(this.pid, code, signal, detail).message,
    });
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        if (this.alive) this.#child.kill(signal);
      } catch {
        // already gone
      }
    }
  }

  #forwardOutput(params: ChildHandleParams): void {
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = this.#child[name];
      if (stream === null) continue;
      stream.setEncoding('utf8');
      const lines = new OutputLines((line) => {
        const hooks = this.#outputHooks;
        if (hooks !== null) hooks.onOutput?.(name, line);
        else params.onIdleOutput?.(name, line);
      });
      stream.on('data', (chunk: string) => {
        if (name === 'stderr') this.#stderrTail = (this.#stderrTail + chunk).slice(-stderrTailBytes);
        lines.push(chunk);
      });
      stream.on('end', () => lines.end());
    }
  }
}
