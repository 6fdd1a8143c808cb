import { defaults } from '../config/runner-config.js';
import type { RecurringEntry } from '../config/recurring-config.js';
import type { Logger } from '../shared/logger.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { RecurringEnqueued, RecurringStore } from '../store/recurring-store.js';
import { stringifyOptions } from '../tasks/options.js';
import type { RunnerEvents } from './events.js';
import { dueTimesAt, nextDueAfter } from './recurring-times.js';

export interface RecurringServiceParams {
  store: RecurringStore;
  entries: readonly RecurringEntry[];
  maxOptionsBytes: number;
  events: TypedEmitter<RunnerEvents>;
  logger: Logger;
  report(error: Error, during: string): void;
  /** Default: the system clock. */
  now?: () => Date;
}

/** The longest a launcher sleeps between looks, so a clock step or a lost timer costs at most this. */
const maxSleepMs = 60_000;

/**
 * Enqueues the recurring entries this launcher declares. Every launcher that declares an entry
 * ticks it at its due times; the database decides which of them enqueues each due time (see
 * `RecurringStore.enqueue`), so none is a leader and any may stop. A tick reads where every entry
 * stands (one statement), then enqueues what is due; between ticks it sleeps until the next due
 * time of any entry. `runOnce` is the tick, for tests and for `start`.
 */
export class RecurringService {
  readonly #p: RecurringServiceParams;
  readonly #entries = new Map<string, RecurringEntry>();
  readonly #now: () => Date;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> = Promise.resolve();
  #started = false;
  #stopped = false;

  constructor(params: RecurringServiceParams) {
    this.#p = params;
    this.#now = params.now ?? (() => new Date());
    for (const entry of params.entries) this.#entries.set(entry.name, entry);
  }

  get entries(): RecurringEntry[] {
    return [...this.#entries.values()];
  }

  /** Declares one more entry (or replaces one of that name); registered at once when started. */
  async add(entry: RecurringEntry): Promise<void> {
    this.#entries.set(entry.name, entry);
    if (!this.#started || this.#stopped) return;
    await this.#register([entry]);
    this.#schedule();
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#register(this.entries);
    await this.#tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running.catch(() => undefined);
  }

  /** Enqueues whatever is due now; returns what this launcher enqueued. */
  async runOnce(): Promise<RecurringEnqueued[]> {
    const entries = this.entries;
    if (entries.length === 0) return [];
    const now = this.#now();
    const last = await this.#p.store.lastDue(entries.map((entry) => entry.name));
    const unknown = entries.filter((entry) => !last.has(entry.name));
    // A row deleted by hand (or a table re-created) comes back as a new entry, due from now on.
    if (unknown.length > 0) await this.#register(unknown);
    const written: RecurringEnqueued[] = [];
    for (const entry of entries) {
      const lastDue = last.get(entry.name);
      if (lastDue === undefined) continue;
      const due = dueTimesAt(entry, lastDue, now);
      if (due.length === 0) continue;
      const enqueued = await this.#p.store.enqueue(entry.name, due);
      if (enqueued.ids.length === 0) continue;
      written.push(enqueued);
      this.#p.logger.info('recurring task enqueued', {
        name: entry.name,
        task: entry.task,
        ids: enqueued.ids.join(','),
        due: enqueued.dueTimes.map((t) => t.toISOString()).join(','),
      });
      this.#p.events.emit('recurring:enqueued', { name: entry.name, ids: enqueued.ids, dueTimes: enqueued.dueTimes });
    }
    return written;
  }

  #register(entries: readonly RecurringEntry[]): Promise<void> {
    return this.#p.store.register(
      entries.map((entry) => ({
        name: entry.name,
        taskClassName: entry.task,
        cron: entry.cron,
        timezone: entry.timezone,
        options: stringifyOptions(entry.options, this.#p.maxOptionsBytes),
        queue: entry.queue ?? defaults.queue,
        priority: entry.priority ?? 0,
        tryLimit: entry.tryLimit ?? defaults.tryLimit,
        backfill: entry.backfill,
      })),
      this.#now(),
    );
  }

  async #tick(): Promise<void> {
    const tick = this.runOnce().catch((error: Error) => this.#p.report(error, 'enqueueing recurring tasks'));
    this.#running = tick;
    await tick;
    this.#schedule();
  }

  /** Sleeps until the nearest next due time (a few ms past it: croner's times are whole seconds). */
  #schedule(): void {
    if (this.#stopped || this.#entries.size === 0) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    const now = this.#now();
    let sleepMs = maxSleepMs;
    for (const entry of this.#entries.values()) {
      const next = nextDueAfter(entry, now);
      if (next !== null) sleepMs = Math.min(sleepMs, next.getTime() - now.getTime() + 5);
    }
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        void this.#tick();
      },
      Math.max(5, sleepMs),
    );
    this.#timer.unref();
  }
}
