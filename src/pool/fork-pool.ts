import { fileURLToPath } from 'node:url';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Logger } from '../shared/logger.js';
import type { AttemptHooks, AttemptJob, AttemptReport } from './attempt.js';
import { ChildHandle } from './child-handle.js';

export interface ForkPoolParams {
  /** Children alive at once; further runs queue. */
  concurrency: number;
  /** Children's environment; null inherits the launcher's. */
  env: Readonly<Record<string, string>> | null;
  /** Children's Node arguments; null inherits the launcher's. */
  execArgv: readonly string[] | null;
  killTimeoutMs: number;
  logger: Logger;
  /** Called whenever a slot frees up (a child exited), so the launcher can claim more. */
  onSlotFree?: () => void;
}

const childEntry = fileURLToPath(new URL('./runtime/child-entry.js', import.meta.url));

/**
 * Runs each try in a fresh forked child (the seed's isolation), at most `concurrency` at once.
 * A slot is held until the child has exited, not just until it reported, so the cap counts live
 * processes.
 */
export class ForkPool {
  readonly #params: ForkPoolParams;
  readonly #limit: LimitFunction;
  readonly #children = new Set<ChildHandle>();
  #closed = false;

  constructor(params: ForkPoolParams) {
    this.#params = params;
    this.#limit = pLimit(params.concurrency);
  }

  /** Tries running or queued. */
  get busy(): number {
    return this.#limit.activeCount + this.#limit.pendingCount;
  }

  get freeSlots(): number {
    return Math.max(0, this.#params.concurrency - this.busy);
  }

  /** Pids of the children alive now. */
  get pids(): number[] {
    return [...this.#children].map((child) => child.pid).filter((pid): pid is number => pid !== null);
  }

  /** Runs one try; resolves with its report once the child reported or exited. */
  run(job: AttemptJob, hooks: AttemptHooks = {}): Promise<AttemptReport> {
    return new Promise<AttemptReport>((resolve) => {
      void this.#limit(async () => {
        if (this.#closed) {
          resolve({ outcome: 'crashed', pid: null, exitCode: null, signal: null, stderrTail: '', text: 'pool closed before the child started' });
          return;
        }
        let child: ChildHandle;
        try {
          child = ChildHandle.spawn({
            entry: childEntry,
            env: this.#params.env ?? process.env,
            execArgv: this.#params.execArgv ?? process.execArgv,
          });
        } catch (error) {
          resolve({ outcome: 'crashed', pid: null, exitCode: null, signal: null, stderrTail: '', text: `could not start a child: ${(error as Error).message}` });
          return;
        }
        this.#children.add(child);
        try {
          const report = await child.run(job, hooks);
          resolve(report);
          if (child.alive) {
            // A reporting child exits by itself; one that lingers (open handles) is ended.
            const timer = setTimeout(() => void child.terminate(this.#params.killTimeoutMs), this.#params.killTimeoutMs);
            timer.unref();
            await child.exited;
            clearTimeout(timer);
          }
        } finally {
          this.#children.delete(child);
        }
      }).finally(() => this.#params.onSlotFree?.());
    });
  }

  /** Resolves true once no child is alive, or false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    const all = Promise.all([...this.#children].map((child) => child.exited)).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const drained = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return drained && this.#children.size === 0;
  }

  /** Stops starting children and terminates the live ones (SIGTERM, then SIGKILL). */
  async close(): Promise<void> {
    // Queued runs still start, see the pool closed and resolve as crashed: none is left hanging.
    this.#closed = true;
    await Promise.all([...this.#children].map((child) => child.terminate(this.#params.killTimeoutMs)));
  }
}
