import { TaskRunnerError } from '../errors.js';
import type { RequestAttempt } from '../store/attempt-history.js';
import { requestIdArgument } from './args.js';
import { withClient, type CliCommand } from './command.js';
import { formatProcess } from './format-process.js';

function memory(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

/**
 * One line per try: number, result, mode, process (pid, and thread in thread mode), start and
 * end, how the process ended, peak memory, and the first line of the try's text.
 */
export function formatAttempt(attempt: RequestAttempt): string {
  const ending = attempt.signal !== null ? `signal ${attempt.signal}` : `exit ${attempt.exitCode ?? '-'}`;
  const fields = [
    `try ${attempt.try}`,
    attempt.result,
    `mode ${attempt.mode ?? '-'}`,
    formatProcess(attempt.pid, attempt.threadId),
    `${attempt.startedAt?.toISOString() ?? '-'} .. ${attempt.endedAt.toISOString()}`,
    ending,
    `peak ${memory(attempt.peakMemoryBytes)}`,
  ];
  const firstLine = attempt.resultText?.split('\n', 1)[0]?.trim();
  if (firstLine) fields.push(firstLine);
  return fields.join('  ');
}

export const attemptsCommand: CliCommand = {
  name: 'attempts',
  summary: "list a request's tries: result, mode, process, times, exit, peak memory",
  usage: 'attempts <id> [options]',
  description: [
    "Prints one line per ended try of the request, oldest first: try number, the try's own",
    'result (a request PARKED or CANCELLED shows the crashes or the kill that led there), how it',
    'ran (fresh, spare or reused child, or thread), pid and thread, start and end, exit code or',
    "signal, peak memory, and the first line of its error. A FINISHED try's value is in the",
    'request row, not here.',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print the tries as a JSON array'],
  async run(context) {
    const id = requestIdArgument('attempts', context.positionals);
    const config = await context.loadConfig();
    const attempts = await withClient(config, context.logger(config), async (client) => {
      const list = await client.attempts(id);
      // History has no foreign key, so an empty list may mean no such request: say which.
      if (list.length === 0 && (await client.find(id)) === null) {
        throw new TaskRunnerError('REQUEST_NOT_FOUND', `request ${id} does not exist`);
      }
      return list;
    });
    const out = context.io.stdout;
    if (context.values.json === true) out.write(`${JSON.stringify(attempts)}\n`);
    else if (attempts.length === 0) out.write(`request ${id} has no ended tries yet\n`);
    else for (const attempt of attempts) out.write(`${formatAttempt(attempt)}\n`);
    return 0;
  },
};
