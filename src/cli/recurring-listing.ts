import type { RecurringListing } from '../launcher/lifecycle-commands.js';
import { loadRuntime, withDatabase, type CommandContext } from './command.js';

const iso = (date: Date | null): string => (date === null ? '-' : date.toISOString().replace('.000Z', 'Z'));

/**
 * The recurring entries as a table with a header line, one line per entry (or a line saying there
 * are none). `recurring` and `list --recurring` both print it, so the two never drift apart.
 */
export function formatRecurring(entries: readonly RecurringListing[], tableName: string): string {
  if (entries.length === 0) return `no recurring tasks registered on ${tableName}\n`;
  const rows = [
    ['NAME', 'TASK', 'CRON', 'TIMEZONE', 'MISSED', 'LAST DUE', 'LAST REQUEST', 'NEXT DUE', 'REGISTERED'],
    ...entries.map((e) => [
      e.name,
      e.taskClassName,
      e.cron,
      e.timezone,
      e.backfill === 0 ? 'skip' : `backfill ${e.backfill}`,
      // Before its first enqueue an entry's last_due_at is its registration time, not a run.
      e.lastRequestId === null ? '-' : iso(e.lastDueAt),
      e.lastRequestId ?? '-',
      iso(e.nextDueAt),
      iso(e.registeredAt),
    ]),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows
    .map(
      (row) =>
        `${row
          .map((cell, column) => cell.padEnd(widths[column]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** Reads the recurring entries of the configured table and prints them (as JSON with `--json`). */
export async function printRecurring(context: CommandContext): Promise<number> {
  const config = await context.loadConfig();
  const { listRecurring, openCommandDb } = await loadRuntime();
  const entries = await withDatabase(config, context.logger(config), async (url) => {
    const db = openCommandDb(url);
    try {
      return await listRecurring(db, config.tableName);
    } finally {
      await db.destroy();
    }
  });
  context.io.stdout.write(
    context.values.json === true ? `${JSON.stringify(entries)}\n` : formatRecurring(entries, config.tableName),
  );
  return 0;
}
