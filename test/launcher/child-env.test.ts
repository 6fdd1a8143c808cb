import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runTaskOnce } from '../../dist/index.js';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * Children get an allowlisted environment, and a heap limit when one is set. Node adds its own
 * NODE_CHANNEL_* variables to a forked child for the IPC channel; those are not the launcher's.
 */
const runners = useTestRunners();
const own = (keys: string[]): string[] => keys.filter((key) => !key.startsWith('NODE_CHANNEL_'));

const t = useTestDatabase();
beforeEach(() => {
  process.env.CWTR_TEST_SECRET = 'hunter2';
  process.env.LC_CWTR_TEST = 'C';
});
afterEach(() => {
  delete process.env.CWTR_TEST_SECRET;
  delete process.env.LC_CWTR_TEST;
});

async function keysSeenBy(overrides: Parameters<typeof runners.create>[1]): Promise<string[]> {
  const runner = runners.create(t, overrides);
  await runner.start();
  const id = await runner.schedule('Env');
  const row = await waitForCompleted(t.pool, id);
  await runner.stop();
  expect(row.result).toBe('FINISHED');
  return own(JSON.parse(row.result_text));
}

describe('child environment', () => {
  it('passes only the default allowlist, prefixes included', async () => {
    const keys = await keysSeenBy({ childEnv: null });
    expect(keys).toContain('PATH');
    expect(keys).toContain('LC_CWTR_TEST');
    expect(keys).not.toContain('CWTR_TEST_SECRET');
    expect(keys).not.toContain('NODE_EXTRA_CA_CERTS');
    const allowed = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_.*|TZ|TMPDIR|TERM|NODE_ENV|DATABASE_URL)$/;
    expect(keys.filter((key) => !allowed.test(key))).toEqual([]);
  });

  it('passes exactly a configured allowlist plus the variables set explicitly', async () => {
    const keys = await keysSeenBy({ childEnvAllowlist: ['CWTR_TEST_SECRET'], childEnv: { EXTRA: '1' } });
    expect(keys).toEqual(['CWTR_TEST_SECRET', 'EXTRA']);
  });

  it('gives a worker thread the same allowlisted environment as its process.env', async () => {
    const keys = await keysSeenBy({
      defaultMode: 'thread',
      childEnvAllowlist: ['CWTR_TEST_SECRET'],
      childEnv: { EXTRA: '1' },
    });
    expect(keys).toEqual(['CWTR_TEST_SECRET', 'EXTRA']);
  });

  it("passes everything with ['*']", async () => {
    const keys = await keysSeenBy({ childEnvAllowlist: ['*'], childEnv: null });
    expect(keys).toContain('CWTR_TEST_SECRET');
    expect(keys.length).toBe(own(Object.keys(process.env)).length);
  });

  it('runTaskOnce gives the child the same environment a runner would', async () => {
    const report = await runTaskOnce({ tasksDir: fixturesDir, taskClassName: 'Env', childExecArgv: [] });
    expect(report.outcome).toBe('finished');
    const keys = own(JSON.parse((report as { resultText: string }).resultText));
    expect(keys).not.toContain('CWTR_TEST_SECRET');
    expect(keys).toContain('PATH');
  });
});

describe('child heap limit', () => {
  it('records a child that outgrows childMaxOldSpaceMb as CRASHED with the reason from stderr', async () => {
    const runner = runners.create(t, { childMaxOldSpaceMb: 32 });
    await runner.start();
    const id = await runner.schedule('Hog', {}, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id, 30_000);
    await runner.stop();
    expect(row).toMatchObject({ result: 'CRASHED', tries: 1, pid: null });
    expect(row.result_text).toMatch(/heap/i);
  });

  it('lets the same task finish within its limit', async () => {
    const runner = runners.create(t, { childMaxOldSpaceMb: 256 });
    await runner.start();
    const id = await runner.schedule('Hog', { maxMb: 2 });
    expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'FINISHED', result_text: 'held 2 chunks' });
    await runner.stop();
  });
});
