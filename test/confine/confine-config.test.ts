import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveRunnerConfig } from '../../dist/index.js';
import { loadStandaloneConfig } from '../../dist/config/config-file.js';
import { intersectPermissions, parsePermissions } from '../../dist/config/confinement.js';
import { spawnPlan } from '../../dist/pool/confined-spawn.js';
import { trySettings } from '../../dist/launcher/task-settings.js';

/** The confinement settings without a database: config file keys, merging rules, the shell fallback. */
const base = { db: 'postgres://x/y', tasksDir: '/tmp' };

describe('confinement config', () => {
  it('reads childLimits and childPermissions from a config file, paths relative to the file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cwtr-confcfg-'));
    try {
      writeFileSync(
        path.join(dir, 'cw-task-runner.yml'),
        [
          'childLimits: { openFiles: 256, cpuSeconds: 60 }',
          'childPermissions:',
          '  fsRead: [data, /etc/ssl]',
          '  childProcess: true',
          'taskOverrides:',
          '  Report: { limits: { cpuSeconds: 600 }, permissions: null }',
        ].join('\n'),
      );
      const config = await loadStandaloneConfig({ cwd: dir, env: {} });
      expect(config.runner.childLimits).toEqual({ openFiles: 256, cpuSeconds: 60 });
      expect(config.runner.childPermissions).toEqual({
        fsRead: [path.join(dir, 'data'), '/etc/ssl'],
        childProcess: true,
      });
      writeFileSync(path.join(dir, 'cw-task-runner.yml'), 'childLimits: { files: 3 }\n');
      await expect(loadStandaloneConfig({ cwd: dir, env: {} })).rejects.toThrow(/"childLimits".*unknown key "files"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('merges: an override replaces a limit, a class lowers it; policies intersect; no confinement means the pool default', () => {
    const config = resolveRunnerConfig({
      ...base,
      childLimits: { openFiles: 256, cpuSeconds: 60 },
      childPermissions: { fsRead: ['/srv'], childProcess: true },
      taskOverrides: { Big: { limits: { cpuSeconds: 600 } }, Free: { permissions: null } },
    });
    const plain = { mode: null, timeoutMs: null };
    expect(trySettings(config, 'Other', plain, null).confinement).toBeNull();
    expect(trySettings(config, 'Big', plain, null).confinement!.limits).toEqual({
      openFiles: 256,
      cpuSeconds: 600,
      addressSpaceMb: null,
    });
    const lowered = trySettings(
      config,
      'Big',
      { ...plain, limits: { openFiles: 1000, cpuSeconds: 5, addressSpaceMb: null } },
      null,
    );
    expect(lowered.confinement!.limits).toEqual({ openFiles: 256, cpuSeconds: 5, addressSpaceMb: null });
    expect(trySettings(config, 'Free', plain, null).confinement!.permissions).toBeNull();
    const declared = parsePermissions(
      'static permissions',
      { fsRead: ['/srv/app', '/home'], childProcess: false },
      null,
    );
    expect(trySettings(config, 'Other', { ...plain, permissions: declared }, null).confinement!.permissions).toEqual({
      fsRead: ['/srv/app'],
      fsWrite: [],
      childProcess: false,
      worker: false,
      addons: false,
      wasi: false,
    });
  });

  it('intersects path lists both ways, with * for everything', () => {
    const p = (fsRead: string[]) => parsePermissions('p', { fsRead }, null);
    expect(intersectPermissions(p(['/a', '/b/c']), p(['/a/x', '/b']))!.fsRead).toEqual(['/a/x', '/b/c']);
    expect(intersectPermissions(p(['*']), p(['/q']))!.fsRead).toEqual(['/q']);
    expect(intersectPermissions(p(['/a']), p(['/ab']))!.fsRead).toEqual([]);
    expect(() => parsePermissions('static permissions', { fsRead: ['relative'] }, null)).toThrow(/absolute/);
  });

  it('without prlimit, the shell sets the same limits (soft and hard) and execs node under the same pid', () => {
    const config = resolveRunnerConfig({
      ...base,
      childLimits: { openFiles: 128, cpuSeconds: 7, addressSpaceMb: 2048 },
    });
    const script = path.join(mkdtempSync(path.join(tmpdir(), 'cwtr-ulimit-')), 'limits.cjs');
    writeFileSync(script, "process.stdout.write(require('fs').readFileSync('/proc/self/limits', 'utf8'))");
    const plan = spawnPlan(script, [], config.childConfinement, [], null);
    expect(plan.command).toBe('/bin/sh');
    const limits = execFileSync(plan.command, plan.args, { encoding: 'utf8' });
    expect(limits).toMatch(/Max cpu time\s+7\s+8\s+seconds/);
    expect(limits).toMatch(/Max open files\s+128\s+128\s+files/);
    expect(limits).toMatch(new RegExp(`Max address space\\s+${2048 * 1024 * 1024}\\s+${2048 * 1024 * 1024}\\s+bytes`));
    rmSync(path.dirname(script), { recursive: true, force: true });
  });

  it('leaves the unconfined spawn exactly as it was: node, its arguments, the entry', () => {
    const config = resolveRunnerConfig(base);
    expect(spawnPlan('/x/entry.js', ['--a'], null, [])).toEqual({
      command: process.execPath,
      args: ['--a', '/x/entry.js'],
    });
    expect(config.childConfinement).toMatchObject({ identity: null, limits: null, permissions: null });
  });
});
