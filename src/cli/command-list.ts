import { requestStates, type RequestState } from '../store/fragments.js';
import type { RequestSummary } from '../store/inspection.js';
import { integerFlag, UsageError } from './args.js';
import type { CliCommand } from './command.js';
import { printRecurring } from './recurring-listing.js';
import { formatAge, withInspector } from './with-inspector.js';

/** One line: id, state, task, queue, tries, age, and the first line of the result (cut at 60). */
export function formatSummary(r: RequestSummary, nowMs: number): string {
  const preview = (r.resultPreview ?? '').split('\n', 1)[0]!.trim();
  const short = preview.length > 60 ? `${preview.slice(0, 59)}…` : preview;
  return [
    r.id.padStart(6),
    r.state.padEnd(9),
    r.taskClassName ?? '(no task)',
    r.queue,
    `try ${r.tries}/${r.tryLimit}`,
    `${formatAge(nowMs - r.createdAt.getTime())} ago`,
    short,
  ]
    .filter((part) => part !== '')
    .join('  ');
}

export const listCommand: CliCommand = {
  name: 'list',
  summary: 'list requests newest first, one line each, filtered by state, task or queue',
  usage: 'list [options] | list --recurring [--json]',
  description: [
    'Prints requests newest first: id, state, task, queue, tries, age and the start of the result.',
    `States: ${requestStates.join(', ')}`,
    '(held: claimed by a launcher, not started; running: started; crashed includes TIMED_OUT;',
    'failed: ended FAILED or with any other result, or never ended with no try left).',
    'Pages: --before ID continues below the last id printed (the JSON output gives it as nextBefore).',
    'With --recurring it lists the recurring entries instead, as the `recurring` command does.',
  ].join('\n'),
  options: {
    state: { type: 'string' },
    task: { type: 'string' },
    queue: { type: 'string' },
    text: { type: 'string' },
    limit: { type: 'string' },
    before: { type: 'string' },
    json: { type: 'boolean' },
    recurring: { type: 'boolean' },
  },
  optionHelp: [
    '--state STATE      waiting, held, running, finished, failed, crashed, parked or cancelled',
    '--task NAME        only this task',
    '--queue Q          only this queue',
    '--text TEXT        result_text contains TEXT (any case); each page searches 100000 ids at most',
    '--limit N          at most N requests (1 to 1000, default 20)',
    '--before ID        only ids below ID (the next page)',
    '--json             print {"requests": [...], "nextBefore": id | null, "searchedDownTo": id | null}',
    '--recurring        the recurring entries with their last and next run (same as `recurring`)',
  ],
  async run(context) {
    const v = context.values;
    if (v.recurring === true) {
      // Entries are not requests: a request filter would be silently ignored, so refuse it.
      const filter = ['state', 'task', 'queue', 'text', 'limit', 'before'].find((name) => v[name] !== undefined);
      if (filter !== undefined)
        throw new UsageError(`--recurring lists recurring entries and takes no --${filter}`, 'list');
      return printRecurring(context);
    }
    const text = (name: string): string | undefined => {
      const value = v[name];
      if (value === undefined) return undefined;
      if (typeof value !== 'string' || value.trim() === '') throw new UsageError(`--${name} needs a value`, 'list');
      return value.trim();
    };
    const state = text('state');
    if (state !== undefined && !requestStates.includes(state as RequestState)) {
      throw new UsageError(`--state must be one of ${requestStates.join(', ')}; got ${JSON.stringify(state)}`, 'list');
    }
    const limit = integerFlag('list', 'limit', v.limit) ?? 20;
    if (limit < 1 || limit > 1000) throw new UsageError(`--limit must be from 1 to 1000, got ${limit}`, 'list');
    const before = text('before');
    if (before !== undefined && !/^\d{1,19}$/.test(before))
      throw new UsageError(`--before must be a request id, got ${JSON.stringify(before)}`, 'list');
    const config = await context.loadConfig();
    const page = await withInspector(config, context.logger(config), (inspector) =>
      inspector.list({
        state: state as RequestState | undefined,
        taskClassName: text('task'),
        queue: text('queue'),
        text: text('text'),
        limit,
        before,
      }),
    );
    const out = context.io.stdout;
    if (v.json === true) {
      out.write(`${JSON.stringify(page)}\n`);
      return 0;
    }
    if (page.requests.length === 0) out.write('no request matches\n');
    const now = Date.now();
    for (const request of page.requests) out.write(`${formatSummary(request, now)}\n`);
    if (page.nextBefore !== null) {
      // A text search looks at a window of ids per page: say so, or an empty page looks final.
      const searched =
        page.searchedDownTo === null ? '' : ` (the text search looked at ids down to ${page.searchedDownTo})`;
      out.write(`more: --before ${page.nextBefore}${searched}\n`);
    }
    return 0;
  },
};
