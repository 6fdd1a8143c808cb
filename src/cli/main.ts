import { TaskRunnerError, type ErrorCode } from '../errors.js';
import { configFlags, parseCommandLine, UsageError, type OptionSpecs } from './args.js';
import { createContext, type CliCommand, type CliIo } from './command.js';
import { attemptsCommand } from './command-attempts.js';
import { cancelCommand } from './command-cancel.js';
import { dashboardCommand } from './command-dashboard.js';
import { listCommand } from './command-list.js';
import { showCommand } from './command-show.js';
import { migrateCommand } from './command-migrate.js';
import { probeCommand } from './command-probe.js';
import { pruneCommand } from './command-prune.js';
import { recurringCommand } from './command-recurring.js';
import { retryCommand } from './command-retry.js';
import { scheduleCommand } from './command-schedule.js';
import { startCommand } from './command-start.js';
import { statusCommand } from './command-status.js';
import { commandHelp, programHelp, programName } from './help.js';

export const commands: readonly CliCommand[] = [
  startCommand,
  migrateCommand,
  scheduleCommand,
  statusCommand,
  probeCommand,
  retryCommand,
  cancelCommand,
  attemptsCommand,
  showCommand,
  listCommand,
  dashboardCommand,
  recurringCommand,
  pruneCommand,
];

export const exitCodes = Object.freeze({ ok: 0, failed: 1, usage: 2 });

/** Errors that mean "fix the command line or the configuration", reported with exit code 2. */
const usageCodes = new Set<ErrorCode>([
  'CONFIG_INVALID',
  'TABLE_NAME_INVALID',
  'OPTIONS_INVALID',
  'OPTIONS_TOO_LARGE',
  'TASK_UNKNOWN',
]);

function find(name: string): CliCommand | undefined {
  return commands.find((command) => command.name === name);
}

const allOptions: OptionSpecs = Object.assign({}, ...commands.map((command) => command.options));

/** True when a connection string carries a password (postgres://user:secret@host/db). */
function urlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return /:\/\/[^/@]*:[^/@]*@/.test(url);
  }
}

/** One line on stderr for what went wrong, and the exit code for it. */
function report(error: unknown, io: CliIo): number {
  const write = (message: string): void =>
    void io.stderr.write(`${programName}: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  if (error instanceof UsageError) {
    const help = error.command === null ? `${programName} --help` : `${programName} ${error.command} --help`;
    write(`${error.message} (see ${help})`);
    return exitCodes.usage;
  }
  if (error instanceof TaskRunnerError) {
    write(error.message);
    return usageCodes.has(error.code) ? exitCodes.usage : exitCodes.failed;
  }
  const system = error as NodeJS.ErrnoException | null;
  if (error instanceof Error && typeof system?.code === 'string' && typeof system.syscall === 'string') {
    // The system refused something (a directory not writable, a port taken): not a bug.
    write(error.message);
    return exitCodes.failed;
  }
  const pgCode = (error as { code?: unknown } | null)?.code;
  if (error instanceof Error && typeof pgCode === 'string' && /^[0-9A-Z]{5}$/.test(pgCode)) {
    // A PostgreSQL error: its message says it all; a missing table has an obvious remedy.
    write(`database error: ${error.message}${pgCode === '42P01' ? ` (run \`${programName} migrate\`)` : ''}`);
    return exitCodes.failed;
  }
  // Not expected: keep the stack, it is what a bug report needs.
  io.stderr.write(
    `${programName}: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  return exitCodes.failed;
}

/**
 * Runs one command line (`argv` without `node` and the script) and resolves with the exit code.
 * Never exits the process itself: `bin.ts` does, with the code.
 *
 * @example
 * process.exitCode = await runCli(['schedule', 'NoOp'], { stdout: process.stdout, stderr: process.stderr });
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    const parsed = parseCommandLine(argv, (name) => (name === 'help' ? {} : (find(name)?.options ?? null)), allOptions);
    if (parsed.command === null || parsed.command === 'help') {
      const topic = parsed.command === 'help' ? parsed.positionals[0] : undefined;
      if (topic !== undefined && topic !== 'help') {
        const command = find(topic);
        if (command === undefined) throw new UsageError(`unknown command "${topic}"`);
        io.stdout.write(commandHelp(command));
        return exitCodes.ok;
      }
      if (parsed.command === null && parsed.values.help !== true) {
        io.stderr.write(programHelp(commands));
        return exitCodes.usage;
      }
      io.stdout.write(programHelp(commands));
      return exitCodes.ok;
    }
    const command = find(parsed.command)!;
    if (parsed.values.help === true) {
      io.stdout.write(commandHelp(command));
      return exitCodes.ok;
    }
    if (
      ['start', 'migrate', 'status', 'probe', 'list', 'dashboard'].includes(command.name) &&
      parsed.positionals.length > 0
    ) {
      throw new UsageError(
        `${command.name} takes no arguments, got ${JSON.stringify(parsed.positionals[0])}`,
        command.name,
      );
    }
    const flags = configFlags(parsed.values);
    if (flags.databaseUrl !== undefined && urlHasPassword(flags.databaseUrl)) {
      io.stderr.write(
        `${programName}: warning: a password in --database-url can be read by every user of this machine in the process list; ` +
          'set DATABASE_URL, databaseUrl in the config file, or a ~/.pgpass file instead\n',
      );
    }
    const context = createContext(io, parsed, flags);
    return await command.run(context);
  } catch (error) {
    return report(error, io);
  }
}
