import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { ChildConfinement } from '../config/confinement.js';
import { ChildCrashError, describeError } from '../errors.js';
import { limitCrashText, openFilesNote, spawnPlan } from './confined-spawn.js';
import {
  runMessage,
  type AbortReason,
  type AttemptHooks,
  type AttemptJob,
  type AttemptReport,
  type AttemptUsage,
} from './attempt.js';
import { OutputLines } from './output-lines.js';
import { readProcessIdentity } from './process-identity.js';
import { abortedReport, crashedReport, failedReport, finishedReport } from './reports.js';
import {
  decodeChildMessage,
  fenceNoticeDeadline,
  MessageLines,
  type ChildMemory,
  type ParentMessage,
} from './protocol.js';
import type { TryGroup, TryGroups } from './try-cgroup.js';

const stderrTailBytes = 4096;
/** After a child has exited, how long to wait for its channel and pipes to drain before deciding. */
const closeGraceMs = 500;

export interface ChildHandleParams {
  entry: string;
  env: NodeJS.ProcessEnv;
  execArgv: readonly string[];
  /** Between SIGTERM and SIGKILL when a run is aborted. */
  killTimeoutMs: number;
  /** The child may run several tries (it then ends what each try started before reporting). */
  reuse: boolean;
  /** Ask the child for its resident memory after each try (for a memory ceiling). */
  reportRss: boolean;
  /** Longest message line the child may send; longer is a protocol violation. */
  maxMessageChars: number;
  /** Output written before the child's first try (while booting). */
  onIdleOutput?(stream: 'stdout' | 'stderr', line: string): void;
  /** User, limits, permission policy; null (or omitted): a plain `node` child. */
  confinement?: ChildConfinement | null;
  /** Paths the runtime must read under a permission policy (the package, the tasks directory). */
  readable?: readonly string[];
  /** Where the child gets a control group of its own (see try-cgroup.ts); null: none. */
  tryGroups?: TryGroups | null;
}

interface CurrentRun {
  job: AttemptJob;
  /** The lease deadlines sent to the child for this try (in its run message and `lease` messages). */
  deadlines: Set<number>;
  settle(report: AttemptReport): void;
  abortReason: AbortReason | null;
}

/**
 * One child process from spawn to exit. It is started with `node <entry>` and a channel on fd 3
 * (see protocol.ts); it reports `ready` once its runtime has loaded and read its key, and may then
 * run tasks one at a time: each run forwards the task's output, keeps the tail of stderr written
 * during it, and turns the child's report (or its exit) into one {@link AttemptReport}. A line on
 * the channel that is malformed or lacks the key was not written by the runtime: the try fails as
 * forged and the child is killed. The child leads its own process group, so terminating it
 * reaches any process a task started.
 */
export class ChildHandle {
  readonly #child: ChildProcess;
  /** Null only when the spawn itself failed. */
  readonly #channel: Socket | null;
  readonly #key = randomBytes(16).toString('hex');
  readonly #killTimeoutMs: number;
  readonly #exited: Promise<void>;
  readonly #closed: Promise<void>;
  readonly #ready: Promise<boolean>;
  #markReady: (ready: boolean) => void = () => undefined;
  readonly identity: Promise<string | null>;
  #stderrTail = '';
  #current: CurrentRun | null = null;
  /**
   * Where output goes: the latest try's hooks. A child's pipes are not ordered with its channel,
   * so lines a try wrote may arrive after its report; until the next try starts they are still
   * that try's.
   */
  #output: { hooks: AttemptHooks; job: AttemptJob } | null = null;
  #exitInfo: { code: number | null; signal: string | null } | null = null;
  #spawnError: Error | null = null;
  #memory: ChildMemory | null = null;
  #tasksRun = 0;
  #leaving = false;
  /** The child's control group, once it is in one. */
  #group: TryGroup | null = null;
  /** A reused child moving to a new group after a try that left processes behind; null: none. */
  #regrouping: Promise<void> | null = null;
  readonly confinement: ChildConfinement | null;

