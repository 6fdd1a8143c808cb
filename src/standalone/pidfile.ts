import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import { TaskRunnerError } from '../errors.js';
import { probeProcess } from '../pool/process-identity.js';

/**
 * The launcher's pidfile (`tmp/pids/task_runner_daemon.pid`): one standalone launcher per directory.
 * It holds the pid on its first line and the process identity (boot id and start time) on the
 * second, so a pid reused by an unrelated process after a crash is not mistaken for a launcher.
 */
export interface Pidfile {
  readonly path: string;
  /** Removes the file if it is still ours. Safe to call twice. */
  release(): Promise<void>;
}

export function pidfilePath(tmpDir: string): string {
  return path.join(tmpDir, 'pids', 'task_runner_daemon.pid');
}

async function readHolder(file: string): Promise<{ pid: number; identity: string | null } | null> {
  const text = await readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  const [first, second] = text.split('\n');
  const pid = Number.parseInt(first ?? '', 10);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, identity: second !== undefined && second.trim() !== '' ? second.trim() : null };
}

/**
 * Creates the pidfile (and its directory). Refuses with ALREADY_RUNNING, naming the pid, when it
 * names a live process; a stale one (process gone, or its pid reused) is replaced.
 *
 * @example
 * const pidfile = await acquirePidfile(pidfilePath('tmp'), identity);
 * // ... at exit:
 * await pidfile.release();
 */
export async function acquirePidfile(file: string, identity: string | null, pid = process.pid): Promise<Pidfile> {
  await mkdir(path.dirname(file), { recursive: true }).catch((error: NodeJS.ErrnoException) => {
    throw new TaskRunnerError(
      'CONFIG_INVALID',
      `cannot create the pidfile's directory ${path.dirname(file)}: ${error.code ?? error.message}`,
    );
  });
  for (let attempt = 0; ; attempt += 1) {
    try {
      const handle = await open(file, 'wx', 0o644);
      try {
        await handle.writeFile(`${pid}\n${identity ?? ''}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 5) throw error;
    }
    const holder = await readHolder(file);
    if (holder === null && attempt < 3) {
      // Empty: another launcher may be between creating and writing it. Look again shortly.
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    if (holder !== null && holder.pid !== pid && (await probeProcess(holder.pid, holder.identity)) === 'alive') {
      throw new TaskRunnerError(
        'ALREADY_RUNNING',
        `a launcher is already running here (pid ${holder.pid}, pidfile ${file}); stop it first, or use another tmpDir`,
      );
    }
    await unlink(file).catch(() => undefined);
  }
  let released = false;
  return {
    path: file,
    async release() {
      if (released) return;
      released = true;
      const holder = await readHolder(file);
      if (holder?.pid === pid) await unlink(file).catch(() => undefined);
    },
  };
}
