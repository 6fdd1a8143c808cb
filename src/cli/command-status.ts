import path from 'node:path';
import { controlSocketPath } from '../standalone/control-protocol.js';
import type { StatusCounts } from '../store/state-counts.js';
import type { LauncherAlive, MinuteActivity, OpenActivity } from '../store/activity.js';
import { loadRuntime, type CliCommand } from './command.js';
import { formatProcess } from './format-process.js';
import { formatAge, withInspector } from './with-inspector.js';

/** Minutes of throughput `status` shows. */
const recentMinutes = 5;

/** What `status` reads from the table beside the counts. */
interface TableActivity extends OpenActivity {
  counts: StatusCounts;
  /** The last minutes, oldest first (the current minute last, partial). */
  minutes: MinuteActivity[];
  launchers: LauncherAlive[];
}

function formatActivity(activity: TableActivity): string {
  const lines: string[] = [];
  const sum = (key: 'finished' | 'failed' | 'crashed' | 'other') => activity.minutes.reduce((n, m) => n + m[key], 0);
  lines.push(
    `last ${recentMinutes} minutes: ${sum('finished')} finished, ${sum('failed')} failed, ${sum('crashed')} crashed, ` +
      `${sum('other')} other tries (${(sum('finished') / recentMinutes).toFixed(1)} finished/min)`,
  );
  lines.push(
    activity.oldestWaitingMs === null
      ? 'nothing waits'
      : `oldest waiting request: ${formatAge(activity.oldestWaitingMs)}`,
  );
  if (activity.depth.length > 0) {
    lines.push('open requests by queue and task (waiting / delayed / running / held):');
    for (const d of activity.depth)
      lines.push(
        `  ${d.queue}  ${d.taskClassName ?? '(no task)'}  ${d.waiting} / ${d.delayed} / ${d.running} / ${d.held}`,
      );
  }
  lines.push(`launchers alive: ${activity.launchers.length}`);
  for (const l of activity.launchers) {
    lines.push(
      `  ${l.host} pid ${l.pid}: ${l.running} of ${l.concurrency} running, ${l.held} held, heartbeat ${formatAge(l.heartbeatAgeMs)} ago`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A launcher's status as it comes over the control socket (dates as ISO strings). */
interface LauncherStatus {
  launcherId: string;
  host: string;
  pid: number;
  running: {
    id: string;
    taskClassName: string;
    tries: number;
    pid: number | null;
    startedAt: string;
    threadId?: number | null;
    mode?: string | null;
  }[];
  /** Rows it claimed ahead and holds, not started (absent from a launcher older than this CLI). */
  held?: number;
  counts: StatusCounts;
}

function formatCounts(table: string, counts: StatusCounts): string {
  return (
    `requests in ${table}: ${counts.waiting} waiting, ${counts.delayed} delayed, ${counts.running} running, ${counts.held} held, ` +
    `${counts.finished} finished, ${counts.givenUp} given up (${counts.cancelled} cancelled, ${counts.parked} parked)\n`
  );
}

export const statusCommand: CliCommand = {
  name: 'status',
  summary: "show the local launcher's running tasks and the request counts",
  usage: 'status [options]',
  description: [
    'Asks the launcher running here (on <tmpDir>/sockets/task_runner.sock) for its running tasks',
    'and the request counts; with no launcher running here, reads the counts from the database.',
    'Counts: waiting (runnable now), delayed (delay_until ahead), running (started), held',
    "(claimed by a launcher ahead of a free slot, not started: pid is the launcher's, started_at",
    'NULL), finished, given up (ended without FINISHED), of which cancelled and parked (after',
    'crashLimit crashes).',
    `Then: tries ended in the last ${recentMinutes} minutes, the oldest waiting request's wait, open`,
    'requests per queue and task, and the launchers alive (heart-beaten within a lease).',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: [
    '--json             print {"launcher": {...} | null, "counts", "depth", "oldestWaitingMs", "minutes", "launchers"}',
  ],
  async run(context) {
    const config = await context.loadConfig();
    const { requestControl } = await loadRuntime();
    const socketPath = controlSocketPath(config.tmpDir);
    const launcher = (await requestControl(socketPath, 'status', 10_000)) as LauncherStatus | null;
    const activity: TableActivity = await withInspector(config, context.logger(config), async (inspector) => {
      const [counts, open, minutes, launchers] = await Promise.all([
        inspector.counts(),
        inspector.open(),
        inspector.perMinute(recentMinutes),
        inspector.launchers(),
      ]);
      return { counts, ...open, minutes, launchers };
    });
    const counts = launcher?.counts ?? activity.counts;
    const out = context.io.stdout;
    if (context.values.json === true) {
      const { depth, oldestWaitingMs, minutes, launchers } = activity;
      out.write(`${JSON.stringify({ launcher, counts, depth, oldestWaitingMs, minutes, launchers })}\n`);
      return 0;
    }
    if (launcher === null) {
      out.write(
        `no launcher is running here (nothing answers on ${path.relative(context.io.cwd ?? process.cwd(), socketPath) || socketPath})\n`,
      );
    } else {
      const held = launcher.held === undefined ? '' : `, ${launcher.held} held`;
      out.write(
        `launcher ${launcher.launcherId} (pid ${launcher.pid} on ${launcher.host}): ${launcher.running.length} task(s) running${held}\n`,
      );
      for (const task of launcher.running) {
        const where = formatProcess(task.pid, task.threadId);
        out.write(
          `  ${task.id}  ${task.taskClassName}  try ${task.tries}  ${where}  ${task.mode ?? 'starting'}  since ${task.startedAt}\n`,
        );
      }
    }
    out.write(formatCounts(config.tableName, counts));
    out.write(formatActivity(activity));
    return 0;
  },
};
