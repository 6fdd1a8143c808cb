import { parseTableName } from '../config/identifiers.js';
import { resolveRetention, type RetentionOptions } from '../config/retention-config.js';
import { requestsPrune, type PruneResult } from '../store/prune-requests.js';
import { RecurringStore, type RecurringRow } from '../store/recurring-store.js';
import { nextDueAfter } from './recurring-times.js';
import type { SqlDb } from '../store/database.js';

/** A recurring entry as `recurring` shows it: its row and its next due time from now. */
export interface RecurringListing extends RecurringRow {
  /** Null when the pattern has no further time (or no longer parses with this version). */
  nextDueAt: Date | null;
}

/**
 * Every recurring entry registered on the table (by any launcher), with its next due time.
 *
 * @example
 * for (const entry of await listRecurring(db, 'task_runner_requests')) console.log(entry.name, entry.nextDueAt);
 */
export async function listRecurring(db: SqlDb, tableName: string, now = new Date()): Promise<RecurringListing[]> {
  const rows = await new RecurringStore(db, parseTableName(tableName)).list();
  return rows.map((row) => {
    let nextDueAt: Date | null;
    try {
      nextDueAt = nextDueAfter(row, now);
    } catch {
      nextDueAt = null;
    }
    return { ...row, nextDueAt };
  });
}

/**
 * Prunes (or, `dryRun`, counts) ended requests past the retention rules, as launchers do; null
 * when `retention` is false.
 */
export async function pruneTable(
  db: SqlDb,
  tableName: string,
  retention: RetentionOptions | false | undefined,
  params: { dryRun?: boolean } = {},
): Promise<PruneResult | null> {
  const config = resolveRetention(retention);
  if (config === null) return null;
  return requestsPrune(db, parseTableName(tableName), config, params);
}
