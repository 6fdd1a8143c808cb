import { TaskRunnerError } from '../errors.js';
import type { RequestDetail } from '../store/inspection.js';
import { requestIdArgument } from './args.js';
import { formatAttempt } from './command-attempts.js';
import type { CliCommand } from './command.js';
import { formatProcess } from './format-process.js';
import { withInspector } from './with-inspector.js';

const iso = (date: Date | null): string => date?.toISOString() ?? '-';

/** The request as `show` prints it: fields, then options, result text and tries. */
export function formatRequest(r: RequestDetail): string {
  const fields: [string, string][] = [
    ['task', r.taskClassName ?? '(none: task_class_name is NULL)'],
    ['state', r.state + (r.result === null ? '' : ` (result ${r.result})`)],
    ['queue', `${r.queue}, priority ${r.priority}`],
    ['tries', `${r.tries} of ${r.tryLimit}, ${r.crashes} crash(es)`],
    ['created', iso(r.createdAt)],
    ['delay until', iso(r.delayUntil)],
    ['started', iso(r.startedAt)],
    ['completed', iso(r.completedAt)],
  ];
  if (r.state === 'held') {
    // Claimed ahead of a free slot: the pid is the launcher's own, no try of it runs yet.
    fields.push([
      'held',
      `by launcher ${r.launcherId ?? '?'} (pid ${r.pid}) on ${r.host ?? '?'}, not started; lease until ${iso(r.leaseExpiresAt)}`,
    ]);
  } else if (r.pid !== null) {
    fields.push([
      'running',
      `${formatProcess(r.pid, r.threadId)} on ${r.host ?? '?'} (launcher ${r.launcherId ?? '?'}, lease until ${iso(r.leaseExpiresAt)})`,
    ]);
  }
  if (r.timeoutMs !== null) fields.push(['timeout', `${r.timeoutMs} ms per try`]);
  if (r.cancelRequestedAt !== null) fields.push(['cancel asked', iso(r.cancelRequestedAt)]);
  if (r.traceparent !== null) fields.push(['traceparent', r.traceparent]);
  const width = Math.max(...fields.map(([name]) => name.length)) + 2;
  const lines = [`request ${r.id}`, ...fields.map(([name, value]) => `  ${`${name}:`.padEnd(width)}${value}`)];
  lines.push('options:', indent(r.options ?? '(none)'));
  lines.push('result_text:', indent(r.resultText ?? '(none)'));
  lines.push(`tries (${r.attempts.length} ended):`);
  for (const attempt of r.attempts) lines.push(`  ${formatAttempt(attempt)}`);
  return `${lines.join('\n')}\n`;
}

function indent(text: string): string {
  return text
    .replace(/\n$/, '')
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

export const showCommand: CliCommand = {
  name: 'show',
  summary: 'print one request in full: state, options, result_text, its tries',
  usage: 'show <id> [options]',
  description: [
    'Prints the whole request: task, state (waiting, held, running, finished, failed, crashed,',
    'parked, cancelled), queue and priority, tries, timings, the process running it (pid or thread,',
    'host, launcher, lease) or the launcher holding it unstarted, its options as YAML, its',
    'result_text in full, and one line per ended try',
    '(as `attempts` prints them).',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print the request as one JSON object (dates as ISO strings, "attempts" an array)'],
  async run(context) {
    const id = requestIdArgument('show', context.positionals);
    const config = await context.loadConfig();
    const detail = await withInspector(config, context.logger(config), (inspector) => inspector.show(id));
    if (detail === null) throw new TaskRunnerError('REQUEST_NOT_FOUND', `request ${id} does not exist`);
    context.io.stdout.write(context.values.json === true ? `${JSON.stringify(detail)}\n` : formatRequest(detail));
    return 0;
  },
};
