import { defaults } from '../config/runner-config.js';
import { TaskRunnerError } from '../errors.js';
import { bundledTasksDir } from '../standalone/bundled-tasks.js';
import type { ScheduleParams } from '../tasks/task.js';
import { integerFlag, parseDelayParams, UsageError } from './args.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';

type Runtime = Awaited<ReturnType<typeof loadRuntime>>;

function parseOptionsFlag(
  parseOptions: Runtime['parseOptions'],
  text: string,
  maxBytes: number,
): Record<string, unknown> {
  let value: unknown;
  try {
    value = parseOptions(text, maxBytes);
  } catch (error) {
    throw new UsageError(`--options: ${(error as Error).message.replace(/^invalid task options: /, '')}`, 'schedule');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(
      `--options must be a YAML or JSON map (for example 'created_from: cli'), got ${Array.isArray(value) ? 'a list' : `a ${typeof value}`}`,
      'schedule',
    );
  }
  return value as Record<string, unknown>;
}

export const scheduleCommand: CliCommand = {
  name: 'schedule',
  summary: 'add a request for a task; prints its id',
  usage: 'schedule <TaskName> [options]',
  description: [
    'Inserts one request row; a running launcher picks it up at once (LISTEN/NOTIFY).',
    'The name is checked against the tasks directory `start` would use with the same settings',
    '(--tasks-dir, CW_TASKS_DIR or tasksDir; else the bundled samples) unless --skip-check.',
    '',
    'Examples:',
    '  cw-task-runner schedule NoOp',
    "  cw-task-runner schedule NoOp --options 'created_from: cli'",
    "  cw-task-runner schedule Report --options '{accountId: 7}' --delay 5m --try-limit 3",
    '  cw-task-runner schedule Reindex --unique-key account:7 --unique-while waiting',
  ].join('\n'),
  options: {
    options: { type: 'string' },
    delay: { type: 'string' },
    'try-limit': { type: 'string' },
    priority: { type: 'string' },
    queue: { type: 'string' },
    'timeout-ms': { type: 'string' },
    'skip-check': { type: 'boolean' },
    'unique-key': { type: 'string' },
    'unique-while': { type: 'string' },
  },
  optionHelp: [
    '--options YAML      task options, a YAML (or JSON) map; default {}',
    '--delay WHEN        not before: 500ms, 30s, 5m, 2h, 1d from now, or an ISO date',
    `--try-limit N       tries before the request is given up (default ${defaults.tryLimit})`,
    '--priority N        higher runs first (default 0)',
    `--queue NAME        queue (default ${defaults.queue})`,
    '--timeout-ms N      hard timeout of each try; past it the try is killed (TIMED_OUT)',
    "--unique-key KEY    add no request while one with this key is active; print that one's id",
    '--unique-while S    with --unique-key: active (default), waiting, or ended-within:DURATION (e.g. 1h)',
    '--skip-check        do not check the name against the tasks directory (tasks of launchers elsewhere)',
  ],
  async run(context) {
    const { values, positionals } = context;
    if (positionals.length !== 1) {
      throw new UsageError(
        positionals.length === 0
          ? 'schedule needs a task name'
          : `schedule takes one task name, got ${positionals.length}`,
        'schedule',
      );
    }
    const taskClassName = positionals[0]!;
    const config = await context.loadConfig();
    const { createClient, openCommandPool, parseOptions, TaskRegistry } = await loadRuntime();
    const maxOptionsBytes = config.runner.maxOptionsBytes ?? defaults.maxOptionsBytes;
    const options =
      typeof values.options === 'string' ? parseOptionsFlag(parseOptions, values.options, maxOptionsBytes) : {};
    const params: ScheduleParams = {};
    if (typeof values.delay === 'string') Object.assign(params, parseDelayParams(values.delay));
    const tryLimit = integerFlag('schedule', 'try-limit', values['try-limit']);
    if (tryLimit !== undefined) params.tryLimit = tryLimit;
    const priority = integerFlag('schedule', 'priority', values.priority);
    if (priority !== undefined) params.priority = priority;
    const timeoutMs = integerFlag('schedule', 'timeout-ms', values['timeout-ms']);
    if (timeoutMs !== undefined) params.timeoutMs = timeoutMs;
    if (values.queue !== undefined) {
      if (typeof values.queue !== 'string' || values.queue === '')
        throw new UsageError('--queue needs a name', 'schedule');
      params.queue = values.queue;
    }
    if (values['unique-key'] !== undefined) {
      if (typeof values['unique-key'] !== 'string' || values['unique-key'] === '')
        throw new UsageError('--unique-key needs a key', 'schedule');
      params.uniqueKey = values['unique-key'];
    }
    if (values['unique-while'] !== undefined) {
      if (params.uniqueKey === undefined) throw new UsageError('--unique-while needs --unique-key', 'schedule');
      params.uniqueWhile = values['unique-while'] as ScheduleParams['uniqueWhile'];
    }
    const tasksDir = values['skip-check'] === true ? undefined : (config.tasksDir ?? bundledTasksDir());
    if (tasksDir !== undefined) {
      // Checked before any connection is made, so a typo fails fast (and names the known tasks).
      await new TaskRegistry(tasksDir).resolve(taskClassName).catch((error: unknown) => {
        if (error instanceof TaskRunnerError && error.code === 'TASK_UNKNOWN') {
          throw new TaskRunnerError('TASK_UNKNOWN', `${error.message} (in ${tasksDir})`);
        }
        throw error;
      });
    }
    const logger = context.logger(config);
    const id = await withDatabase(config, logger, async (url) => {
      const pool = openCommandPool(url);
      const client = createClient({ db: pool, tableName: config.tableName, tasksDir, maxOptionsBytes });
      try {
        return await client.schedule(taskClassName, options, params);
      } finally {
        await client.close();
        await pool.end();
      }
    });
    context.io.stdout.write(`${id}\n`);
    return 0;
  },
};
