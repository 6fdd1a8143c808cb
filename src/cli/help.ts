import type { CliCommand } from './command.js';

export const programName = 'cw-task-runner';

const globalHelp = [
  '--database-url URL  PostgreSQL to use (env DATABASE_URL); default: the embedded server',
  '--tasks-dir DIR     directory of task files (env CW_TASKS_DIR)',
  '--config FILE       YAML or JSON config file (env CW_CONFIG); default ./cw-task-runner.yml if present',
  '--table NAME        request table (env CW_TABLE_NAME); default task_runner_requests',
  '-h, --help          show help',
];

function indent(lines: readonly string[]): string {
  return lines.map((line) => `  ${line}`).join('\n');
}

export function commandHelp(command: CliCommand): string {
  const parts = [`Usage: ${programName} ${command.usage}`, '', command.description, ''];
  if (command.optionHelp.length > 0) parts.push('Options:', indent(command.optionHelp), '');
  parts.push('Global options:', indent(globalHelp), '');
  return parts.join('\n');
}

export function programHelp(commands: readonly CliCommand[]): string {
  const width = Math.max(...commands.map((command) => command.name.length), 4) + 2;
  return [
    `Usage: ${programName} <command> [options]`,
    '',
    'A PostgreSQL-backed task runner: every task runs in a child process of its own.',
    '',
    'Commands:',
    indent(commands.map((command) => `${command.name.padEnd(width)}${command.summary}`)),
    indent([`${'help'.padEnd(width)}show help for a command (or: <command> --help)`]),
    '',
    'Global options:',
    indent(globalHelp),
    '',
    'Environment: DATABASE_URL, CW_TASKS_DIR, CW_CONCURRENCY, CW_POLL_INTERVAL_MS, CW_TABLE_NAME,',
    'CW_LOG_LEVEL, CW_CONFIG. Flags override the environment, which overrides the config file.',
    'Exit codes: 0 done, 1 failed, 2 usage or configuration error.',
    '',
  ].join('\n');
}
