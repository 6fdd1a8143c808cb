import { UsageError } from './args.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';

export const pruneCommand: CliCommand = {
  name: 'prune',
  summary: 'delete ended requests past the retention rules (--dry-run counts them)',
  usage: 'prune [--dry-run] [options]',
  description: [
    "Deletes ended requests, with their attempt history, that ended longer ago than the config's",
    '`retention` allows for their result (default: FINISHED and CANCELLED after 7 days, FAILED,',
    'CRASHED, TIMED_OUT and PARKED after 30), in small batches, as launchers do every',
    'retention.intervalMs. Waiting and running requests are never touched. With `retention: false`',
    'nothing is deleted. One pruner runs per table at a time: while a launcher is pruning, prune does',
    'nothing and says so. A table the runner adopted (an application made it) is pruned only with',
    'retention.pruneAdopted: true.',
  ].join('\n'),
  options: { 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
  optionHelp: [
    '--dry-run          count what would be deleted; delete nothing',
    '--json             print {"requests": {RESULT: n}, "attempts": n, ...} as JSON',
  ],
  async run(context) {
    if (context.positionals.length > 0)
      throw new UsageError(`prune takes no arguments, got ${JSON.stringify(context.positionals[0])}`, 'prune');
    const config = await context.loadConfig();
    const dryRun = context.values['dry-run'] === true;
    const out = context.io.stdout;
    if (config.runner.retention === false) {
      out.write(
        context.values.json === true
          ? `${JSON.stringify(null)}\n`
          : 'retention is false in the configuration: every row is kept, nothing pruned\n',
      );
      return 0;
    }
    const { openCommandDb, pruneTable } = await loadRuntime();
    const result = await withDatabase(config, context.logger(config), async (url) => {
      const db = openCommandDb(url);
      try {
        return await pruneTable(db, config.tableName, config.runner.retention, { dryRun });
      } finally {
        await db.destroy();
      }
    });
    if (context.values.json === true) {
      out.write(`${JSON.stringify({ ...result, dryRun })}\n`);
      return 0;
    }
    if (result !== null && result.adopted && !result.ran && config.runner.retention?.pruneAdopted !== true) {
      out.write(
        `${config.tableName} is adopted (the runner did not create it): retention deletes none of its rows unless retention.pruneAdopted is true; nothing done\n`,
      );
      return 0;
    }
    if (result === null || !result.ran) {
      out.write('another process is pruning this table now: nothing done\n');
      return 0;
    }
    const total = Object.values(result.requests).reduce((sum, n) => sum + n, 0);
    const detail = Object.entries(result.requests)
      .map(([name, n]) => `${n} ${name}`)
      .join(', ');
    const verb = dryRun ? 'would delete' : 'deleted';
    out.write(
      `${verb} ${total} ended request(s)${total > 0 ? ` (${detail})` : ''} and ${result.attempts} attempt row(s) from ${config.tableName}\n`,
    );
    if (result.more) out.write('more remain past the rules: run prune again, or let launchers continue\n');
    return 0;
  },
};
