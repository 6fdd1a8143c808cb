import { UsageError } from './args.js';
import type { CliCommand } from './command.js';
import { printRecurring } from './recurring-listing.js';

export const recurringCommand: CliCommand = {
  name: 'recurring',
  summary: 'list recurring tasks with their last and next run',
  usage: 'recurring [options]',
  description: [
    "Lists the recurring entries registered on the table by any launcher (from its config file's",
    '`recurring:` list or runner.recurring()): the cron and time zone, the latest due time enqueued',
    'with its request id, and the next due time. An entry no launcher declares any more stays listed',
    '(see "registered", the last time a launcher declared it) but is no longer enqueued.',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print the entries as a JSON list'],
  async run(context) {
    if (context.positionals.length > 0)
      throw new UsageError(`recurring takes no arguments, got ${JSON.stringify(context.positionals[0])}`, 'recurring');
    return printRecurring(context);
  },
};
