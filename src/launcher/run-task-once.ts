import path from 'node:path';
import { isUnconfined } from '../config/confinement.js';
import { defaults, resolveRunnerConfig, type RunnerOptions } from '../config/runner-config.js';
import { runtimePaths } from '../pool/confined-spawn.js';
import type { AttemptReport } from '../pool/attempt.js';
import { ForkPool } from '../pool/fork-pool.js';
import { TryGroups } from '../pool/try-cgroup.js';
import { silentLogger } from '../shared/logger.js';
import { stringifyOptions } from '../tasks/options.js';
import { TaskRegistry } from '../tasks/registry.js';
import { checkConfinement } from './launcher-parts.js';

/**
 * The child's settings, as in `createRunner`: the allowlisted launcher variables plus `childEnv`,
 * Node flags, heap limit, user, group, limits and permission policy (what the task class declares
 * is not read here), and the size caps of options and result.
 */
type ChildSettings = Pick<
  RunnerOptions,
  | 'childEnvAllowlist'
  | 'childEnv'
  | 'childExecArgv'
  | 'childMaxOldSpaceMb'
  | 'childUser'
  | 'childGroup'
  | 'childLimits'
  | 'childPermissions'
  | 'maxOptionsBytes'
  | 'maxResultBytes'
>;

export interface RunTaskOnceOptions extends ChildSettings {
  tasksDir: string;
  taskClassName: string;
  /** Options as data (stored as YAML first, as `schedule` would) or as YAML text, like a row's. */
  options?: unknown;
  optionsYaml?: string;
  /** The request id the task sees. Default `"0"`. */
  id?: string;
  tries?: number;
  tryLimit?: number;
  /** Hard timeout; past it the child is killed and the report is `aborted` with reason `timeout`. */
  timeoutMs?: number;
  /**
   * Each line the task writes, as it comes (the launcher logs these as `[task <id> stdout] …`):
   * pass `(stream, line) => console.log(line)` to watch a task by hand.
   */
  onOutput?(stream: 'stdout' | 'stderr', line: string): void;
}

/** One line the task wrote, as the launcher's log shows it. */
export interface TaskOutputLine {
  stream: 'stdout' | 'stderr';
  line: string;
}

/** How the try ended, and what the task wrote during it (the first {@link maxKeptOutputChars}). */
export type RunTaskOnceResult = AttemptReport & { output: TaskOutputLine[] };

/**
 * Output kept in the result, in characters: a task that writes without end must not fill the
 * caller's memory. Past it the lines still go to `onOutput`, and the last line kept says how
 * many were not.
 */
export const maxKeptOutputChars = 1024 * 1024;

/** Collects a try's lines up to the cap, counting what is left out. */
function outputCollector(onOutput: RunTaskOnceOptions['onOutput']): {
  hook(stream: TaskOutputLine['stream'], line: string): void;
  lines(): TaskOutputLine[];
} {
  const kept: TaskOutputLine[] = [];
  let keptChars = 0;
  let droppedLines = 0;
  let droppedChars = 0;
  return {
    hook(stream, line) {
      onOutput?.(stream, line);
      if (droppedLines === 0 && keptChars + line.length <= maxKeptOutputChars) {
        kept.push({ stream, line });
        keptChars += line.length;
      } else {
        droppedLines += 1;
        droppedChars += line.length;
      }
    },
    lines() {
      if (droppedLines === 0) return kept;
      const note = `[${droppedLines} more lines (${droppedChars} characters) of output not kept: runTaskOnce keeps ${maxKeptOutputChars}; onOutput got them all]`;
      return [...kept, { stream: 'stderr', line: note }];
    },
  };
}

/**
 * Runs one task exactly as the launcher would, without a database: the name is resolved in the
 * tasks directory, the options go through YAML, the task runs in a forked child, and the report
 * says how it ended (finished with its result text, failed with the error and stack, or crashed
 * with exit code or signal). What the task wrote to stdout and stderr is in `output`, line by
 * line as the launcher's log has it, and goes to `onOutput` as it comes.
 *
 * @example
 * const report = await runTaskOnce({ tasksDir: './dist/tasks', taskClassName: 'SendReport', options: { accountId: 7 } });
 * for (const { stream, line } of report.output) console.log(`[${stream}] ${line}`);
 * if (report.outcome !== 'finished') console.error(report);
 */
export async function runTaskOnce(options: RunTaskOnceOptions): Promise<RunTaskOnceResult> {
  const tasksDir = path.resolve(options.tasksDir);
  const maxOptionsBytes = options.maxOptionsBytes ?? defaults.maxOptionsBytes;
  const file = await new TaskRegistry(tasksDir).resolve(options.taskClassName);
  const yaml = options.optionsYaml ?? stringifyOptions(options.options ?? {}, maxOptionsBytes);
  // The same environment and Node arguments a runner would give the child.
  const config = resolveRunnerConfig({
    db: 'postgres://unused',
    tasksDir,
    childEnvAllowlist: options.childEnvAllowlist,
    childEnv: options.childEnv,
    childExecArgv: options.childExecArgv,
    childMaxOldSpaceMb: options.childMaxOldSpaceMb,
    childUser: options.childUser,
    childGroup: options.childGroup,
    childLimits: options.childLimits,
    childPermissions: options.childPermissions,
  });
  await checkConfinement(config);
  const tryGroups = TryGroups.open({ threads: false });
  const pool = new ForkPool({
    tryGroups,
    concurrency: 1,
    spareChildren: 0,
    maxTasksPerChild: 1,
    maxRssBytes: null,
    idleMs: defaults.childIdleMs,
    env: config.childEnv,
    execArgv: config.childExecArgv,
    killTimeoutMs: defaults.killTimeoutMs,
    logger: silentLogger,
    confinement: isUnconfined(config.childConfinement) ? null : config.childConfinement,
    readable: [...runtimePaths(), tasksDir],
  });
  const controller = new AbortController();
  const timer =
    options.timeoutMs === undefined ? null : setTimeout(() => controller.abort('timeout'), options.timeoutMs);
  const output = outputCollector(options.onOutput);
  try {
    const report = await pool.run(
      {
        request: {
          id: options.id ?? '0',
          taskClassName: options.taskClassName,
          tries: options.tries ?? 1,
          tryLimit: options.tryLimit ?? defaults.tryLimit,
          queue: defaults.queue,
          priority: 0,
          createdAt: new Date().toISOString(),
        },
        file,
        options: yaml,
        maxOptionsBytes,
        maxResultBytes: options.maxResultBytes ?? defaults.maxResultBytes,
      },
      { onOutput: (stream, line) => output.hook(stream, line) },
      controller.signal,
    );
    return { ...report, output: output.lines() };
  } finally {
    if (timer !== null) clearTimeout(timer);
    await pool.close();
    await tryGroups.close();
  }
}
