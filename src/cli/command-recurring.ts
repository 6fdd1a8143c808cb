import { UsageError } from './args.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';

const iso = (date: Date | null): string => (date === null ? '-' : date.toISOString().replace('.000Z', 'Z'));

export const recurringCommand: CliCommand = {
  name: 'recurring',
  summary: 'list recurring tasks with their last and next run',
  usage: 'recurring [options]',
  description: [
    'Lists the recurring entries registered on the table by any launcher (from its config file\'s',
    '`recurring:` list or runner.recurring()): the cron and time zone, the latest due time enqueued',
    'with its request id, and the next due time. An entry no launcher declares any more stays listed',
    '(see "registered", the last time a launcher declared it) but is no longer enqueued.',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print the entries as a JSON list'],
  async run(context) {
    if (context.positionals.length > 0) throw new UsageError(`recurring takes no arguments, got ${JSON.stringify(context.positionals[0])}`, 'recurring');
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
    const out = context.io.stdout;
    if (context.values.json === true) {
      out.write(`${JSON.stringify(entries)}\n`);
      return 0;
    }
    if (entries.length === 0) {
      out.write(`no recurring tasks registered on ${config.tableName}\n`);
      return 0;
    }
    const rows = [
      ['NAME', 'TASK', 'CRON', 'TIMEZONE', 'MISSED', 'LAST DUE', 'LAST REQUEST', 'NEXT DUE', 'REGISTERED'],
      ...entries.map((e) => [
        e.name, e.taskClassName, e.cron, e.timezone, e.backfill === 0 ? 'skip' : `backfill ${e.backfill}`,
        e.lastRequestId === null ? '-' : iso(e.lastDueAt), e.lastRequestId ?? '-', iso(e.nextDueAt), iso(e.registeredAt),
      ]),
    ];
    const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
    for (const row of rows) out.write(`${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()}\n`);
    return 0;
  },
};
