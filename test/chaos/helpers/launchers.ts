/**
 * Chaos launchers as separate OS processes (test/chaos/launcher-process.mjs), each with a host
 * identity of its own, started, signalled and awaited by the tests. Every process started here is
 * tracked, and `killAll` SIGKILLs whatever is left (a check after each test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../helpers/db.js';
import { isAlive } from '../../helpers/processes.js';

const script = fileURLToPath(new URL('../launcher-process.mjs', import.meta.url));

/** A line the launcher printed on stdout (an event) or stderr (a JSON log line). */
export interface LauncherLine {
  event?: string;
  msg?: string;
  level?: string;
  at?: number;
  [field: string]: unknown;
}

export class LauncherProcess {
  readonly host: string;
  readonly options: Record<string, unknown>;
  readonly events: LauncherLine[] = [];
  readonly logs: LauncherLine[] = [];
  launcherId: string | null = null;
  #child: ChildProcess | null = null;
  #exited: Promise<unknown> | null = null;

  constructor(host: string, options: Record<string, unknown>) {
    this.host = host;
    this.options = options;
  }

  get pid(): number {
    if (this.#child?.pid === undefined) throw new Error(`launcher ${this.host} has no process`);
    return this.#child.pid;
  }

  get running(): boolean {
    return this.#child !== null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Spawns the process and waits until it claims (its `started` event). */
  async start(timeoutMs = 120_000): Promise<void> {
    const child = spawn(process.execPath, ['--expose-gc', script], {
      env: { ...process.env, CHAOS_LAUNCHER: JSON.stringify({ ...this.options, host: this.host }) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.#exited = once(child, 'exit');
    const seen = this.events.length;
    const parse = (into: LauncherLine[]) => (line: string) => {
      try {
        into.push(JSON.parse(line) as LauncherLine);
      } catch {
        into.push({ msg: line });
      }
    };
    createInterface({ input: child.stdout! }).on('line', parse(this.events));
    createInterface({ input: child.stderr! }).on('line', parse(this.logs));
    const started = await this.waitForEvent((e, i) => i >= seen && e.event === 'started', timeoutMs, 'runner:started');
    this.launcherId = String(started.launcherId);
  }

  /** Waits for an event line matching `match`, returning it. */
  async waitForEvent(
    match: (e: LauncherLine, index: number) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<LauncherLine> {
    return waitFor(
      () => {
        if (this.#child !== null && !this.running && this.#child.exitCode !== 0) {
          throw new Error(
            `launcher ${this.host} exited (${this.#child.exitCode ?? this.#child.signalCode}) while waiting for ${what}: ${this.tail()}`,
          );
        }
        return this.events.find(match) ?? null;
      },
      { timeoutMs, intervalMs: 20, what: `${what} from launcher ${this.host}` },
    );
  }

  /** The last log lines, for failure messages. */
  tail(n = 5): string {
    return this.logs
      .slice(-n)
      .map((line) => JSON.stringify(line))
      .join('\n');
  }

  signal(signal: NodeJS.Signals): void {
    this.#child?.kill(signal);
  }

  /** SIGKILL, then waits until the process is gone. */
  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.#exited;
  }

  /** Graceful stop (SIGTERM) and its exit code. */
  async stop(timeoutMs = 120_000): Promise<number | null> {
    if (!this.running) return this.#child?.exitCode ?? null;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    await this.#exited;
    clearTimeout(timer);
    return this.#child!.exitCode;
  }

  /** Resident memory and V8 heap in use after a garbage collection, as the process reports them. */
  async memory(timeoutMs = 30_000): Promise<{ rss: number; heapUsed: number }> {
    const seen = this.events.length;
    this.signal('SIGUSR2');
    const line = await this.waitForEvent((e, i) => i >= seen && e.event === 'rss', timeoutMs, 'its resident memory');
    return { rss: Number(line.rss), heapUsed: Number(line.heapUsed) };
  }
}

/** Launchers a test file started; `killAll` ends what is left. */
export class LauncherSet {
  readonly all: LauncherProcess[] = [];

  create(host: string, options: Record<string, unknown>): LauncherProcess {
    const launcher = new LauncherProcess(host, options);
    this.all.push(launcher);
    return launcher;
  }

  async killAll(): Promise<void> {
    await Promise.all(this.all.filter((l) => l.running).map((l) => l.kill()));
    this.all.length = 0;
  }
}

/** Pids of task processes (the child runtime) whose environment carries `CHAOS_RUN=<run>`. */
export async function taskProcesses(run: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const environ = await readFile(`/proc/${pid}/environ`, 'latin1');
      if (environ.split('\0').includes(`CHAOS_RUN=${run}`) && isAlive(pid)) found.push(pid);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}
