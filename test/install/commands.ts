/**
 * Shell-level helpers for the install tests: copy the project as a clone would have it, run a
 * command (optionally as another user) and wait for it, all with timeouts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd: string;
  env?: NodeJS.ProcessEnv;
  /** Run as this user (through `runuser -u`, keeping `env`, HOME included); the caller must be root. */
  user?: string;
  timeoutMs: number;
}

/** The command line, wrapped in `runuser` when `user` is set. */
function commandFor(command: string, args: readonly string[], user: string | undefined): [string, string[]] {
  return user === undefined
    ? [command, [...args]]
    : ['runuser', ['--preserve-environment', '-u', user, '--', command, ...args]];
}

/** Starts a command in a process group of its own (so a whole `npm start` tree can be signalled). */
export function start(command: string, args: readonly string[], options: Omit<RunOptions, 'timeoutMs'>): ChildProcess {
  const [file, argv] = commandFor(command, args, options.user);
  return spawn(file, argv, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/** Runs a command to its end; on timeout its whole group is killed and the result says so. */
export async function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const child = start(command, args, options);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => {
    stderr += `\n[killed after ${options.timeoutMs} ms]`;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }, options.timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  return { code, signal, stdout, stderr };
}

/** Throws with the output when the command did not exit 0. */
export function expectSuccess(result: RunResult, what: string): RunResult {
  if (result.code !== 0) {
    throw new Error(
      `${what} failed (code ${result.code}, signal ${result.signal}):\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
    );
  }
  return result;
}

/**
 * Copies the project's files as a fresh clone of the current tree has them: tracked and
 * untracked-but-not-ignored files (so uncommitted work is tested too), no node_modules, no dist.
 */
export async function copyProject(target: string): Promise<void> {
  const listing = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  for (const file of listing.split('\0').filter((name) => name !== '')) {
    const from = path.join(repoRoot, file);
    const to = path.join(target, file);
    await mkdir(path.dirname(to), { recursive: true });
    // A file deleted in the working tree but still in the index is simply not copied.
    await copyFile(from, to).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  }
}
