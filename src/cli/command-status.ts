import path from 'node:path';
import { controlSocketPath } from '../launcher/standalone/control-protocol.js';
import type { StatusCounts } from '../store/request-store.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';
import { formatProcess } from './format-process.js';

/** A launcher's status as it comes over the control socket (dates as ISO strings). */
interface LauncherStatus {
  launcherId: string;
  host: string;
  pid: number;
  running: {
    id: string; taskClassName: string; tries: number; pid: number | null; startedAt: string;
    threadId?: number | null; mode?: string | null;
  }[];
  counts: StatusCounts;
}

function formatCounts(table: string, counts: StatusCounts): string {
  return `requests in ${table}: ${counts.waiting} waiting, ${counts.delayed} delayed, ${counts.running} running, ` +
    `${counts.finished} finished, ${counts.givenUp} given up (${counts.cancelled} cancelled, ${counts.parked} parked)\n`;
}

export const statusCommand: CliCommand = {
  name: 'status',
  summary: "show the local launcher's running tasks and the request counts",
  usage: 'status [options]',
  description: [
    'Asks the launcher running here (on <tmpDir>/sockets/task_runner.sock) for its running tasks',
    'and the request counts; with no launcher running here, reads the counts from the database.',
    'Counts: waiting (runnable now), delayed (delay_until ahead), running (pid set), finished,',
    'given up (ended without FINISHED), of which cancelled and parked (after crashLimit crashes).',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print {"launcher": ... | null, "counts": ...} as JSON'],
  async run(context) {
    const config = await context.loadConfig();
    const { createScheduler, openCommandPool, requestControl } = await loadRuntime();
    const socketPath = controlSocketPath(config.tmpDir);
    const launcher = (await requestControl(socketPath, 'status', 10_000)) as LauncherStatus | null;
    const counts = launcher?.counts ?? (await withDatabase(config, context.logger(config), async (url) => {
      const pool = openCommandPool(url);
      const scheduler = createScheduler({ db: pool, tableName: config.tableName });
      try {
        return await scheduler.counts();
      } finally {
        await scheduler.close();
        await pool.end();
      }
    }));
    const out = context.io.stdout;
    if (context.values.json === true) {
      out.write(`${JSON.stringify({ launcher, counts })}\n`);
      return 0;
    }
    if (launcher === null) {
      out.write(`no launcher is running here (nothing answers on ${path.relative(context.io.cwd ?? process.cwd(), socketPath) || socketPath})\n`);
    } else {
      out.write(`launcher ${launcher.launcherId} (pid ${launcher.pid} on ${launcher.host}): ${launcher.running.length} task(s) running\n`);
      for (const task of launcher.running) {
        const where = formatProcess(task.pid, task.threadId);
        out.write(`  ${task.id}  ${task.taskClassName}  try ${task.tries}  ${where}  ${task.mode ?? 'starting'}  since ${task.startedAt}\n`);
      }
    }
    out.write(formatCounts(config.tableName, counts));
    return 0;
  },
};
