/**
 * What the thread pool asks of piscina: the worker pool itself, and the handle that takes a batch
 * back (piscina then ends the thread running it).
 */
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { AbortReason } from './attempt.js';
import type { ThreadSlotsData } from './thread-slots.js';
import type { ThreadGroupsData } from './try-cgroup.js';

export interface PiscinaParams {
  /** Threads alive at once; further runs queue. */
  maxThreads: number;
  /** An idle thread is ended after this long. */
  idleTimeoutMs: number;
  /** V8 limits of each thread, MiB; null leaves V8's own. */
  resourceLimits: {
    maxOldGenerationSizeMb: number | null;
    maxYoungGenerationSizeMb: number | null;
    stackSizeMb: number | null;
  };
  /** The threads' `process.env` (never the launcher's). */
  env: Readonly<Record<string, string>>;
}

const threadEntry = fileURLToPath(new URL('./runtime/thread-entry.js', import.meta.url));

/** Why a batch handed to piscina was taken back. */
export type Recall = AbortReason | 'no thread';

/**
 * The abort handle piscina is given for one batch. Piscina accepts an AbortSignal or an
 * EventEmitter; this is the smallest emitter it can use (it calls `once` and `removeListener`),
 * much cheaper than an AbortController.
 */
export class Recaller {
  aborted = false;
  reason: Recall | undefined;
  #listener: (() => void) | null = null;

  once(_event: 'abort', listener: () => void): void {
    this.#listener = listener;
  }

  removeListener(): void {
    this.#listener = null;
  }

  recall(reason: Recall): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.#listener;
    this.#listener = null;
    listener?.();
  }
}

/** A worker pool whose threads run batches (runtime/thread-entry.ts), one batch per thread at a time. */
export function createPiscina(
  params: PiscinaParams,
  workerData: { slots: ThreadSlotsData; cgroup: ThreadGroupsData | null },
): Piscina {
  return new Piscina({
    filename: threadEntry,
    minThreads: 0,
    maxThreads: params.maxThreads,
    idleTimeout: params.idleTimeoutMs,
    concurrentTasksPerWorker: 1,
    resourceLimits: resourceLimitsOf(params.resourceLimits),
    env: { ...params.env },
    workerData,
    recordTiming: false,
    // Between batches a thread waits on its event loop, not blocked in Atomics.wait: what a try
    // left running (a timer, a promise) then settles or fails while the thread is idle, instead
    // of waking inside the next try and being blamed on it.
    atomics: 'disabled',
  });
}

function resourceLimitsOf(
  limits: PiscinaParams['resourceLimits'],
): NonNullable<ConstructorParameters<typeof Piscina>[0]>['resourceLimits'] {
  const result: Record<string, number> = {};
  if (limits.maxOldGenerationSizeMb !== null) result.maxOldGenerationSizeMb = limits.maxOldGenerationSizeMb;
  if (limits.maxYoungGenerationSizeMb !== null) result.maxYoungGenerationSizeMb = limits.maxYoungGenerationSizeMb;
  if (limits.stackSizeMb !== null) result.stackSizeMb = limits.stackSizeMb;
  return result;
}
