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
 *
 * Bounded work whatever the schedule: forward from the window's start (at most one run a second,
 * so at most 61 steps), and backward only as many runs as `backfill` asks for.
 *
 * @example
 * dueTimesAt(entry, lastDue, new Date()); // [] between due times; [12:05:00] just after it
 */
export function dueTimesAt(entry: RecurringEntry, lastDue: Date, now: Date): Date[] {
  const cron = cronOf(entry);
  const nowMs = now.getTime();
  const windowStartMs = nowMs - onTimeWindowMs;
  const onTime: Date[] = [];
  let next = cron.nextRun(new Date(Math.max(lastDue.getTime(), windowStartMs)));
  while (next !== null && next.getTime() <= nowMs && onTime.length <= 61) {
    onTime.push(next);
    next = cron.nextRun(next);
  }
  const missed =
    entry.backfill === 0 || lastDue.getTime() >= windowStartMs
      ? []
      : cron
          .previousRuns(entry.backfill, new Date(windowStartMs + 1))
          .filter((time) => time.getTime() > lastDue.getTime() && time.getTime() <= windowStartMs);
  return [
    ...missed,
    ...onTime.filter((time) => time.getTime() > windowStartMs && time.getTime() > lastDue.getTime()),
  ].sort((a, b) => a.getTime() - b.getTime());
}

/** The next due time of `entry` after `now`, or null when the pattern has none. */
export function nextDueAfter(entry: Pick<RecurringEntry, 'cron' | 'timezone'>, now: Date): Date | null {
  return cronOf(entry).nextRun(now);
}
