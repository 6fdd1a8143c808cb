import { readFileSync } from 'node:fs';

/**
 * A pid alone does not name a process: pids are reused. On Linux a process is named by the boot
 * it belongs to and its start time in clock ticks since that boot (`/proc/<pid>/stat`, field 22),
 * which no later process with the same pid can share. Elsewhere the identity is null and liveness
 * falls back to the pid alone.
 */
let bootId: string | null | undefined;

function readBootId(): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = null;
    }
  }
  return bootId;
}

interface ProcStat {
  state: string;
  startTime: string;
}

/**
 * Read synchronously: a /proc file is generated in memory and read in microseconds, while
 * `fs/promises.readFile` takes four trips through the thread pool (open, fstat, read, close),
 * about 1 ms of the launcher's CPU for every child it starts.
 */
function readStat(pid: number): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields after it follow the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    const startTime = fields[19];
    return state !== undefined && startTime !== undefined ? { state, startTime } : null;
  } catch {
    return null;
  }
}

/** `bootid:starttime` of a live process, or null where the platform does not tell. */
export async function readProcessIdentity(pid: number): Promise<string | null> {
  const boot = readBootId();
  if (boot === null) return null;
  const stat = readStat(pid);
  return stat === null ? null : `${boot}:${stat.startTime}`;
}

export type Liveness = 'alive' | 'gone' | 'reused';

/**
 * Whether the process recorded as `pid` with `identity` still runs on this host. A zombie counts
 * as gone; a live process whose identity differs is `reused` (the recorded one is gone).
 */
export async function probeProcess(pid: number, identity: string | null): Promise<Liveness> {
  if (!Number.isInteger(pid) || pid <= 0) return 'gone';
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return 'gone';
  }
  if (readBootId() === null) return 'alive';
  const stat = readStat(pid);
  if (stat === null || stat.state === 'Z' || stat.state === 'X') return 'gone';
  if (identity === null) return 'alive';
  return `${readBootId()}:${stat.startTime}` === identity ? 'alive' : 'reused';
}

/**
 * A launcher's id names its process: `<pid>-<start time>-<random>`. The probe uses it to leave
 * alone the rows of a launcher that is still alive on this host (it supervises its own children,
 * and judging them from outside would race with its own completion writes).
 */
export async function createLauncherId(random: string): Promise<string> {
  const identity = await readProcessIdentity(process.pid);
  const startTime = identity === null ? '0' : identity.slice(identity.lastIndexOf(':') + 1);
  return `${process.pid}-${startTime}-${random}`;
}

/** Whether the launcher named by `launcherId` still runs on this host; null if the id is foreign. */
export async function probeLauncher(launcherId: string): Promise<Liveness | null> {
  const match = /^(\d+)-(\d+)-[0-9a-f]+$/.exec(launcherId);
  if (match === null) return null;
  const boot = readBootId();
  const identity = boot === null || match[2] === '0' ? null : `${boot}:${match[2]}`;
  return probeProcess(Number(match[1]), identity);
}
