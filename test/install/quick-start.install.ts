/**
 * The README's quick start, typed by a new user in a fresh clone inside a mode-700 directory
 * (a home directory, as on most Linux machines and containers): `npm install && npm start`, then
 * from a second terminal `npx cw-task-runner schedule NoOp` and `status`, Ctrl-C, and `npm test`
 * (a part of the suite that starts both kinds of embedded server: the shared one and a test's
 * private one). Once as root, whose embedded server runs as `postgres` and cannot enter the
 * clone, and once as an ordinary user (created if missing; run through `runuser`). The mode of
 * the home directory must be the same at the end: nothing may be opened up.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { relocatedDir } from '../../dist/embedded/cluster-location.js';
import { freePort } from '../../dist/embedded/throwaway-server.js';
import { copyProject, expectSuccess, run, start } from './commands.js';

const isRoot = process.getuid?.() === 0;
const otherUser = 'cwtr-install';
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

function ensureUser(name: string): { uid: number; gid: number } {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', name]);
  }
  const id = (flag: string): number => Number(execFileSync('id', [flag, name], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Resolves with the text once `predicate` holds for what the stream has said, or throws after `timeoutMs`. */
function waitForOutput(
  read: () => string,
  onData: (listener: () => void) => () => void,
  predicate: (text: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      if (!predicate(read())) return false;
      clearTimeout(timer);
      off();
      resolve(read());
      return true;
    };
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${read().slice(-4000)}`));
    }, timeoutMs);
    const off = onData(() => void check());
    check();
  });
}

interface Identity {
  label: string;
  /** Undefined: this process's own user. */
  user?: string;
}

const identities: Identity[] = isRoot
  ? [
      { label: 'root', user: undefined },
      { label: `a non-root user (${otherUser})`, user: otherUser },
    ]
  : [{ label: 'this user' }];

describe.each(identities)('the quick start in a clone inside a mode-700 directory, as $label', ({ user }) => {
  let home: string;
  let clone: string;
  let env: NodeJS.ProcessEnv;
  const as = { user };

  it('npm install && npm start: the launcher runs on the embedded server, and the CLI from the same directory reaches it', async () => {
    home = await mkdtemp(path.join(tmpdir(), 'cwtr-home-'));
    cleanups.push(() => rm(home, { recursive: true, force: true }));
    await chmod(home, 0o700);
    clone = path.join(home, 'cw-task-runner');
    await copyProject(clone);
    // Not the README's default port: another server may hold 54329 on a shared machine.
    const port = await freePort();
    await writeFile(path.join(clone, 'cw-task-runner.yml'), `embedded: { port: ${port} }\n`);
    if (user !== undefined) {
      const { uid, gid } = ensureUser(user);
      execFileSync('chown', ['-R', `${uid}:${gid}`, home]);
    }
    // Only what a login shell would have: no npm_config_* of the outer `npm run`, no DATABASE_URL.
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      USER: user ?? 'root',
      LOGNAME: user ?? 'root',
      LANG: 'C.UTF-8',
    };
    if (isRoot && user === undefined)
      cleanups.push(() => rm(relocatedDir(path.join(clone, 'tmp', 'embedded-pg')), { recursive: true, force: true }));

    expectSuccess(
      await run('npm', ['install', '--no-audit', '--no-fund'], { cwd: clone, env, ...as, timeoutMs: 480_000 }),
      'npm install',
    );
    // The commands are executable files: a command linked earlier (npx's cache of a directory
    // cloned again) runs the file itself, not through node.
    for (const command of ['dist/cli/bin.js', 'dist/launcher.js']) {
      expect((await stat(path.join(clone, command))).mode & 0o111, `${command} is executable`).toBe(0o111);
    }

    const launcher = start('npm', ['start'], { cwd: clone, env, ...as });
    let stderr = '';
    launcher.stdout!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    launcher.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<void>((resolve) => launcher.on('close', () => resolve()));
    const onData = (listener: () => void): (() => void) => {
      launcher.stderr!.on('data', listener);
      return () => launcher.stderr!.off('data', listener);
    };
    cleanups.push(async () => {
      try {
        process.kill(-launcher.pid!, 'SIGKILL');
      } catch {
        // ended
      }
    });
    await waitForOutput(
      () => stderr,
      onData,
      (text) => text.includes('standalone launcher ready') || /ERROR/.test(text),
      180_000,
      'the launcher to be ready',
    );
    expect(stderr).not.toMatch(/ERROR/);

    const scheduled = expectSuccess(
      await run('npx', ['cw-task-runner', 'schedule', 'NoOp', '--options', 'created_from: a shell'], {
        cwd: clone,
        env,
        ...as,
        timeoutMs: 60_000,
      }),
      'schedule',
    );
    const id = scheduled.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    await waitForOutput(
      () => stderr,
      onData,
      (text) => text.includes(`FINISHED id="${id}"`),
      30_000,
      `request ${id} to finish`,
    );
    expect(stderr).toContain(`result="NOOP ${id}: OK! created from: a shell"`);
    const status = expectSuccess(
      await run('npx', ['cw-task-runner', 'status'], { cwd: clone, env, ...as, timeoutMs: 60_000 }),
      'status',
    );
    expect(status.stdout).toMatch(/requests in task_runner_requests: .*1 finished/);

    // Where the data went: beside the project for a user who owns it; for root, where
    // `postgres` can reach it, under the hash of the project's data directory.
    const configured = path.join(clone, 'tmp', 'embedded-pg');
    const dataDir = isRoot && user === undefined ? path.join(relocatedDir(configured), 'data') : configured;
    const postgresUid =
      isRoot && user === undefined
        ? Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
        : (await stat(clone)).uid;
    const dataStat = await stat(dataDir);
    expect(dataStat.uid).toBe(postgresUid);
    expect(dataStat.mode & 0o777).toBe(0o700);
    expect((await stat(`${dataDir}.password`)).mode & 0o777).toBe(0o600);
    expect(await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).toMatch(
      new RegExp(`^\\d+\\n${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`),
    );

    // Ctrl-C in the launcher's terminal: the whole foreground group gets SIGINT.
    process.kill(-launcher.pid!, 'SIGINT');
    await exited;
    expect(stderr).toMatch(/launcher stopped/);
    await expect(stat(path.join(dataDir, 'postmaster.pid'))).rejects.toThrow(/ENOENT/);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
  }, 720_000);

  it('npm test: the suite starts its embedded servers in the same place', async () => {
    expect(clone, 'the npm start step').toBeDefined();
    // The part of the suite that covers both embedded servers (shared and private), the CLI's,
    // and root's relocated cluster.
    const files = [
      'test/cli/embedded.test.ts',
      'test/cli/embedded-private-home.test.ts',
      'test/faults/connection-loss.test.ts',
    ];
    const result = await run('npm', ['test', '--', ...files, '--maxWorkers=1'], {
      cwd: clone,
      env,
      ...as,
      timeoutMs: 480_000,
    });
    expectSuccess(result, 'npm test');
    // eslint-disable-next-line no-control-regex -- ANSI colour codes in npm's output
    const summary = result.stdout.replace(/\x1b\[[0-9;]*m/g, '');
    // Every file ran (the root-only one is skipped for another user), and none failed.
    expect(summary).toMatch(
      user === undefined && isRoot ? /Test Files\s+3 passed \(3\)/ : /Test Files\s+2 passed \| 1 skipped \(3\)/,
    );
    expect(summary).not.toMatch(/failed/);
    expect((await stat(home)).mode & 0o777).toBe(0o700);
  }, 540_000);
});
