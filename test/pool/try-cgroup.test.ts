import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../dist/shared/logger.js';
import { findHierarchies, moveProcess, ProcsFile, type CgroupKind } from '../../dist/pool/cgroup-fs.js';
import { ThreadPool } from '../../dist/pool/thread-pool.js';
import { TryGroups } from '../../dist/pool/try-cgroup.js';
import { waitFor } from '../helpers/db.js';
import { childEnv, jobFor } from '../helpers/jobs.js';
import { useTestPools } from '../helpers/pools.js';
import { isAlive, PidTracker, waitForExit } from '../helpers/processes.js';

/**
 * Each kind of control group hierarchy ends what a try started, even a process that left its
 * session (the Escapee fixture): cgroup2 (cgroup.kill), v1 freezer and v1 pids for children;
 * v1 pids (the thread enters the group) and cgroup2 (each spawned process is moved in) for
 * thread-mode tries. A directory left by a dead launcher is emptied and removed at the next
 * start; where no hierarchy is usable, nothing is made and the summary says what holds.
 */
const pools = useTestPools();
const escaped = new PidTracker();
const opened: TryGroups[] = [];
const threadPools: ThreadPool[] = [];
afterEach(async () => {
  await Promise.all(threadPools.splice(0).map((pool) => pool.close()));
  await Promise.all(opened.splice(0).map((groups) => groups.close()));
  await escaped.expectAllGone(0);
});

/** Kinds this process may make groups in (mounted, and writable: root or a delegated subtree). */
const available = new Set(
  findHierarchies()
    .filter((h) => {
      const probe = path.join(h.own, `cw-task-runner-probe-${process.pid}`);
      try {
        mkdirSync(probe);
      } catch {
        return false;
      }
      const usable = h.kind !== 'cgroup2' || existsSync(path.join(probe, 'cgroup.kill'));
      rmdirSync(probe);
      return usable;
    })
    .map((h) => h.kind),
);
const pidIn = (text: string): number => Number(/escaped pid=(\d+)/.exec(text)?.[1]);

function open(kinds: CgroupKind[]): TryGroups {
  const groups = TryGroups.open({ kinds, logger: silentLogger });
  opened.push(groups);
  return groups;
}

/** This process's launcher directories in the hierarchy of `kind`. */
function ownDirs(kind: CgroupKind): string[] {
  const own = findHierarchies().find((h) => h.kind === kind)!.own;
  return readdirSync(own).filter((name) => new RegExp(`^cw-task-runner-\\d+-${process.pid}-`).test(name));
}

describe.each(['cgroup2', 'freezer', 'pids'] as const)('placing a child in a %s group', (kind) => {
  // A stop right after a start ends a spare child still booting, often before its move into a
  // group (asynchronous) is done: the move then finds no such process, and that is the stop at
  // work, not a group that failed (a CI run under load logged the warning as if it were).
  it.skipIf(!available.has(kind))('says nothing when the child is gone before the move', async () => {
    const warnings: string[] = [];
    const groups = TryGroups.open({
      kinds: [kind],
      logger: { ...silentLogger, warn: (message) => warnings.push(message) },
    });
    opened.push(groups);
    const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
    const pid = child.pid!;
    await new Promise((resolve) => child.once('exit', resolve));
    expect(await groups.place(pid)).toBeNull();
    expect(warnings).toEqual([]);
  });
});

describe.each(['cgroup2', 'freezer', 'pids'] as const)('children in %s groups', (kind) => {
  it.skipIf(!available.has(kind))('end a process that left the session, after a normal end and a timeout', async () => {
    const before = ownDirs(kind).length;
    const groups = open([kind]);
    expect(groups.kind).toBe(kind);
    expect(ownDirs(kind).length).toBe(before + 1);
    const pool = pools.create({ tryGroups: groups });
    const finished = await pools.run(pool, await jobFor('Escapee')).report;
    expect(finished).toMatchObject({ outcome: 'finished' });
    const first = pidIn((finished as { resultText: string }).resultText);
    escaped.add(first);
    await waitForExit(first, 5_000);

    const pidFile = path.join(mkdtempSync(path.join(tmpdir(), 'cwtr-escapee-')), 'pid');
    const controller = new AbortController();
    const hung = pools.run(pool, await jobFor('Escapee', { hang: true, pidFile }), {}, controller.signal);
    const second = Number(
      await waitFor(() => (existsSync(pidFile) ? readFileSync(pidFile, 'utf8') : ''), { what: 'the escaped pid' }),
    );
    escaped.add(second);
    expect(isAlive(second)).toBe(true);
    controller.abort('timeout');
    expect(await hung.report).toMatchObject({ outcome: 'aborted' });
    await waitForExit(second, 5_000);
    await pool.close();
    await groups.close();
    expect(ownDirs(kind).length).toBe(before);
  });
});

