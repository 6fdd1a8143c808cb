/**
 * Confinement from the standalone launcher's config file, as an operator sets it: the launcher
 * runs as root with its database URL in its environment; its tasks run as `nobody`, without
 * that URL, and under the limits the file names.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nobodyReachesCheckout } from '../helpers/child-user.js';
import { waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { cleanEnv, cli, cliProcess, launcherProcesses, startLauncher, workDir } from '../cli/cli-process.js';

const files = launcherProcesses();
const { launchers, cleanups } = files;

async function setup(settings: string[]): Promise<{ cwd: string; env: NodeJS.ProcessEnv }> {
  const { dir, remove } = await workDir();
  cleanups.push(remove);
  await writeFile(
    path.join(dir, 'cw-task-runner.yml'),
    [
      `tasksDir: ${JSON.stringify(fixturesDir)}`,
      'concurrency: 2',
      'shutdownGraceMs: 300',
      'killTimeoutMs: 300',
      ...settings,
    ].join('\n'),
  );
  return { cwd: dir, env: cleanEnv({ DATABASE_URL: files.t.url }) };
}

describe.skipIf(!nobodyReachesCheckout)('confinement in cw-task-runner.yml', () => {
  it('runs tasks as childUser, without the database URL, under childLimits', async () => {
    const where = await setup(['childUser: nobody', 'childLimits: { cpuSeconds: 1, openFiles: 256 }']);
    const launcher = await startLauncher([], where);
    launchers.push(launcher);
    const escape = (
      await cliProcess(['schedule', 'Escape', '--options', 'secret: DATABASE_URL='], where)
    ).stdout.trim();
    const spin = (await cliProcess(['schedule', 'Spin', '--try-limit', '1'], where)).stdout.trim();
    const seen = JSON.parse((await waitForCompleted(files.t.pool, escape, 30_000)).result_text);
    expect(seen).toMatchObject({ uid: 65534, launcherEnviron: 'EACCES', databaseUrl: null });
    expect(seen.limits).toMatchObject({ 'Max open files': '256:256', 'Max cpu time': '1:2' });
    const spun = await waitForCompleted(files.t.pool, spin, 30_000);
    expect(spun.result).toBe('CRASHED');
    expect(spun.result_text).toMatch(/CPU time limit \(1 s\) exceeded/);
    expect(await launcher.stop()).toBe(0);
  });

  it('refuses to start with an unknown childUser, naming the field (exit code 2)', async () => {
    const where = await setup(['childUser: no-such-user-cwtr']);
    const result = await cli(['start'], where);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/childUser.*no user named "no-such-user-cwtr"/);
  });
});
