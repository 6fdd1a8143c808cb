import { loadRuntime, withDatabase, type CliCommand } from './command.js';

export const migrateCommand: CliCommand = {
  name: 'migrate',
  summary: 'create the request table, or bring an existing one up to date',
  usage: 'migrate [options]',
  description: [
    'Creates the request table (--table, default task_runner_requests) with its indexes, the',
    'trigger that wakes launchers and its attempt-history table (<table>_attempts), or adds what',
    'an existing table lacks (a table made by the Rails plugin, say). Safe to run repeatedly and',
    'from several hosts at once. `start` runs it too.',
  ].join('\n'),
  options: {},
  optionHelp: [],
  async run(context) {
    const config = await context.loadConfig();
    const logger = context.logger(config);
    const { migrate, openCommandDb } = await loadRuntime();
    const result = await withDatabase(config, logger, async (url) => {
      const db = openCommandDb(url);
      try {
        return await migrate(db, { tableName: config.tableName });
      } finally {
        await db.destroy();
      }
    });
    const table = config.tableName;
    const added = [
      ...result.addedColumns,
      ...result.addedTables,
      ...result.addedDefaults.map((column) => `a default of now() (UTC) on ${column}`),
      ...result.addedTriggers.map((name) => `trigger ${name} (keeps updated_at current)`),
    ];
    if (result.created) context.io.stdout.write(`created table ${table}\n`);
    else if (added.length > 0) context.io.stdout.write(`upgraded table ${table}: added ${added.join(', ')}\n`);
    else context.io.stdout.write(`table ${table} is up to date\n`);
    if (result.origin === 'adopted') {
      context.io.stdout.write(
        `${table} is adopted (the runner did not create it): retention deletes none of its rows unless retention.pruneAdopted is true\n`,
      );
    }
    return 0;
  },
};
