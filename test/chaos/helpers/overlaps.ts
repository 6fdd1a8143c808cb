/**
 * Two tries of one request running at the same instant, measured. The ledger says when each try
 * started and, if it got there, when it finished; a try that was killed writes no finish, so a
 * watcher polls every pid the ledger names (every 25 ms) and notes when its process went. A try
 * ran from its start to its finish, or to its process's end when it never finished (a reused
 * child outlives its try, but it only does so after a finish). Both clocks are this machine's
 * wall clock: the ledger's `clock_timestamp()` and the watcher's `Date.now()`.
 */
import type pg from 'pg';
import { isAlive } from '../../helpers/processes.js';

export interface TrySpan {
  id: string;
  try: number;
  host: string;
  pid: number;
  startMs: number;
  endMs: number | null;
}

export interface OverlapFigures {
  /** Requests with two tries running at one instant. */
  overlaps: number;
  /** How long the longest such overlap lasted. */
  maxOverlapMs: number;
  /** The shortest time from one try's end to the next try's start, over requests that ran twice (null: none did). */
  minGapMs: number | null;
  pairs: { id: string; first: string; second: string; overlapMs: number }[];
}

export class TryWatcher {
  readonly #pool: pg.Pool;
  readonly #deaths = new Map<number, number>();
  readonly #watched = new Set<number>();
  #timer: NodeJS.Timeout | null = null;
  #busy = false;

  constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#tick(), 25);
  }

  /** When the process `pid` was seen gone (epoch ms), or null while it runs. */
  deathOf(pid: number): number | null {
    return this.#deaths.get(pid) ?? null;
  }

  async #tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const { rows } = await this.#pool.query(`SELECT DISTINCT pid FROM chaos_ledger WHERE event = 'start'`);
      for (const row of rows) this.#watched.add(Number(row.pid));
      const now = Date.now();
      for (const pid of this.#watched) {
        if (!this.#deaths.has(pid) && !isAlive(pid)) this.#deaths.set(pid, now);
      }
    } catch {
      // the test's own pool across a fault: the next tick reads again
    } finally {
      this.#busy = false;
    }
  }

  /** Stops watching (after one last look) and returns every try's span. */
  async stop(): Promise<TrySpan[]> {
    if (this.#timer !== null) clearInterval(this.#timer);
    while (this.#busy) await new Promise((resolve) => setImmediate(resolve));
    await this.#tick();
    const { rows } = await this.#pool.query(`
      SELECT s.request_id::text AS id, s.try, s.host, s.pid, (extract(epoch FROM s.at) * 1000)::float8 AS start_ms,
             (SELECT (extract(epoch FROM min(f.at)) * 1000)::float8 FROM chaos_ledger f
              WHERE f.event = 'finish' AND f.request_id = s.request_id AND f.try = s.try AND f.pid = s.pid) AS finish_ms
      FROM chaos_ledger s WHERE s.event = 'start' ORDER BY s.request_id, s.at`);
    return rows.map((row) => ({
      id: row.id,
      try: row.try,
      host: row.host,
      pid: row.pid,
      startMs: row.start_ms,
      endMs: row.finish_ms ?? this.#deaths.get(row.pid) ?? null,
    }));
  }
}

/** Overlaps between tries of one request; a try with no known end counts as running still. */
export function overlapFigures(spans: readonly TrySpan[], nowMs = Date.now()): OverlapFigures {
  const byId = new Map<string, TrySpan[]>();
  for (const span of spans) byId.set(span.id, [...(byId.get(span.id) ?? []), span]);
  const pairs: OverlapFigures['pairs'] = [];
  let minGapMs: number | null = null;
  for (const [id, tries] of byId) {
    for (let i = 1; i < tries.length; i += 1) {
      const gap = tries[i]!.startMs - (tries[i - 1]!.endMs ?? nowMs);
      if (gap >= 0 && (minGapMs === null || gap < minGapMs)) minGapMs = Math.round(gap);
    }
    let worst: OverlapFigures['pairs'][number] | null = null;
    for (let i = 0; i < tries.length; i += 1) {
      for (let j = i + 1; j < tries.length; j += 1) {
        const a = tries[i]!;
        const b = tries[j]!;
        const overlapMs = Math.min(a.endMs ?? nowMs, b.endMs ?? nowMs) - Math.max(a.startMs, b.startMs);
        if (overlapMs > 0 && (worst === null || overlapMs > worst.overlapMs)) {
          worst = { id, first: `${a.host}#${a.try}`, second: `${b.host}#${b.try}`, overlapMs: Math.round(overlapMs) };
        }
      }
    }
    if (worst !== null) pairs.push(worst);
  }
  return {
    overlaps: pairs.length,
    maxOverlapMs: pairs.reduce((max, p) => Math.max(max, p.overlapMs), 0),
    minGapMs,
    pairs,
  };
}
