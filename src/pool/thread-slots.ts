/**
 * Memory shared between the launcher and its worker threads, one slot per try handed to a
 * thread, so that whether a try started (and where and when), whether it finished, and which
 * processes it started are known without a message per try: the thread writes, the launcher
 * reads when it needs to (see thread-pool.ts).
 *
 * A thread is handed several tries at once (a batch) and runs them one after another, so a try
 * can be taken back before it starts. Whether it started or was taken back is decided once, by
 * one compare-and-swap on the slot's state:
 *
 * - the launcher hands a try over with state `-ticket` (a number it never reuses soon);
 * - the thread starts it by swapping `-ticket` for its thread id;
 * - the launcher takes it back by swapping `-ticket` for 0.
 *
 * A thread holding a stale ticket (its batch was given up) can therefore never start whatever
 * try the slot holds next.
 *
 * Slot layout, Int32 view: [state, finished (1 once the result is posted), processes recorded,
 * pid, pid, ...]; Float64 view: [start time in epoch milliseconds].
 */
export const maxTrackedProcesses = 64;
const intsPerSlot = 3 + maxTrackedProcesses;
const state = 0;
const finishedFlag = 1;
const processCount = 2;

/** What a worker thread is given (through `workerData`) to reach the slots. */
export interface ThreadSlotsData {
  ints: SharedArrayBuffer;
  starts: SharedArrayBuffer;
}

export class ThreadSlots {
  readonly #ints: Int32Array;
  readonly #starts: Float64Array;
  #lastTicket = 0;

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

  /** Launcher side: readies an empty slot for a try handed to a thread; the thread needs the ticket. */
  assign(slot: number): number {
    this.#lastTicket = this.#lastTicket >= 0x7fffffff ? 1 : this.#lastTicket + 1;
    const base = slot * intsPerSlot;
    this.#starts[slot] = 0;
    Atomics.store(this.#ints, base + processCount, 0);
    Atomics.store(this.#ints, base + finishedFlag, 0);
    Atomics.store(this.#ints, base + state, -this.#lastTicket);
    return this.#lastTicket;
  }

  /**
   * Thread side: starts the try in `slot` on `threadId` now; false when it was taken back. The
   * start time is written only by the thread that won the slot (a thread with a stale ticket must
   * not touch the try the slot holds now), after the swap; until it is, the try reads as not started.
   */
  begin(slot: number, ticket: number, threadId: number, atMs: number): boolean {
    if (Atomics.compareExchange(this.#ints, slot * intsPerSlot + state, -ticket, threadId) !== -ticket) return false;
    this.#starts[slot] = atMs;
    return true;
  }

  /** Launcher side: takes a try back before its thread starts it; false when it has started. */
  withdraw(slot: number, ticket: number): boolean {
    return Atomics.compareExchange(this.#ints, slot * intsPerSlot + state, -ticket, 0) === -ticket;
  }

  /** Launcher side: the thread running the try in `slot` and when it started, or null before it has. */
  started(slot: number): { threadId: number; atMs: number } | null {
    const threadId = Atomics.load(this.#ints, slot * intsPerSlot + state);
    const atMs = threadId <= 0 ? 0 : this.#starts[slot]!;
    return atMs === 0 ? null : { threadId, atMs };
  }

  /** Thread side: the try's result is posted (so it will reach the launcher even if the thread dies now). */
  finish(slot: number): void {
    Atomics.store(this.#ints, slot * intsPerSlot + finishedFlag, 1);
  }

  /** Launcher side: whether the try in `slot` has posted its result. */
  finished(slot: number): boolean {
    return Atomics.load(this.#ints, slot * intsPerSlot + finishedFlag) === 1;
  }

  /** Thread side: records a process the try started; false when the slot is full. */
  addProcess(slot: number, pid: number): boolean {
    const base = slot * intsPerSlot;
    const count = Atomics.load(this.#ints, base + processCount);
    if (count >= maxTrackedProcesses) return false;
    Atomics.store(this.#ints, base + 3 + count, pid);
    Atomics.store(this.#ints, base + processCount, count + 1);
    return true;
  }

  /** The processes the try in `slot` started. */
  processes(slot: number): number[] {
    const base = slot * intsPerSlot;
    const count = Atomics.load(this.#ints, base + processCount);
    const pids: number[] = [];
    for (let i = 0; i < count; i++) pids.push(Atomics.load(this.#ints, base + 3 + i));
    return pids;
  }

  /** Launcher side: empties the slot for the next try; a stale ticket can no longer start anything in it. */
  clear(slot: number): void {
    const base = slot * intsPerSlot;
    Atomics.store(this.#ints, base + state, 0);
    Atomics.store(this.#ints, base + processCount, 0);
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
