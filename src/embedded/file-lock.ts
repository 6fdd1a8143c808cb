import { open, readFile, stat, unlink } from 'node:fs/promises';
import { TaskRunnerError } from '../errors.js';

/** True while a process with this pid exists (one we may not signal counts as existing). */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const retryMs = 100;
/** A lock file without a pid in it is being written; older than this, its writer died. */
const emptyLockGraceMs = 5_000;

async function holderOf(file: string): Promise<number | 'stale' | 'gone'> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return 'gone';
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (Number.isInteger(pid) && pid > 0) return pidAlive(pid) && pid !== process.pid ? pid : 'stale';
  const age = await stat(file).then(
    (s) => Date.now() - s.mtimeMs,
    () => 0,
  );
  return age > emptyLockGraceMs ? 'stale' : 0;
}

/**
 * Runs `body` while holding an exclusive lock file (created with O_EXCL, holding our pid), so two
 * processes on this host do not start or stop the embedded server at the same moment. A lock left
 * by a dead process is taken over.
 */
export async function withFileLock<T>(file: string, timeoutMs: number, body: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(file, 'wx', 0o644);
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await holderOf(file);
    if (holder === 'stale') {
      await unlink(file).catch(() => undefined);
      continue;
    }
    if (holder === 'gone') continue;
    if (Date.now() >= deadline) {
      throw new TaskRunnerError(
        'EMBEDDED_UNAVAILABLE',
        `timed out after ${timeoutMs} ms waiting for lock ${file} (held by pid ${holder || '?'}); remove the file if that process is gone`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
  try {
    return await body();
  } finally {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (Number.parseInt(text.trim(), 10) === process.pid) await unlink(file).catch(() => undefined);
  }
}
