/**
 * Memory shared between the launcher and its worker threads, one slot per running try, so that
 * where and when a try started, and which processes it started, are known without a message per
 * try: the thread writes, the launcher reads when it needs to (see thread-pool.ts).
 *
 * Slot layout, Int32 view: [threadId (0: not started yet), processes recorded, pid, pid, ...];
 * Float64 view: [start time in epoch milliseconds]. A thread writes its slot only while it runs
 * the slot's try, and the launcher hands a slot to one try at a time.
 */
export const maxTrackedProcesses = 64;
const intsPerSlot = 2 + maxTrackedProcesses;

/** What a worker thread is given (through `workerData`) to reach the slots. */
export interface ThreadSlotsData {
  ints: SharedArrayBuffer;
  starts: SharedArrayBuffer;
}

export class ThreadSlots {
  readonly #ints: Int32Array;
  readonly #starts: Float64Array;

  constructor(data: ThreadSlotsData) {
    this.#ints = new Int32Array(data.ints);
    this.#starts = new Float64Array(data.starts);
  }

  static create(slots: number): ThreadSlots {
    return new ThreadSlots({
      ints: new SharedArrayBuffer(slots * intsPerSlot * Int32Array.BYTES_PER_ELEMENT),
      starts: new SharedArrayBuffer(slots * Float64Array.BYTES_PER_ELEMENT),
    });
  }

  get data(): ThreadSlotsData {
    return { ints: this.#ints.buffer as SharedArrayBuffer, starts: this.#starts.buffer as SharedArrayBuffer };
  }

  /** Thread side: the try in `slot` starts on `threadId` now. */
  begin(slot: number, threadId: number, atMs: number): void {
    const base = slot * intsPerSlot;
    Atomics.store(this.#ints, base + 1, 0);
    this.#starts[slot] = atMs;
    Atomics.store(this.#ints, base, threadId);
  }

  /** Launcher side: the thread running the try in `slot` and when it started, or null before it has. */
  started(slot: number): { threadId: number; atMs: number } | null {
    const threadId = Atomics.load(this.#ints, slot * intsPerSlot);
    return threadId === 0 ? null : { threadId, atMs: this.#starts[slot]! };
  }

  /** Thread side: records a process the try started; false when the slot is full. */
  addProcess(slot: number, pid: number): boolean {
    const base = slot * intsPerSlot;
    const count = Atomics.load(this.#ints, base + 1);
    if (count >= maxTrackedProcesses) return false;
    Atomics.store(this.#ints, base + 2 + count, pid);
    Atomics.store(this.#ints, base + 1, count + 1);
    return true;
  }

  /** The processes the try in `slot` started. */
  processes(slot: number): number[] {
    const base = slot * intsPerSlot;
    const count = Atomics.load(this.#ints, base + 1);
    const pids: number[] = [];
    for (let i = 0; i < count; i++) pids.push(Atomics.load(this.#ints, base + 2 + i));
    return pids;
  }

  /** Empties the slot for the next try. */
  clear(slot: number): void {
    const base = slot * intsPerSlot;
    Atomics.store(this.#ints, base, 0);
    Atomics.store(this.#ints, base + 1, 0);
  }
}

/**
 * Ends (SIGKILL) the processes a thread-mode try started, with their process groups: the thread
 * starts each one detached, so it leads a group of its own that holds what it started in turn.
 */
export function endProcesses(pids: readonly number[]): void {
  for (const pid of pids) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}
