import { stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { parseLimits, parsePermissions, type ResolvedLimits, type ResolvedPermissions } from '../config/confinement.js';
import { describeError } from '../errors.js';
import { maxInt4 } from '../shared/values.js';
import { inspectInProcess, type InspectorCommand } from './traits-process.js';
import { decodeTraitsMessage, type DeclaredValue, type TraitsMessage } from './traits-wire.js';

/**
 * What a task class declares about its tries (`static mode`, `static timeoutMs`, `static limits`,
 * `static permissions`); null: nothing valid.
 */
export interface TaskTraits {
  mode: 'process' | 'thread' | null;
  timeoutMs: number | null;
  limits?: ResolvedLimits | null;
  permissions?: ResolvedPermissions | null;
}

/** {@link TaskTraits} as read, with why anything declared was ignored or could not be read. */
export interface TaskTraitsResult extends TaskTraits {
  /** One line per ignored value or failed inspection; empty when all is well. */
  readonly warnings: readonly string[];
}

export interface TaskTraitsReaderParams {
  /** Environment of the inspector threads: the one tasks get, so top-level code sees the same. */
  env: Readonly<Record<string, string>>;
  /** How long loading one file may take before its thread is terminated. Default 10000 ms. */
  timeoutMs?: number;
  /** Told each warning once, when the inspection that found it ends (not on every cached read). */
  onWarning?(warning: string): void;
  /** A file is looked at again at most this often. Default {@link traitsRecheckMs}. */
  recheckMs?: number;
  /**
   * Inspect in a child process started this way (confined like the tries' children) instead of
   * a thread of the launcher. Set when children are confined. Default: a thread.
   */
  inspectorCommand?: InspectorCommand | null;
  /**
   * Node arguments of the tries' children (`childExecArgv`; default the launcher's own), a
   * TypeScript loader's `--import` among them. A file a worker thread cannot load is inspected
   * in a child process started with them instead, as its tries will be: on Node 20 a loader
   * registered with `--import` (tsx, for one) serves the main thread only, so an inspector
   * thread fails on a `.ts` file with ERR_UNKNOWN_FILE_EXTENSION that a child loads.
   */
  execArgv?: readonly string[];
}

export const defaultTraitsTimeoutMs = 10_000;

/** Bounds of an inspector thread: loading a task file should need far less. */
const inspectorLimits = { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 };

/** Largest timeout a timer can hold (2^31 - 1 ms), as config allows. */
const maxTimeoutMs = maxInt4;

const inspectorEntry = fileURLToPath(new URL('./traits-entry.js', import.meta.url));

interface FileEntry {
  /** mtime, size and inode when inspected: a file changed in any of them is inspected again. */
  version: string;
  /** When the file was last looked at (`performance.now()`). */
  checkedAt: number;
  byClass: Map<string, Promise<TaskTraitsResult>>;
  /** The inspections that have finished, for `peek`. */
  settled: Map<string, TaskTraitsResult>;
}

/**
 * A file is looked at again (its mtime, size and inode) at most this often: a task file changed
 * on disk is picked up by the tries that start a second or more after the change, and a launcher
 * running thousands of tries a second does not stat the file for each.
 */
export const traitsRecheckMs = 1_000;

/**
 * Learns what task classes declare without importing them in the launcher: each file is loaded in
 * a short-lived worker thread (bounded heap, terminated after `timeoutMs`), so a file whose
 * top-level code blocks, loops, throws or calls `process.exit()` costs a thread, never the
 * launcher. Results are cached per file version and class; concurrent reads share one inspection.
 * A file no thread can load, though a child can (TypeScript under a loader), is read in a child
 * process. A file that fails to load reads as nulls (the try itself then reports the load error).
 *
 * @example
 * const reader = new TaskTraitsReader({ env: config.childEnv });
 * const { mode, timeoutMs, warnings } = await reader.read('/app/tasks/Resize.js', 'Resize');
 */
export class TaskTraitsReader {
  readonly #env: Readonly<Record<string, string>>;
  readonly #timeoutMs: number;
  readonly #onWarning: (warning: string) => void;
  readonly #recheckMs: number;
  readonly #files = new Map<string, FileEntry>();
  readonly #live = new Set<Worker>();
  readonly #command: InspectorCommand | null;
  readonly #execArgv: readonly string[];
  readonly #processes = new Set<() => void>();
  #inspections = 0;
  #closed = false;

  constructor(params: TaskTraitsReaderParams) {
    this.#env = params.env;
    this.#timeoutMs = params.timeoutMs ?? defaultTraitsTimeoutMs;
    this.#onWarning = params.onWarning ?? (() => undefined);
    this.#recheckMs = params.recheckMs ?? traitsRecheckMs;
    this.#command = params.inspectorCommand ?? null;
    this.#execArgv = params.execArgv ?? process.execArgv;
  }

  /** Inspector threads started so far: one per class and file version, however often it is read. */
  get inspections(): number {
    return this.#inspections;
  }

  /** Inspector threads alive now. */
  get activeInspections(): number {
    return this.#live.size + this.#processes.size;
  }

  /**
   * What `taskClassName` in `file` declares, when that is known and the file was looked at less
   * than {@link traitsRecheckMs} ago; else null (then `read`). Costs no I/O: the launcher calls it
   * for every try.
   */
  peek(file: string, taskClassName: string): TaskTraitsResult | null {
    const entry = this.#files.get(file);
    if (entry === undefined || performance.now() - entry.checkedAt >= this.#recheckMs) return null;
    return entry.settled.get(taskClassName) ?? null;
  }

  /** What `taskClassName` in `file` declares. Never rejects. */
  async read(file: string, taskClassName: string): Promise<TaskTraitsResult> {
    const where = `task "${taskClassName}" (${file})`;
    let entry = this.#files.get(file);
    if (entry === undefined || performance.now() - entry.checkedAt >= this.#recheckMs) {
      let version: string;
      try {
        const info = await stat(file);
        version = `${info.mtimeMs}:${info.size}:${info.ino}`;
      } catch (error) {
        return nothing(`${where}: cannot be read (${(error as Error).message}); defaults apply`);
      }
      entry = this.#files.get(file);
      if (entry === undefined || entry.version !== version) {
        entry = { version, checkedAt: performance.now(), byClass: new Map(), settled: new Map() };
        this.#files.set(file, entry);
      }
      entry.checkedAt = performance.now();
    }
    if (this.#closed) return nothing(`${where}: the traits reader is closed; defaults apply`);
    let traits = entry.byClass.get(taskClassName);
    if (traits === undefined) {
      const settled = entry.settled;
      traits = this.#inspect(file, taskClassName, where).then((result) => {
        for (const warning of result.warnings) this.#onWarning(warning);
        settled.set(taskClassName, result);
        return result;
      });
      entry.byClass.set(taskClassName, traits);
    }
    return traits;
  }

  /** Terminates running inspections (they read as nulls); later reads return nulls. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const kill of this.#processes) kill();
    await Promise.all([...this.#live].map((worker) => worker.terminate()));
  }

  /** Loads the file in a fresh confined process; resolves once it is gone. */
  async #inspectInProcess(
    command: InspectorCommand,
    file: string,
    taskClassName: string,
    where: string,
  ): Promise<TaskTraitsResult> {
    if (this.#closed) return nothing(`${where}: the traits reader is closed; defaults apply`);
    this.#inspections++;
    const inspection = inspectInProcess(command, this.#env, file, taskClassName);
    this.#processes.add(inspection.kill);
    const timer = setTimeout(inspection.kill, this.#timeoutMs);
    const outcome = await inspection.done;
    clearTimeout(timer);
    this.#processes.delete(inspection.kill);
    if ('failure' in outcome)
      return nothing(`${where}: its inspector process ${outcome.failure} while loading; defaults apply`);
    return validate(decodeTraitsMessage(outcome.message), where);
  }

  /**
   * What an inspector thread found, or, when no thread can load the file here (a TypeScript file
   * whose loader serves the main thread only), what a child process started with the children's
   * Node arguments finds. Such a class cannot run in a thread either: a `static mode = 'thread'`
   * it declares is read as `process`, with a warning that says why.
   */
  #threadAnswer(
    message: TraitsMessage | null,
    file: string,
    taskClassName: string,
    where: string,
  ): TaskTraitsResult | Promise<TaskTraitsResult> {
    if (message?.type !== 'load-error' || message.code !== 'ERR_UNKNOWN_FILE_EXTENSION')
      return validate(message, where);
    const command: InspectorCommand = (entry, args) => ({
      command: process.execPath,
      args: [...this.#execArgv, entry, ...args],
    });
    return this.#inspectInProcess(command, file, taskClassName, where).then((traits) => {
      if (traits.mode !== 'thread') return traits;
      const why =
        `${where}: static mode "thread" cannot apply: a worker thread cannot load this file on Node ${process.version} ` +
        '(its loader serves the main thread only), so it runs in a child process';
      return Object.freeze({ ...traits, mode: 'process' as const, warnings: Object.freeze([...traits.warnings, why]) });
    });
  }

  /** Loads the file in a fresh thread; resolves once that thread is gone. */
  #inspect(file: string, taskClassName: string, where: string): Promise<TaskTraitsResult> {
    if (this.#command !== null) return this.#inspectInProcess(this.#command, file, taskClassName, where);
    return new Promise<TaskTraitsResult>((resolve) => {
      this.#inspections++;
      let worker: Worker;
      try {
        worker = new Worker(inspectorEntry, {
          workerData: { file, taskClassName },
          env: { ...this.#env },
          resourceLimits: inspectorLimits,
          // Top-level output is the task's business when it runs, not the inspection's.
          stdout: true,
          stderr: true,
        });
      } catch (error) {
        resolve(nothing(`${where}: no inspector thread could start (${(error as Error).message}); defaults apply`));
        return;
      }
      worker.stdout.resume();
      worker.stderr.resume();
      this.#live.add(worker);
      let settled = false;
      const finish = (result: TaskTraitsResult | Promise<TaskTraitsResult>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        // The file may have left timers or sockets behind: the thread is ended, not waited for.
        void worker.terminate().then(
          () => resolve(result),
          () => resolve(result),
        );
      };
      const timer = setTimeout(
        () =>
          finish(
            nothing(`${where}: loading took over ${this.#timeoutMs} ms, its thread was terminated; defaults apply`),
          ),
        this.#timeoutMs,
      );
      worker.on('message', (raw: unknown) =>
        finish(this.#threadAnswer(decodeTraitsMessage(raw), file, taskClassName, where)),
      );
      worker.on('error', (error: Error) => {
        const why =
          (error as { code?: unknown }).code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? 'ran out of memory'
            : `failed: ${firstLine(describeError(error))}`;
        finish(nothing(`${where}: its inspector thread ${why} while loading; defaults apply`));
      });
      worker.on('exit', (code: number) => {
        this.#live.delete(worker);
        finish(nothing(`${where}: its inspector thread exited with code ${code} while loading; defaults apply`));
      });
    });
  }
}

function nothing(warning: string): TaskTraitsResult {
  return Object.freeze({ mode: null, timeoutMs: null, warnings: Object.freeze([warning]) });
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? text;
}

function shown(value: DeclaredValue): string {
  if (typeof value === 'object' && value !== null) return `a ${value.typeOf}`;
  return typeof value === 'number' ? String(value) : JSON.stringify(value);
}

/** Keeps the declared values that are valid; each invalid one is dropped with a warning. */
function validate(message: TraitsMessage | null, where: string): TaskTraitsResult {
  if (message === null) return nothing(`${where}: its inspector thread sent an unreadable answer; defaults apply`);
  if (message.type === 'load-error') {
    return nothing(`${where}: could not be loaded to read its mode and timeoutMs: ${firstLine(message.text)}`);
  }
  const warnings: string[] = [];
  let mode: TaskTraits['mode'] = null;
  if (message.mode === 'process' || message.mode === 'thread') mode = message.mode;
  else if (message.mode !== null)
    warnings.push(`${where}: static mode must be "process" or "thread", got ${shown(message.mode)}; ignored`);
  let timeoutMs: number | null = null;
  const t = message.timeoutMs;
  if (typeof t === 'number' && Number.isInteger(t) && t >= 1 && t <= maxTimeoutMs) timeoutMs = t;
  else if (t !== null)
    warnings.push(
      `${where}: static timeoutMs must be an integer from 1 to ${maxTimeoutMs} (ms), got ${shown(t)}; ignored`,
    );
  let limits: ResolvedLimits | null = null;
  try {
    limits = parseLimits('static limits', message.limits);
  } catch (error) {
    warnings.push(`${where}: ${(error as Error).message}; its limits are ignored`);
  }
  let permissions: ResolvedPermissions | null;
  try {
    permissions = parsePermissions('static permissions', message.permissions, null);
  } catch (error) {
    // Fail closed: a policy the author meant to hold but got wrong allows nothing rather than all.
    permissions = Object.freeze({
      fsRead: Object.freeze([]),
      fsWrite: Object.freeze([]),
      childProcess: false,
      worker: false,
      addons: false,
      wasi: false,
    });
    warnings.push(`${where}: ${(error as Error).message}; it runs with nothing allowed`);
  }
  // Limits and permissions appear only when declared: most classes declare neither.
  return Object.freeze({
    mode,
    timeoutMs,
    ...(limits === null ? {} : { limits }),
    ...(permissions === null ? {} : { permissions }),
    warnings: Object.freeze(warnings),
  });
}
