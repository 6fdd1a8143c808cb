import type { ProbeResult } from '../launcher/probe-service.js';
import { bundledTasksDir } from '../standalone/bundled-tasks.js';
import { controlSocketPath } from '../standalone/control-protocol.js';
import { loadRuntime, withDatabase, type CliCommand } from './command.js';

export const probeCommand: CliCommand = {
  name: 'probe',
  summary: 'mark requests whose process is gone as CRASHED (this host), recover expired leases',
  usage: 'probe [options]',
  description: [
    'The pid probe: checks the running rows of this host and marks those whose process is',
    'gone (or whose pid now names another process) CRASHED, which makes them runnable again while',
    "tries remain; rows of other hosts are recovered only once their launcher's lease has expired.",
    'Runs in the launcher running here when there is one, else in this process.',
    'A running launcher also probes at start and every probeIntervalMs.',
  ].join('\n'),
  options: { json: { type: 'boolean' } },
  optionHelp: ['--json             print {"crashed": [ids], "recovered": [ids]} as JSON'],
  async run(context) {
    const config = await context.loadConfig();
    const { createRunner, requestControl } = await loadRuntime();
    let result = (await requestControl(controlSocketPath(config.tmpDir), 'probe')) as ProbeResult | null;
    result ??= await withDatabase(config, context.logger(config), async (url) => {
      const runner = createRunner({
        ...config.runner,
        db: url,
        tasksDir: config.tasksDir ?? bundledTasksDir(),
        tableName: config.tableName,
        autoMigrate: false,
      });
      try {
        return await runner.probe();
      } finally {
        await runner.stop();
      }
    });
    const out = context.io.stdout;
    if (context.values.json === true) {
      out.write(`${JSON.stringify(result)}\n`);
      return 0;
    }
    const ids = (list: string[]): string => (list.length > 0 ? ` (${list.join(', ')})` : '');
    out.write(
      `crashed: ${result.crashed.length}${ids(result.crashed)}; recovered by lease: ${result.recovered.length}${ids(result.recovered)}\n`,
    );
    return 0;
  },
};
