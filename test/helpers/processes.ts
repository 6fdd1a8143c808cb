/**
 * Process liveness for tests: whether a pid still names a running process (a zombie counts as
 * gone), and a tracker that fails a test leaving children behind, killing them so they do not
 * leak into the next test.
 */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import { waitFor } from './db.js';

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform !== 'linux';
  }
}

/** Waits until `pid` is gone (exited, or a zombie), failing after `timeoutMs`. */
export async function waitForExit(pid: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(() => !isAlive(pid), { timeoutMs, intervalMs: 20, what: `process ${pid} to exit` });
}

/** Pids a test started (directly or through a runner or pool), checked after each test. */
export class PidTracker {
  readonly #pids = new Set<number>();

  add(pid: number | null | undefined): void {
    if (typeof pid === 'number' && pid > 0) this.#pids.add(pid);
  }

  get pids(): number[] {
    return [...this.#pids];
  }

  /**
   * Expects every tracked pid to be gone: at once, or within `graceMs` for children that were
   * just told to exit. Survivors are SIGKILLed (their group too) before the expectation fails.
   */
  async expectAllGone(graceMs = 2_000): Promise<void> {
    const pids = this.pids;
    this.#pids.clear();
    const alive = await waitFor(() => pids.every((pid) => !isAlive(pid)), { timeoutMs: graceMs, intervalMs: 20 })
      .then(() => [] as number[])
      .catch(() => pids.filter(isAlive));
    for (const pid of alive) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // gone meanwhile, or not a group leader
        }
      }
    }
    expect(alive, 'child processes still alive after the test').toEqual([]);
  }
}
