/** Where a try runs or ran, as the CLI prints it: `pid 123`, or `pid 123 thread 4` in thread mode. */
export function formatProcess(pid: number | null | undefined, threadId: number | null | undefined): string {
  return threadId == null ? `pid ${pid ?? '-'}` : `pid ${pid ?? '-'} thread ${threadId}`;
}
