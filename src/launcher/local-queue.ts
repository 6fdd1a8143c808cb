import type { ClaimedRow } from '../store/request-store.js';

/**
 * Rows this launcher claimed ahead and has not started: its local queue. They are this
 * launcher's in the table (its id, a lease, `started_at` still null), so no other launcher can
 * take them; that is why the queue is kept short (see `ClaimPolicy`), released at shutdown, and
 * recovered with the running rows if the launcher dies. Oldest (highest priority) first.
 */
export class LocalQueue {
  #rows: ClaimedRow[] = [];
  #head = 0;

  get size(): number {
    return this.#rows.length - this.#head;
  }

  push(row: ClaimedRow): void {
    this.#rows.push(row);
  }

  /** The next row to start, left in the queue; undefined if empty. */
  peek(): ClaimedRow | undefined {
    return this.#head < this.#rows.length ? this.#rows[this.#head] : undefined;
  }

  /** The next row to start, or undefined. */
  shift(): ClaimedRow | undefined {
    if (this.#head >= this.#rows.length) return undefined;
    const row = this.#rows[this.#head]!;
    this.#rows[this.#head] = undefined as unknown as ClaimedRow;
    this.#head += 1;
    if (this.#head > 1024 && this.#head * 2 > this.#rows.length) {
      this.#rows = this.#rows.slice(this.#head);
      this.#head = 0;
    }
    return row;
  }

  /** Takes row `id` out of the queue (a cancel); undefined if it is not here. */
  remove(id: string): ClaimedRow | undefined {
    for (let i = this.#head; i < this.#rows.length; i++) {
      const row = this.#rows[i]!;
      if (row.id !== id) continue;
      this.#rows.splice(i, 1);
      return row;
    }
    return undefined;
  }

  /** Empties the queue, returning what it held. */
  drain(): ClaimedRow[] {
    const rows = this.#rows.slice(this.#head);
    this.#rows = [];
    this.#head = 0;
    return rows;
  }
}
