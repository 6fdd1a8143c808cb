/**
 * Root in a project inside a mode-700 directory (a clone in root's home): the embedded server
 * runs as `postgres`, which cannot enter it, so its cluster lives under /var/lib/cw-task-runner,
 * found again by every command run from the same project. The home's mode is never changed.
 * (The full quick start, npm install included, is in test/install.)
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relocatedDir } from '../../dist/embedded/cluster-location.js';
import { cleanEnv, cliProcess, freePort } from './cli-process.js';

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)('the embedded PostgreSQL for root in a mode-700 directory', () => {
  let home: string;
  let project: string;
  let relocated: string;
  const env = cleanEnv();

  beforeAll(async () => {
    home = await mkdtemp(path.join(tmpdir(), 'cwtr-home-'));
    project = path.join(home, 'project');
    await mkdir(project);
    relocated = relocatedDir(path.join(project, 'tmp', 'embedded-pg'));
    await writeFile(path.join(project, 'cw-task-runner.yml'), `embedded: { port: ${await freePort()} }\n`);
  });
  afterAll(async () => {
    // A failed test may have left the server running: stop it before its directory goes.
    const text = await readFile(path.join(relocated, 'data', 'postmaster.pid'), 'utf8').catch(() => null);
    const pid = text === null ? Number.NaN : Number.parseInt(text, 10);
    if (Number.isInteger(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await rm(relocated, { recursive: true, force: true });
    await rm(home, { recursive: true, force: true });
  });

  it('keeps the cluster where postgres can reach it, and every command from the project finds it', async () => {
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    const first = await cliProcess(['schedule', 'NoOp'], { cwd: project, env, timeoutMs: 120_000 });
    expect(first.stderr).toContain(
      `initialising the embedded PostgreSQL data directory (first run) dataDir="${path.join(relocated, 'data')}"`,
    );
    expect(first.code).toBe(0);
    const status = await cliProcess(['status', '--json'], { cwd: project, env });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).counts).toMatchObject({ waiting: 1 });

    const postgresUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const data = await stat(path.join(relocated, 'data'));
    expect(data.uid).toBe(postgresUid);
    expect(data.mode & 0o777).toBe(0o700);
    const password = await stat(path.join(relocated, 'data.password'));
    expect([password.uid, password.mode & 0o777]).toEqual([0, 0o600]);
    expect(await readFile(path.join(relocated, 'source'), 'utf8')).toBe(
      `${path.join(project, 'tmp', 'embedded-pg')}\n`,
    );
    // Nothing was opened up, and no cluster was made in the project itself.
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    await expect(stat(path.join(project, 'tmp', 'embedded-pg'))).rejects.toThrow(/ENOENT/);
    // The short commands stopped the server they started.
    await expect(stat(path.join(relocated, 'data', 'postmaster.pid'))).rejects.toThrow(/ENOENT/);
  }, 150_000);
});