describe.each(['cgroup2', 'freezer', 'pids'] as const)('a reused child in %s groups', (kind) => {
  it.skipIf(!available.has(kind))('moves to a new group after each try that left a process, and lives on', async () => {
    const groups = open([kind]);
    const pool = pools.create({ tryGroups: groups, maxTasksPerChild: Infinity, concurrency: 1 });
    const tries = [];
    for (const job of [
      await jobFor('Escapee'),
      await jobFor('Echo', { text: 'between' }),
      // Left in the group the child moved to after the first try.
      await jobFor('Escapee'),
      await jobFor('Echo', { text: 'after' }),
    ]) {
      const run = pools.run(pool, job);
      tries.push({ run, report: await run.report });
    }
    const left = [tries[0]!, tries[2]!].map(({ report }) => pidIn((report as { resultText: string }).resultText));
    for (const pid of left) escaped.add(pid);
    expect(tries[3]!.report).toMatchObject({ outcome: 'finished', resultText: 'after' });
    for (const { run } of tries) expect(run.start()!.pid).toBe(tries[0]!.run.start()!.pid);
    expect(tries[3]!.run.start()!.mode).toBe('reused');
    for (const pid of left) await waitForExit(pid, 5_000);
  });
});

describe.each(['cgroup2', 'freezer', 'pids'] as const)('the process list of a %s group', (kind) => {
  it.skipIf(!available.has(kind))('read again, lists a process that came in after the first read', async () => {
    const groups = open([kind]);
    const sleepers = [0, 1].map(() => spawn('sleep', ['30'], { stdio: 'ignore' }));
    try {
      const group = (await groups.place(sleepers[0]!.pid!))!;
      const procs = new ProcsFile(kind, group.dir);
      expect(procs.processes()).toEqual([sleepers[0]!.pid]);
      expect(procs.holdsOnly(sleepers[0]!.pid!)).toBe(true);
      await moveProcess(group.dir, sleepers[1]!.pid!);
      expect(procs.processes().sort((a, b) => a! - b!)).toEqual(
        sleepers.map((child) => child.pid).sort((a, b) => a! - b!),
      );
      expect(procs.holdsOnly(sleepers[0]!.pid!)).toBe(false);
      procs.close();
      group.close();
    } finally {
      for (const child of sleepers) child.kill('SIGKILL');
    }
  });
});

// cgroup2 moves each process just after it started: one that escapes in its first moments is
// not caught (docs/isolation.md says so), so that case is tested with an escape that comes later.
describe.each([
  { how: 'the thread enters the group', kind: 'pids' as const, later: false },
  { how: 'each spawned process is moved in', kind: 'cgroup2' as const, later: true },
])('thread-mode tries, $kind ($how)', ({ kind, later }) => {
  it.skipIf(!available.has(kind))('end a process that left the session', async () => {
    const groups = open([kind]);
    expect(groups.threadData?.kind).toBe(kind);
    const pool = new ThreadPool({
      maxThreads: 1,
      idleTimeoutMs: 30_000,
      resourceLimits: { maxOldGenerationSizeMb: null, maxYoungGenerationSizeMb: null, stackSizeMb: null },
      env: childEnv,
      launcherPid: process.pid,
      launcherIdentity: null,
      logger: silentLogger,
      tryGroups: groups,
    });
    threadPools.push(pool);
    const report = await pool.run(await jobFor('Escapee', { later }));
    expect(report).toMatchObject({ outcome: 'finished' });
    const pid = pidIn((report as { resultText: string }).resultText);
    escaped.add(pid);
    await waitForExit(pid, 5_000);
    // Every thread of this process (the launcher's) is back in its own group.
    const threads = readdirSync('/proc/self/task');
    expect(
      threads.filter((tid) => readFileSync(`/proc/self/task/${tid}/cgroup`, 'utf8').includes('cw-task-runner-')),
    ).toEqual([]);
  });
});

describe('what a dead launcher left', () => {
  it.skipIf(!available.has('cgroup2'))('is ended and removed when a launcher starts', async () => {
    const own = findHierarchies().find((h) => h.kind === 'cgroup2')!.own;
    // A pid that cannot be alive: above the kernel's limit.
    const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))![1];
    const dead = path.join(own, `cw-task-runner-${namespace}-${max + 1}-12345-0`);
    // Another pid namespace's launcher (another container) is not this one's to judge.
    const foreign = path.join(own, `cw-task-runner-1-${max + 1}-12345-0`);
    mkdirSync(foreign);
    mkdirSync(path.join(dead, 'try-0'), { recursive: true });
    const inner = 'sleep 300 </dev/null >/dev/null 2>&1 & echo $!';
    const out = spawnSync(
      'sh',
      ['-c', `echo $$ > ${path.join(dead, 'try-0', 'cgroup.procs')} && setsid sh -c '${inner}'; true`],
      { encoding: 'utf8' },
    );
    const pid = Number(out.stdout.trim());
    escaped.add(pid);
    expect(isAlive(pid)).toBe(true);
    open(['cgroup2']);
    await waitForExit(pid, 5_000);
    await waitFor(() => !existsSync(dead), { timeoutMs: 5_000, what: "the dead launcher's directory to go" });
    expect(existsSync(foreign)).toBe(true);
    rmdirSync(foreign);
  });
});

describe('with no usable hierarchy', () => {
  it('makes no group and says what holds', async () => {
    const groups = open([]);
    expect(groups.kind).toBeNull();
    expect(groups.threadData).toBeNull();
    expect(groups.summary).toMatch(/process group only/);
    const pool = pools.create({ tryGroups: groups });
    const report = await pools.run(pool, await jobFor('Echo', { text: 'plain' })).report;
    expect(report).toMatchObject({ outcome: 'finished', resultText: 'plain' });
  });
});
