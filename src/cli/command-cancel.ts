import type { CancelResult } from '../store/cancel-request.js';
import { requestIdArgument } from './args.js';
import { withClient, type CliCommand } from './command.js';

/** One line saying what the cancel did. */
export function describeCancel(id: string, result: CancelResult): string {
  switch (result.state) {
    case 'cancelled':
      return `cancelled request ${id} before it ran`;
    case 'cancelling':
      return `cancel requested for running request ${id} (pid ${result.pid ?? '?'} on host ${result.host ?? '?'}); its launcher kills it`;
    case 'ended':
      return `request ${id} already ended: ${result.result ?? 'no result'}`;
  }
}

export const cancelCommand: CliCommand = {
  name: 'cancel',
  summary: 'cancel a request: a waiting one never runs, a running one is killed',
  usage: 'cancel <id> [options]',
  description: [
    'A waiting request ends at once with result CANCELLED. For a running one the cancel is',
    'recorded and its launcher is notified; the launcher kills the try (process group, or its',
    'thread) and the request ends CANCELLED, unless the try finishes first. An ended request is',
    'left as it is. `retry` makes a cancelled request runnable again.',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print {"id", "state", "result", "pid", "host", "launcherId"} as JSON'],
  async run(context) {
    const id = requestIdArgument('cancel', context.positionals);
    const config = await context.loadConfig();
    const result = await withClient(config, context.logger(config), (client) => client.cancel(id));
    const out = context.io.stdout;
    out.write(
      context.values.json === true ? `${JSON.stringify({ id, ...result })}\n` : `${describeCancel(id, result)}\n`,
    );
    return 0;
  },
};
