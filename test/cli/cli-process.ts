/**
 * The CLI as a user runs it: `node dist/cli/bin.js` and `node dist/launcher.js` in a working
 * directory of the test's own, with an environment that holds only what the test gives it (no
 * DATABASE_URL or CW_* from the shell running the tests).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../dist/cli/main.js';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { createTestDatabase, waitFor, type TestDatabase } from '../helpers/db.js';
import { fixturesDir } from '../helpers/jobs.js';
export { freePort } from '../helpers/free-port.js';

export const binPath = fileURLToPath(new URL('../../dist/cli/bin.js', import.meta.url));
export const launcherPath = fileURLToPath(new URL('../../dist/launcher.js', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** PATH and HOME from the test's environment, then `extra`. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extra };
}

/** A working directory for one test (the launcher's tmp/ goes in it), reachable by any user. */
export async function workDir(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cwtr-cli-'));
  // An embedded server runs as the `postgres` user when the tests run as root.
  await chmod(dir, 0o755);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** What a file of CLI tests runs against; filled in before its first test. */
export interface CliSetting {
  /** The file's own test database. */
  t: TestDatabase;
  /** A working directory of its own (the CLI's tmp/ goes there). */
  cwd: string;
  /** A clean environment naming the database and the fixture tasks. */
  env: NodeJS.ProcessEnv;
  /** `{ cwd, env }`, as `cli()` takes them. */
  at: { cwd: string; env: NodeJS.ProcessEnv };
}

/**
 * The preamble of a CLI test file: a test database, a working directory and an environment that
 * points at both (DATABASE_URL, CW_TASKS_DIR = the fixtures), made before the file's tests and
 * removed after them.
 */
export function cliOnTestDatabase(): CliSetting {
  const setting = {} as CliSetting;
  let remove: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    setting.t = await createTestDatabase();
    const work = await workDir();
    remove = work.remove;
    setting.cwd = work.dir;
    setting.env = cleanEnv({ DATABASE_URL: setting.t.url, CW_TASKS_DIR: fixturesDir });
    setting.at = { cwd: setting.cwd, env: setting.env };
  });
  afterAll(async () => {
    await setting.t?.drop();
    await remove?.();
  });
  return setting;
}

/**
 * The preamble of a file that starts launcher processes: a test database for the file, and after
 * each test the launchers it left (SIGKILL: a failed test's launcher must not outlive it) and its
 * cleanups (in reverse order). Push onto `launchers` and `cleanups` as the test goes.
 */
export function launcherProcesses(): {
  readonly t: TestDatabase;
  launchers: LauncherProcess[];
  cleanups: (() => Promise<unknown>)[];
} {
  const state = {
    t: undefined as unknown as TestDatabase,
    launchers: [] as LauncherProcess[],
    cleanups: [] as (() => Promise<unknown>)[],
  };
  beforeAll(async () => {
    state.t = await createTestDatabase();
  });
  afterEach(async () => {
    await Promise.all(state.launchers.splice(0).map((launcher) => launcher.stop('SIGKILL').catch(() => undefined)));
    for (const cleanup of state.cleanups.splice(0).reverse()) await cleanup();
  });
  afterAll(async () => {
    await state.t?.drop();
  });
  return state;
}

/** Runs the CLI in this process (fast: no node start), capturing its output. */
export async function cli(args: string[], params: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    cwd: params.cwd,
    env: params.env ?? cleanEnv(),
  });
  return { code, stdout, stderr };
}

/** Runs `node dist/cli/bin.js ...` to its exit. */
export function cliProcess(
  args: string[],
  params: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      cwd: params.cwd,
      env: params.env ?? cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `cw-task-runner ${args.join(' ')} did not exit within ${params.timeoutMs ?? 30_000} ms; stderr: ${stderr}`,
        ),
      );
    }, params.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

export interface LauncherProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it logged so far. */
  stderr(): string;
  /** Resolves with the exit code once it has exited. */
  readonly exited: Promise<number | null>;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

/** Starts `node dist/launcher.js ...` and resolves once it logged that it is ready. */
export async function startLauncher(
  args: string[],
  params: {
    cwd: string;
    env?: NodeJS.ProcessEnv;
    readyTimeoutMs?: number;
    /** In a process group of its own, as in a terminal. */ ownGroup?: boolean;
  },
): Promise<LauncherProcess> {
  const child = spawn(process.execPath, [launcherPath, ...args], {
    cwd: params.cwd,
    env: params.env ?? cleanEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: params.ownGroup ?? false,
  });
  let stderr = '';
  child.stdout!.resume();
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve((exitCode = code))));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 20_000): Promise<number | null> => {
    if (exitCode === undefined) child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`launcher did not exit within ${timeoutMs} ms of ${signal}; log:\n${stderr}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  try {
    await waitFor(() => stderr.includes('standalone launcher ready') || exitCode !== undefined, {
      timeoutMs: params.readyTimeoutMs ?? 30_000,
      what: 'the launcher to be ready',
    });
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
  if (exitCode !== undefined) throw new Error(`launcher exited with code ${exitCode}; log:\n${stderr}`);
  return { child, pid: child.pid!, stderr: () => stderr, exited, stop };
}
