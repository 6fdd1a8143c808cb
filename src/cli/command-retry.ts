import { requestIdArgument } from './args.js';
import { withClient, type CliCommand } from './command.js';

export const retryCommand: CliCommand = {
  name: 'retry',
  summary: 'make an ended or waiting request runnable now',
  usage: 'retry <id> [options]',
  description: [
    'Clears completed_at and delay_until and allows at least one more try (try_limit is raised',
    'when the tries are used up); a CANCELLED or PARKED request runs again too, with its crash',
    'count cleared. Refused while the request is running.',
  ].join('\n'),
  options: {},
  optionHelp: [],
  async run(context) {
    const id = requestIdArgument('retry', context.positionals);
    const config = await context.loadConfig();
    await withClient(config, context.logger(config), (client) => client.retry(id));
    context.io.stdout.write(`request ${id} is runnable again\n`);
    return 0;
  },
};
