import { UsageError } from './args.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';

export const retryCommand: CliCommand = {
  name: 'retry',
  summary: 'make an ended or waiting request runnable now',
  usage: 'retry <id> [options]',
  description: [
    'Clears completed_at and delay_until and allows at least one more try (try_limit is raised',
    'when the tries are used up). Refused while the request is running.',
  ].join('\n'),
  options: {},
  optionHelp: [],
  async run(context) {
    const [id, ...extra] = context.positionals;
    if (id === undefined || extra.length > 0) throw new UsageError('retry takes one request id', 'retry');
    if (!/^\d{1,19}$/.test(id) || BigInt(id) > 9_223_372_036_854_775_807n) throw new UsageError(`invalid request id ${JSON.stringify(id)}: ids are whole numbers`, 'retry');
    const config = await context.loadConfig();
    const { createScheduler, openCommandPool } = await loadRuntime();
    await withDatabase(config, context.logger(config), async (url) => {
      const pool = openCommandPool(url);
      const scheduler = createScheduler({ db: pool, tableName: config.tableName });
      try {
        await scheduler.retry(id);
      } finally {
        await scheduler.close();
        await pool.end();
      }
    });
    context.io.stdout.write(`request ${id} is runnable again\n`);
    return 0;
  },
};
