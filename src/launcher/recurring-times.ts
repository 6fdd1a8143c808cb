import { cronOf, type RecurringEntry } from '../config/recurring-config.js';

/**
 * A due time this recent is on time, not missed: a launcher that was busy, restarting or
 * reconnecting for less than this still enqueues it (late, not never).
 */
export const onTimeWindowMs = 60_000;

/**
 * The due times of `entry` to enqueue at `now`, ascending, given the latest one already enqueued:
 * every due time after `lastDue` and within the on-time window, plus, of the older ones (missed
 * while no launcher ran), the `backfill` most recent (none by default: they are skipped).
 * Bounded work: croner walks back at most one on-time window and the backfill from `now`.
 *
 * @example
 * dueTimesAt(entry, lastDue, new Date()); // [] between due times; [12:05:00] just after it
 */
export function dueTimesAt(entry: RecurringEntry, lastDue: Date, now: Date): Date[] {
  // At most one run per second: 61 covers the on-time window of a per-second schedule.
  const recent = cronOf(entry).previousRuns(61 + entry.backfill, now);
  const after = recent.filter((time) => time.getTime() > lastDue.getTime() && time.getTime() <= now.getTime());
  const onTime = after.filter((time) => time.getTime() > now.getTime() - onTimeWindowMs);
  const missed = after.filter((time) => time.getTime() <= now.getTime() - onTimeWindowMs).slice(0, entry.backfill);
  return [...onTime, ...missed].sort((a, b) => a.getTime() - b.getTime());
}

/** The next due time of `entry` after `now`, or null when the pattern has none. */
export function nextDueAfter(entry: Pick<RecurringEntry, 'cron' | 'timezone'>, now: Date): Date | null {
  return cronOf(entry).nextRun(now);
}
