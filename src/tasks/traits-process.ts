/**
 * The traits inspection in a child process instead of a thread, for launchers that confine their
 * children: loading a task file runs its top-level code (and its imports'), and in a thread of
 * the launcher that code would run as the launcher's user, with the launcher's environment in
 * reach: past the very boundary `childUser` draws. Here it runs as a child would (same user,
 * limits and permission policy); it costs a process start per file version, not per try.
 */
import { spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** How to start `node <entry> <args>` confined (built by the launcher from the pool's spawn plan). */
export type InspectorCommand = (
  entry: string,
  args: readonly string[],
) => { command: string; args: string[]; uid?: number; gid?: number };

const entry = fileURLToPath(new URL('./traits-entry.js', import.meta.url));

export interface ProcessInspection {
  /** The entry's message (decoded by the reader), or why there was none. */
  readonly done: Promise<{ message: unknown } | { failure: string }>;
  /** Kills the process (its group). */
  kill(): void;
}

export function inspectInProcess(
  command: InspectorCommand,
  env: Readonly<Record<string, string>>,
  file: string,
  taskClassName: string,
): ProcessInspection {
  const plan = command(entry, [file, taskClassName]);
  const child = spawn(plan.command, plan.args, {
    env: { ...env },
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    detached: true,
    uid: plan.uid,
    gid: plan.gid,
  });
  const kill = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  const done = new Promise<{ message: unknown } | { failure: string }>((resolve) => {
    let text = '';
    let stderr = '';
    const channel = child.stdio[3] as Socket;
    channel.setEncoding('utf8');
    channel.on('data', (chunk: string) => void (text += chunk));
    channel.on('error', () => undefined);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => void (stderr = (stderr + chunk).slice(-2048)));
    child.on('error', (error) => resolve({ failure: `could not start (${error.message})` }));
    child.on('close', (code, signal) => {
      // The file may have left a process behind in the group: it goes with the inspection.
      kill();
      try {
        resolve({ message: JSON.parse(text) as unknown });
      } catch {
        const tail = stderr.trim().split('\n').slice(-1)[0] ?? '';
        resolve({
          failure: `exited with ${signal ?? `code ${code}`} without an answer${tail === '' ? '' : ` (${tail})`}`,
        });
      }
    });
  });
  return { done, kill };
}
