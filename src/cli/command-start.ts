import { loadRuntime, type CliCommand } from './command.js';
import { installStopSignals } from './signals.js';

export const startCommand: CliCommand = {
  name: 'start',
  summary: 'run the launcher in the foreground until SIGTERM or SIGINT',
  usage: 'start [options]',
  description: [
    'Migrates the request table, then claims and runs requests until stopped. With no database',
    'configured it starts (or joins) the embedded PostgreSQL under <tmpDir>/embedded-pg (as root,',
    'when the postgres user cannot reach that directory: under /var/lib/cw-task-runner/projects);',
    'with no tasks directory configured it runs the bundled sample tasks (NoOp).',
    '',
    'Writes <tmpDir>/pids/task_runner_daemon.pid and answers `status` and `probe` on',
    '<tmpDir>/sockets/task_runner.sock. Logs go to stderr (CW_LOG_LEVEL, logLevel).',
    'SIGTERM or SIGINT stops it gracefully: running tasks get shutdownGraceMs to finish, then are',
    'terminated and their rows released. A second signal exits at once.',
    '',
    '`node dist/launcher.js` is the same command.',
  ].join('\n'),
  options: {},
  optionHelp: [],
  async run(context) {
    const config = await context.loadConfig();
    const logger = context.logger(config);
    const signals = installStopSignals(logger);
    try {
      const { startStandaloneLauncher } = await loadRuntime();
      const launcher = await startStandaloneLauncher({ config, logger });
      await signals.received;
      await launcher.stop();
      return 0;
    } finally {
      signals.dispose();
    }
  },
};
