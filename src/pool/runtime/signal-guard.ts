/**
 * Hygiene, not a boundary: `process.kill` refuses the signals a task almost never means to send
 * and that would reach the launcher. From a child: the launcher (its parent) and -1 (every process
 * the user may signal). From a worker thread, which lives inside the launcher: also the
 * process's own pid and its process group. A task can still run `kill` as a program; only running
 * tasks as another user (`childUser`) stops that.
 */
export function guardProcessKill(params: { refused: readonly number[]; what: string }): void {
  const refused = new Set(params.refused);
  const kill = process.kill.bind(process);
  process.kill = ((pid: number, signal?: string | number): true => {
    if (refused.has(Number(pid))) {
      throw new Error(`process.kill(${pid}) refused: ${params.what}`);
    }
    return kill(pid, signal);
  }) as typeof process.kill;
}
