/**
 * Group commit for row writes: while one statement is in flight, writes queue up and go out
 * together in the next, so a burst of N completions costs a few round trips, not N, and a lone
 * write goes out at once with no added latency. A failed statement is retried with a backoff
 * (the database may be restarting); the row keeps its pid meanwhile, so even a write that never
 * lands loses nothing: the pid probe recovers the row.
 */
export interface BatchWriterParams<T> {
  /** Writes a batch; returns the keys of the items that were applied. */
  flush(items: T[]): Promise<Set<string>>;
  key(item: T): string;
  /** Called when a flush failed; the batch is retried unless the writer is closed. */
  onError(error: Error, attempt: number): void;
  maxBatch?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Gives up on a batch after this many failed attempts. */
  maxAttempts?: number;
}

interface Pending<T> {
  item: T;
  resolve(applied: boolean): void;
}

export class BatchWriter<T> {
  readonly #params: BatchWriterParams<T>;
  #queue: Pending<T>[] = [];
  #inFlight: Promise<void> | null = null;
  #closed = false;

  constructor(params: BatchWriterParams<T>) {
    this.#params = params;
  }

  /** Queues one write; resolves true when applied, false when the row was not ours or writing gave up. */
  write(item: T): Promise<boolean> {
    return new Promise((resolve) => {
      this.#queue.push({ item, resolve });
      this.#inFlight ??= this.#drain();
    });
  }

  /** Waits for queued writes; afterwards failed batches are no longer retried. */
  async close(): Promise<void> {
    while (this.#inFlight !== null) await this.#inFlight;
    this.#closed = true;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#params.maxBatch ?? 500);
        const applied = await this.#flushWithRetry(batch.map((p) => p.item));
        for (const pending of batch) pending.resolve(applied.has(this.#params.key(pending.item)));
      }
    } finally {
      this.#inFlight = null;
    }
  }

  async #flushWithRetry(items: T[]): Promise<Set<string>> {
    const base = this.#params.retryBaseMs ?? 250;
    const max = this.#params.retryMaxMs ?? 5_000;
    const maxAttempts = this.#params.maxAttempts ?? 20;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#params.flush(items);
      } catch (error) {
        this.#params.onError(error as Error, attempt);
        if (this.#closed || attempt >= maxAttempts) return new Set();
        await new Promise((resolve) => setTimeout(resolve, Math.min(base * 2 ** (attempt - 1), max)));
      }
    }
  }
}
