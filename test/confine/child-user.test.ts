import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asRoot, nobodyReachesCheckout } from '../helpers/child-user.js';
import { useTestDatabase, waitForCompleted } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * `childUser` is the boundary between tasks and the launcher: a task running as an unprivileged
 * user cannot write root's files nor read the launcher's environment. Each test runs a task
 * that tries; the same task run as the launcher's user shows that without `childUser` it can.
 */
const runners = useTestRunners();
const t = useTestDatabase();
let dir: string;
let rootFile: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cwtr-confine-'));
  chmodSync(dir, 0o755);
  rootFile = path.join(dir, 'root-only.txt');
  writeFileSync(rootFile, 'root only\n', { mode: 0o644 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function escape(overrides: Parameters<typeof runners.create>[1]): Promise<Record<string, unknown>> {
  const runner = await runners.start(t, overrides);
  const id = await runner.schedule('Escape', { rootFile, secret: 'PATH=' }, { tryLimit: 1 });
  const row = await waitForCompleted(t.pool, id);
  await runner.stop();
  expect(row.result, row.result_text).toBe('FINISHED');
  return JSON.parse(row.result_text);
}

describe.skipIf(!asRoot)('childUser (launcher running as root)', () => {
  it('without it, a task runs as root: it writes a root-only file and reads the launcher environment', async () => {
    const seen = await escape({});
    expect(seen).toMatchObject({ uid: 0, writeRootFile: 'ok', launcherEnviron: 'read the secret' });
    writeFileSync(rootFile, 'root only\n');
  });

  it.skipIf(!nobodyReachesCheckout)(
    'as nobody, a task cannot write a root-only file, read /proc/<launcher>/environ, or signal the launcher',
    async () => {
      const seen = await escape({ childUser: 'nobody' });
      expect(seen).toMatchObject({ uid: 65534, gid: 65534, writeRootFile: 'EACCES', launcherEnviron: 'EACCES' });
      // The launcher's supplementary groups are dropped, not inherited.
      expect(seen.groups).not.toContain(0);
      // The runtime refuses the launcher's pid before the kernel would (EPERM as another user).
      expect(String(seen.killLauncher)).not.toBe('ok');
      expect(statSync(rootFile).size).toBe('root only\n'.length);
    },
  );

  it.skipIf(!nobodyReachesCheckout)('takes childGroup, and a numeric uid', async () => {
    const seen = await escape({ childUser: 65534, childGroup: 'nogroup' });
    expect(seen).toMatchObject({ uid: 65534, gid: 65534, writeRootFile: 'EACCES' });
  });

  it.skipIf(!nobodyReachesCheckout)(
    'holds for reused children and spares too (every child of the pool runs as the user)',
    async () => {
      const runner = await runners.start(t, {
        childUser: 'nobody',
        spareChildren: 2,
        maxTasksPerChild: 10,
        concurrency: 1,
      });
      const ids = await Promise.all([1, 2, 3].map(() => runner.schedule('Escape', { rootFile }, { tryLimit: 1 })));
      for (const id of ids) {
        const row = await waitForCompleted(t.pool, id);
        expect(JSON.parse(row.result_text)).toMatchObject({ uid: 65534, writeRootFile: 'EACCES' });
      }
      await runner.stop();
    },
  );

  it('refuses to start when the user cannot read the tasks directory, naming the path', async () => {
    const hidden = mkdtempSync(path.join(tmpdir(), 'cwtr-hidden-'));
    chmodSync(hidden, 0o700);
    copyFileSync(path.join(fixturesDir, 'Echo.mjs'), path.join(hidden, 'Echo.mjs'));
    try {
      const runner = runners.create(t, { childUser: 'nobody', tasksDir: hidden });
      await expect(runner.start()).rejects.toThrow(
        new RegExp(`childUser nobody .* cannot read .*${hidden} \\(EACCES\\)`),
      );
      await runner.stop();
    } finally {
      rmSync(hidden, { recursive: true, force: true });
    }
  });

  it('refuses an unknown user and a group without a user, by field', async () => {
    expect(() => runners.create(t, { childUser: 'no-such-user-cwtr' })).toThrow(
      /"childUser".*no user named "no-such-user-cwtr"/,
    );
    expect(() => runners.create(t, { childGroup: 'nogroup' })).toThrow(/"childGroup".*needs childUser/);
    expect(() => runners.create(t, { childUser: 'nobody', childGroup: 'no-such-group-cwtr' })).toThrow(
      /"childGroup".*no group named/,
    );
    expect(() => runners.create(t, { childUser: 'root' })).toThrow(/"childUser".*unprivileged/);
  });

  it.skipIf(!nobodyReachesCheckout)('refuses childUser when the launcher is not root, saying so', () => {
    const config = new URL('../../dist/config/runner-config.js', import.meta.url).pathname;
    const script = `import(${JSON.stringify(config)}).then((m) => {
      try { m.resolveRunnerConfig({ db: 'postgres://x/y', tasksDir: '/', childUser: 'daemon' }); console.log('accepted'); }
      catch (e) { console.log(e.message); } })`;
    const out = execFileSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, cwd: '/', encoding: 'utf8' });
    expect(out).toMatch(/"childUser".*needs the launcher to run as root; it runs as uid 65534/);
  });
});

describe.skipIf(!asRoot)('childUser and the traits inspection', () => {
  async function peek(overrides: Parameters<typeof runners.create>[1]): Promise<string[]> {
    const peekDir = mkdtempSync(path.join(tmpdir(), 'cwtr-peek-'));
    chmodSync(peekDir, 0o777);
    const file = path.join(peekDir, 'seen.txt');
    try {
      const runner = await runners.start(t, {
        childEnv: { PATH: process.env.PATH ?? '/usr/bin:/bin', CWTR_PEEK_FILE: file },
        ...overrides,
      });
      const id = await runner.schedule('TopLevelPeek', {}, { tryLimit: 1 });
      expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'FINISHED', result_text: 'ran' });
      await runner.stop();
      const { readFileSync } = await import('node:fs');
      return readFileSync(file, 'utf8').trim().split('\n').sort();
    } finally {
      rmSync(peekDir, { recursive: true, force: true });
    }
  }

  it("without it, a task file's top-level code runs in a launcher thread, as root, and reads the launcher's environment", async () => {
    // Once in the inspector thread, once in the try's child.
    expect(await peek({})).toEqual(['0 read', '0 read']);
  });

  it.skipIf(!nobodyReachesCheckout)(
    'with it, the file is inspected in a process as the child user: its top-level code never runs as root',
    async () => {
      expect(await peek({ childUser: 'nobody' })).toEqual(['65534 EACCES', '65534 EACCES']);
    },
  );
});
