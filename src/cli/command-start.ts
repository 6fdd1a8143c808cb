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
    'A database that is down or has no free connection at start is waited for, each try logged,',
    'with waits doubling up to startRetry.maxMs (startRetry in the config file; giveUpAfterMs',
    'bounds the wait, after which it exits 1; default: it waits until stopped).',
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
    // A stop asked for while the launcher still waits for its database ends that wait.
    const starting = new AbortController();
    void signals.received.then(() => starting.abort());
    try {
      const { startStandaloneLauncher } = await loadRuntime();
      let launcher;
      try {
        launcher = await startStandaloneLauncher({ config, logger, signal: starting.signal });
      } catch (error) {
        if (!starting.signal.aborted) throw error;
        logger.info('stopped before the launcher was up');
        return 0;
      }
      await signals.received;
      await launcher.stop();
      return 0;
    } finally {
      signals.dispose();
    }
  },
};
