import { readdirSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { CreateRunnerOptions } from '../../dist/index.js';
import { findHierarchies } from '../../dist/pool/cgroup-fs.js';
import { useTestDatabase, waitFor, waitForCompleted } from '../helpers/db.js';
import { isAlive, PidTracker, waitForExit } from '../helpers/processes.js';
import { useTestRunners } from '../helpers/runner.js';

/**
 * A process that left the try's session and process group (setsid and a double fork) still ends
 * with its try: each try runs in a control group of its own, and the group is emptied when the
 * try ends, however it ended and wherever it ran.
 */
const runners = useTestRunners();
const t = useTestDatabase();
const leftovers = new PidTracker();
// Also after a failed test: an escaped process would outlive the whole run.
afterEach(() => leftovers.expectAllGone(0));

/** Control group directories of this process's launchers: none once every runner stopped. */
const launcherDirs = (): string[] =>
  findHierarchies().flatMap((h) =>
    readdirSync(h.own).filter((name) => new RegExp(`^cw-task-runner-\\d+-${process.pid}-`).test(name)),
  );

const pidIn = (text: string): number => Number(/escaped pid=(\d+)/.exec(text)?.[1]);

const modes: { name: string; options: Partial<CreateRunnerOptions> }[] = [
  { name: 'fresh child', options: { spareChildren: 0 } },
  { name: 'spare child', options: { spareChildren: 1 } },
  { name: 'reused child', options: { spareChildren: 0, maxTasksPerChild: Infinity, concurrency: 1 } },
  { name: 'thread', options: { defaultMode: 'thread' } },
];

describe.each(modes)("a process that left the try's session, $name", ({ options }) => {
  it('ends when the try FINISHED', async () => {
    const runner = await runners.start(t, options);
    const id = await runner.schedule('Escapee', {}, { tryLimit: 1 });
    const row = await waitForCompleted(t.pool, id);
    expect(row.result).toBe('FINISHED');
    const escaped = pidIn(row.result_text);
    expect(escaped).toBeGreaterThan(0);
    leftovers.add(escaped);
    await waitForExit(escaped, 5_000);
    await runner.stop();
    expect(launcherDirs()).toEqual([]);
  });

  it('ends when the try CRASHED', async () => {
    const runner = await runners.start(t, options);
    const pidFile = path.join(await mkdtemp(path.join(tmpdir(), 'cwtr-escapee-')), 'pid');
    const id = await runner.schedule('Escapee', { exit: true, pidFile }, { tryLimit: 1 });
    expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'CRASHED' });
    const escaped = Number(await readFile(pidFile, 'utf8'));
    leftovers.add(escaped);
    await waitForExit(escaped, 5_000);
    await runner.stop();
    expect(launcherDirs()).toEqual([]);
  });

  it('ends when the try is stopped by its hard timeout', async () => {
    const runner = await runners.start(t, options);
    const pidFile = path.join(await mkdtemp(path.join(tmpdir(), 'cwtr-escapee-')), 'pid');
    const id = await runner.schedule('Escapee', { hang: true, pidFile }, { tryLimit: 1, timeoutMs: 1_000 });
    const escaped = Number(await waitFor(() => readFile(pidFile, 'utf8').catch(() => ''), { what: 'the escaped pid' }));
    leftovers.add(escaped);
    expect(isAlive(escaped)).toBe(true);
    expect(await waitForCompleted(t.pool, id)).toMatchObject({ result: 'TIMED_OUT' });
    await waitForExit(escaped, 5_000);
    await runner.stop();
    expect(launcherDirs()).toEqual([]);
  });
});