  private constructor(child: ChildProcess, params: ChildHandleParams) {
    this.#child = child;
    this.confinement = params.confinement ?? null;
    this.#channel = (child.stdio[3] as Socket | null | undefined) ?? null;
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
    const runtimeReady = new Promise<boolean>((resolve) => {
      this.#markReady = resolve;
    });
    // No try before the child is in its group (the move runs while Node starts, see try-cgroup.ts).
    const groups = params.tryGroups ?? null;
    const placed = child.pid === undefined || groups === null || groups.kind === null ? null : groups.place(child.pid);
    this.#ready =
      placed === null
        ? runtimeReady
        : Promise.all([runtimeReady, placed]).then(([ready, group]) => {
            this.#group = group;
            return ready;
          });
    // Whatever the child's tries left in its group ends with it.
    if (placed !== null) void Promise.all([this.#exited, placed]).then(([, group]) => group?.close());
    void this.#exited.then(() => this.#markReady(false));
    this.identity = new Promise((resolve) => {
      child.once('spawn', () => resolve(readProcessIdentity(child.pid!)));
      void this.#exited.then(() => resolve(null));
    });
    // One exit handler for the child's whole life settles the try running then.
    void this.#exited.then(() => {
      if (this.#current !== null) void this.#settleAtExit(this.#current);
    });
    const lines = new MessageLines({
      maxLineChars: params.maxMessageChars,
      onMessage: (message) => this.#onMessage(message),
      onViolation: (reason) => this.#violation(`the child sent ${reason}`),
    });
    this.#channel?.setEncoding('utf8');
    this.#channel?.on('data', (chunk: string) => lines.push(chunk));
    // A write to a child that just died fails here; its exit is handled above.
    this.#channel?.on('error', () => undefined);
    this.#forwardOutput(params);
    this.#send({ type: 'init', key: this.#key, reuse: params.reuse, reportRss: params.reportRss });
  }

  static spawn(params: ChildHandleParams): ChildHandle {
    const plan = spawnPlan(params.entry, params.execArgv, params.confinement ?? null, params.readable ?? []);
    const child = spawn(plan.command, plan.args, {
      env: params.env,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
      uid: plan.uid,
      gid: plan.gid,
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
   * Sends one job to a ready, idle child and resolves with how it ended. `abort` terminates the
   * child (its process group) and reports the try `aborted`, unless the child reported first.
   */
  run(job: AttemptJob, hooks: AttemptHooks, exitAfter: boolean): Promise<AttemptReport> {
    if (this.#current !== null) throw new Error('a child runs one task at a time');
    this.#tasksRun += 1;
    this.#stderrTail = '';
    this.#output = { hooks, job };
    return new Promise<AttemptReport>((resolve) => {
      const current: CurrentRun = {
        job,
        deadlines: new Set(),
        abortReason: null,
        settle: (report) => {
          if (this.#current !== current) return;
          this.#current = null;
          resolve(report);
        },
      };
      this.#current = current;
      // Exited already (the constructor's exit handler found no try to settle): settle now.
      if (this.#exitInfo !== null) {
        void this.#settleAtExit(current);
        return;
      }
      const send = (): void => {
        if (job.fenceAtMs !== undefined) current.deadlines.add(job.fenceAtMs);
        this.#send(runMessage(job, exitAfter));
      };
      if (this.#regrouping === null) send();
      else void this.#regrouping.then(send);
    });
  }

  /**
   * Stops the running try: its process group is terminated and the try reported `aborted`. A
   * fenced try (`lease`) gets no grace: its lease allows none.
   */
  abort(reason: AbortReason): void {
    const current = this.#current;
    if (current === null || current.abortReason !== null) return;
    current.abortReason = reason;
    void this.terminate(reason === 'lease' ? 0 : this.#killTimeoutMs);
  }

  /** Tells the child of the running try its new lease deadline (see protocol.ts, LeaseMessage). */
  extendFence(fenceAtMs: number): void {
    if (this.#current === null) return;
    this.#current.deadlines.add(fenceAtMs);
    this.#send({ type: 'lease', fenceAtMs });
  }

  /** Closes the channel: an idle child exits by itself. */
  retire(): void {
    this.#channel?.end();
  }

  /** SIGTERM to the child's process group, SIGKILL after `killTimeoutMs`; resolves at exit. */
  async terminate(killTimeoutMs: number): Promise<void> {
    if (!this.alive) {
      await this.#exited;
      this.killGroup();
      return;
    }
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), killTimeoutMs);
    timer.unref();
    await this.#exited;
    clearTimeout(timer);
    // Whatever the task started in the group goes too, even if the child itself left in time.
    this.killGroup();
  }

  /** SIGKILL to what is left of the child's process group (after the child itself exited). */
  killGroup(): void {
    this.#signal('SIGKILL');
  }

  #send(message: ParentMessage): void {
    if (this.#channel?.writable === true) this.#channel.write(`${JSON.stringify(message)}\n`);
  }

  #usage(): AttemptUsage {
    return { pid: this.pid, threadId: null, peakMemoryBytes: this.#memory?.maxRss ?? null };
  }

  /** The child said something the runtime would not: the current try fails, the child goes. */
  #violation(what: string): void {
    const text = `a message on the launcher's channel did not come from the child runtime (forged by the task?): ${what}`;
    this.#current?.settle(failedReport(this.#usage(), 'task', text));
    this.#leaving = true;
    void this.terminate(0);
  }

  #onMessage(raw: unknown): void {
    let message;
    try {
      message = decodeChildMessage(raw);
    } catch (error) {
      this.#violation(describeError(error));
      return;
    }
    if (message.key !== this.#key) {
      this.#violation('a report without the key the launcher gave the runtime');
      return;
    }
    if (message.type === 'ready') {
      this.#markReady(true);
      return;
    }
    if (message.memory !== undefined) this.#memory = message.memory;
    const current = this.#current;
    if (current === null) {
      this.#violation('a report with no task running');
      return;
    }
    // Its last report read, the child may go: it waits for the channel to close (child-entry.ts, leave).
    if (message.last === true) {
      this.#leaving = true;
      this.retire();
    }
    // A child that lives on leaves behind, in its old group, what its try left running.
    if (message.last !== true && this.#group !== null) {
      const regrouping = this.#group.endTry();
      if (regrouping !== null) {
        const done: Promise<void> = regrouping.then(() => {
          if (this.#regrouping === done) this.#regrouping = null;
        });
        this.#regrouping = done;
      }
    }
    if (message.type === 'result') {
      current.settle(finishedReport(this.#usage(), message.resultText));
      return;
    }
    // EMFILE is caught by the task like any error: the limit behind it is named beside it.
    const note = openFilesNote(this.confinement?.limits ?? null, message.text);
    const text = note === null ? message.text : `${message.text}\n${note}`;
    current.settle(failedReport(this.#usage(), message.kind, text));
  }

  async #settleAtExit(current: CurrentRun): Promise<void> {
    if (this.#current !== current) return;
    // Reports and output sent just before exit may still be in flight: wait for the channels
    // to close (bounded, since a grandchild may hold a pipe open).
    await Promise.race([this.#closed, new Promise((done) => setTimeout(done, closeGraceMs).unref())]);
    const { code, signal } = this.#exitInfo ?? { code: null, signal: null };
    const tail = this.#stderrTail.trim();
    // A child whose lease deadline passed unextended ends its own process group with SIGKILL
    // (runtime/child-entry.ts), saying so on stderr: that is the fence, not a crash, and the try is
    // given back as one the launcher fenced. A chaos run with 3 s leases (4 launchers booting 32
    // children on 2 cores, a first renewal accepted past the deadline) recorded such tries CRASHED
    // "killed by SIGKILL", ending their requests where tryLimit was 1. Only a deadline this handle
    // sent counts, so a task cannot pass its own crash off as a fence.
    const fencedAt = signal === 'SIGKILL' ? fenceNoticeDeadline(this.#stderrTail) : null;
    if (current.abortReason === null && fencedAt !== null && current.deadlines.has(fencedAt))
      current.abortReason = 'lease';
    if (current.abortReason !== null) {
      const what = { timeout: 'timed out', cancel: 'cancelled', shutdown: 'interrupted', lease: 'fenced' }[
        current.abortReason
      ];
      const how = signal !== null ? `signal ${signal}` : `exit code ${code}`;
      const text = `${what}: child ${this.pid} was terminated (${how})`;
      current.settle(abortedReport(this.#usage(), current.abortReason, code, signal, text));
      return;
    }
    const limit = limitCrashText(this.confinement?.limits ?? null, signal, tail);
    const detail =
      (limit !== null ? `: ${limit}` : '') +
      (this.#spawnError !== null ? ` (${this.#spawnError.message})` : tail.length > 0 ? `; stderr tail:\n${tail}` : '');
    const text = new ChildCrashError(this.pid, code, signal, detail).message;
    current.settle(crashedReport(this.#usage(), code, signal, tail, text));
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
        const output = this.#output;
        if (output !== null) output.hooks.onOutput?.(name, line, output.job);
        else params.onIdleOutput?.(name, line);
      });
      stream.on('data', (chunk: string) => {
        if (name === 'stderr') this.#stderrTail = (this.#stderrTail + chunk).slice(-stderrTailBytes);
        lines.push(chunk);
      });
      stream.on('end', () => lines.end());
      stream.on('error', () => undefined);
    }
  }
}
