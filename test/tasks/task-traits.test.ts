import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TaskTraitsReader } from '../../dist/tasks/task-traits.js';

const fixtures = fileURLToPath(new URL('../fixtures/traits/', import.meta.url));
const fixture = (name: string): string => path.join(fixtures, `${name}.mjs`);
const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', CWTR_TRAITS_MODE: 'thread' };

const readers: TaskTraitsReader[] = [];
function createReader(timeoutMs?: number, extraEnv: Record<string, string> = {}, recheckMs?: number): TaskTraitsReader {
  const reader = new TaskTraitsReader({ env: { ...env, ...extraEnv }, timeoutMs, recheckMs });
  readers.push(reader);
  return reader;
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'cwtr-traits-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});
afterEach(async () => {
  const closing = readers.splice(0);
  await Promise.all(closing.map((reader) => reader.close()));
  for (const reader of closing) expect(reader.activeInspections, 'inspector threads still alive').toBe(0);
});

describe('TaskTraitsReader', () => {
  it('reads static mode and timeoutMs in a worker thread, never in the launcher', async () => {
    const reader = createReader();
    expect(await reader.read(fixture('Declared'), 'Declared')).toEqual({
      mode: 'thread',
      timeoutMs: 5000,
      warnings: [],
    });
    expect(await reader.read(fixture('Plain'), 'Plain')).toEqual({ mode: null, timeoutMs: null, warnings: [] });
    // The inspector thread got `env` as its process.env; this thread never imported the file.
    expect(await reader.read(fixture('EnvMode'), 'EnvMode')).toEqual({ mode: 'thread', timeoutMs: null, warnings: [] });
    expect((globalThis as { cwtrEnvModeImported?: boolean }).cwtrEnvModeImported).toBeUndefined();
    expect(reader.inspections).toBe(3);
    expect(reader.activeInspections).toBe(0);
  });

  it('ignores invalid values, each with a warning, and keeps the valid ones', async () => {
    const reader = createReader();
    const bad = await reader.read(fixture('BadTraits'), 'BadTraits');
    expect(bad).toMatchObject({ mode: null, timeoutMs: null });
    expect(bad.warnings).toHaveLength(2);
    expect(bad.warnings[0]).toMatch(
      /task "BadTraits" \(.*BadTraits\.mjs\): static mode must be "process" or "thread", got "fiber"; ignored/,
    );
    expect(bad.warnings[1]).toMatch(
      /static timeoutMs must be an integer from 1 to 2147483647 \(ms\), got 2\.5; ignored/,
    );

    // The class named like the task is the one read; a function is no mode.
    const odd = await reader.read(fixture('Odd'), 'Odd');
    expect(odd).toMatchObject({ mode: null, timeoutMs: 250 });
    expect(odd.warnings).toEqual([
      expect.stringMatching(/static mode must be "process" or "thread", got a function; ignored/),
    ]);
    expect(await reader.read(fixture('Odd'), 'Deep::Other')).toEqual({
      mode: 'process',
      timeoutMs: null,
      warnings: [],
    });
  });

  it('tells onWarning each warning once, however often the class is read', async () => {
    const told: string[] = [];
    const reader = new TaskTraitsReader({ env, onWarning: (warning) => told.push(warning) });
    readers.push(reader);
    const reads = await Promise.all([1, 2, 3].map(() => reader.read(fixture('BadTraits'), 'BadTraits')));
    expect(reads.every((read) => read.warnings.length === 2)).toBe(true);
    expect(await reader.read(fixture('BadTraits'), 'BadTraits')).toBe(reads[0]);
    expect(told).toEqual(reads[0]!.warnings);
  });

  it('survives a file whose top-level code calls process.exit(1): nulls, only the thread ends', async () => {
    const reader = createReader();
    const traits = await reader.read(fixture('ExitAtLoad'), 'ExitAtLoad');
    expect(traits).toMatchObject({ mode: null, timeoutMs: null });
    expect(traits.warnings).toEqual([
      expect.stringMatching(/its inspector thread exited with code 1 while loading; defaults apply/),
    ]);
    expect(process.exitCode).toBeUndefined();
    expect(reader.activeInspections).toBe(0);
  });

  it('gives up on a file whose top level never finishes, terminating its thread', async () => {
    const reader = createReader(300);
    const started = performance.now();
    const traits = await reader.read(fixture('LoopAtLoad'), 'LoopAtLoad');
    expect(traits).toMatchObject({ mode: null, timeoutMs: null });
    expect(traits.warnings).toEqual([
      expect.stringMatching(/loading took over 300 ms, its thread was terminated; defaults apply/),
    ]);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(reader.activeInspections).toBe(0);
    // The verdict is cached: the next read neither waits nor starts a thread.
    expect(await reader.read(fixture('LoopAtLoad'), 'LoopAtLoad')).toBe(traits);
    expect(reader.inspections).toBe(1);
  });

  it('reads a file that fails to load, or is missing, as nulls', async () => {
    const reader = createReader();
    const thrown = await reader.read(fixture('ThrowAtLoad'), 'ThrowAtLoad');
    expect(thrown).toMatchObject({ mode: null, timeoutMs: null });
    expect(thrown.warnings).toEqual([
      expect.stringMatching(/could not be loaded to read its mode and timeoutMs: Error: ThrowAtLoad refuses to load/),
    ]);

    const missing = await reader.read(path.join(scratch, 'Missing.mjs'), 'Missing');
    expect(missing).toMatchObject({ mode: null, timeoutMs: null });
    expect(missing.warnings).toEqual([expect.stringMatching(/cannot be read \(ENOENT/)]);
    expect(reader.inspections).toBe(1); // no thread for a file that is not there
  });

  it('inspects each class once per file version; concurrent reads share one inspection', async () => {
    // Looked at again on every read here; by default a file is looked at once a second at most.
    const reader = createReader(undefined, {}, 0);
    const file = path.join(scratch, 'Cached.mjs');
    await writeFile(file, "export default class Cached { static mode = 'thread'; static timeoutMs = 100; run() {} }\n");

    const together = await Promise.all([1, 2, 3].map(() => reader.read(file, 'Cached')));
    expect(reader.inspections).toBe(1);
    expect(together[0]).toEqual({ mode: 'thread', timeoutMs: 100, warnings: [] });
    expect(together[1]).toBe(together[0]);
    expect(together[2]).toBe(together[0]);

    expect(await reader.read(file, 'Cached')).toBe(together[0]);
    expect(reader.inspections).toBe(1);

    // A new version of the file (new content, new mtime) is inspected again.
    await writeFile(
      file,
      "export default class Cached { static mode = 'process'; static timeoutMs = 2000; run() {} }\n",
    );
    const later = new Date(Date.now() + 60_000);
    await utimes(file, later, later);
    expect(await reader.read(file, 'Cached')).toEqual({ mode: 'process', timeoutMs: 2000, warnings: [] });
    expect(reader.inspections).toBe(2);
    expect(await reader.read(file, 'Cached')).toMatchObject({ mode: 'process' });
    expect(reader.inspections).toBe(2);
  });

  it('answers peek from what it knows, without I/O, until the file is due to be looked at again', async () => {
    const file = path.join(scratch, 'Peeked.mjs');
    await writeFile(file, 'export default class Peeked { static timeoutMs = 250; run() {} }\n');
    const reader = createReader();
    expect(reader.peek(file, 'Peeked')).toBeNull();
    const read = await reader.read(file, 'Peeked');
    expect(reader.peek(file, 'Peeked')).toBe(read);
    expect(reader.peek(file, 'Other')).toBeNull();
    const stale = createReader(undefined, {}, 0);
    await stale.read(file, 'Peeked');
    expect(stale.peek(file, 'Peeked')).toBeNull();
  });

  it('close() ends running inspections; later reads return nulls without a thread', async () => {
    const channelName = `cwtr-traits-test-${process.pid}-${Date.now()}`;
    const channel = new BroadcastChannel(channelName);
    const looping = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the inspection never started')), 10_000);
      channel.onmessage = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    const reader = createReader(60_000, { CWTR_TRAITS_CHANNEL: channelName });
    const pending = reader.read(fixture('LoopAtLoad'), 'LoopAtLoad');
    await looping.finally(() => channel.close());
    expect(reader.activeInspections).toBe(1);
    await reader.close();
    expect(await pending).toMatchObject({ mode: null, timeoutMs: null });
    expect(reader.activeInspections).toBe(0);
    const after = await reader.read(fixture('Declared'), 'Declared');
    expect(after).toMatchObject({
      mode: null,
      timeoutMs: null,
      warnings: [expect.stringMatching(/the traits reader is closed/)],
    });
    expect(reader.inspections).toBe(1);
  });
});
