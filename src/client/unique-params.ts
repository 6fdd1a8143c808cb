import { parseDurationMs } from '../config/duration.js';
import { TaskRunnerError } from '../errors.js';
import type { UniqueWhile } from '../store/unique-requests.js';
import type { ScheduleParams } from '../tasks/task.js';

function invalid(message: string): TaskRunnerError {
  return new TaskRunnerError('CONFIG_INVALID', `invalid schedule parameters: ${message}`);
}

/** The unique key and states of one schedule call, validated; nulls when it has no key. */
export function uniqueOf(params: ScheduleParams): { uniqueKey: string | null; uniqueWhile: UniqueWhile | undefined } {
  const { uniqueKey, uniqueWhile } = params;
  if (uniqueKey === undefined) {
    if (uniqueWhile !== undefined) throw invalid('uniqueWhile needs a uniqueKey');
    return { uniqueKey: null, uniqueWhile: undefined };
  }
  if (typeof uniqueKey !== 'string' || uniqueKey.length === 0 || uniqueKey.length > 1000) {
    throw invalid('uniqueKey must be a non-empty string of at most 1000 characters');
  }
  if (uniqueWhile === undefined || uniqueWhile === 'active') return { uniqueKey, uniqueWhile: { kind: 'active' } };
  if (uniqueWhile === 'waiting') return { uniqueKey, uniqueWhile: { kind: 'waiting' } };
  const within = typeof uniqueWhile === 'string' ? /^ended-within:(.+)$/.exec(uniqueWhile) : null;
  if (within === null) {
    throw invalid(
      `uniqueWhile must be "waiting", "active" or "ended-within:<duration>" (e.g. "ended-within:1h"), got ${JSON.stringify(uniqueWhile)}`,
    );
  }
  try {
    return { uniqueKey, uniqueWhile: { kind: 'ended-within', withinMs: parseDurationMs('uniqueWhile', within[1]) } };
  } catch {
    throw invalid(`uniqueWhile ${JSON.stringify(uniqueWhile)}: the duration must look like 30s, 15m, 1h or 7d`);
  }
}
