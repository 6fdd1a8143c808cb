import { UsageError, integerFlag } from './args.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';
import { installStopSignals } from './signals.js';

export const dashboardCommand: CliCommand = {
  name: 'dashboard',
  summary: 'serve the web dashboard of the request table, with no launcher',
  usage: 'dashboard [options]',
  description: [
    'Serves the dashboard (overview, requests, one request, running tries; retry, cancel and',
    'delete) against the configured database until SIGTERM or SIGINT, whether or not a launcher',
    'runs. Prints the URL to open. Bound to 127.0.0.1 unless --host says; any other address needs',
    'an access token (--token, CW_DASHBOARD_TOKEN or dashboard.token in the config file).',
    'A launcher serves the same page itself when its config has `dashboard: { port, host }`.',
  ].join('\n'),
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    token: { type: 'string' },
    'read-only': { type: 'boolean' },
  },
  optionHelp: [
    '--port N           port to listen on (default: dashboard.port, else 8080; 0 picks a free one)',
    '--host H           address to bind (default: dashboard.host, else 127.0.0.1)',
    '--token T          access token, at least 16 characters (visible in the process list: prefer CW_DASHBOARD_TOKEN)',
    '--read-only        show everything, allow no action',
  ],
  async run(context) {
    const port = integerFlag('dashboard', 'port', context.values.port);
    const hostFlag = context.values.host;
    if (hostFlag !== undefined && (typeof hostFlag !== 'string' || hostFlag.trim() === ''))
      throw new UsageError('--host needs a value', 'dashboard');
    const tokenFlag = context.values.token;
    if (tokenFlag !== undefined && (typeof tokenFlag !== 'string' || tokenFlag === ''))
      throw new UsageError('--token needs a value', 'dashboard');
    const config = await context.loadConfig();
    const logger = context.logger(config);
    const signals = installStopSignals(logger);
    try {
      await withDatabase(config, logger, async (url) => {
        const { openCommandDb, startDashboard } = await loadRuntime();
        const db = openCommandDb(url);
        try {
          const dashboard = await startDashboard({
            db,
            tableName: config.tableName,
            port: port ?? config.dashboard?.port ?? 8080,
            host: (hostFlag as string | undefined) ?? config.dashboard?.host ?? '127.0.0.1',
            token: (tokenFlag as string | undefined) ?? config.dashboardToken,
            readOnly: context.values['read-only'] === true || (config.dashboard?.readOnly ?? false),
            staleMs: config.runner.leaseMs,
            logger,
          });
          context.io.stdout.write(`dashboard: ${dashboard.url}\n`);
          await signals.received;
          await dashboard.close();
        } finally {
          await db.destroy();
        }
      });
      return 0;
    } finally {
      signals.dispose();
    }
  },
};
