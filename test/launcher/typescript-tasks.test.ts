import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/db.js';

/**
 * `.ts` task files under a TypeScript loader, in the setup docs/writing-tasks.md gives:
 * an application that embeds the runner, run with `tsx` or `node --import tsx`. What a class
 * declares is read though no worker thread can load the file on Node 20 (tsx's `--import`
 * serves the main thread only): its `static timeoutMs` applies, and its `static mode = 'thread'`
 * is read, then run in a child process with a warning that says why.
 */
const t = useTestDatabase();

const root = fileURLToPath(new URL('../../', import.meta.url));
const host = fileURLToPath(new URL('../fixtures/scripts/typescript-host.mjs', import.meta.url));
const tasksDir = fileURLToPath(new URL('../fixtures/ts-tasks/', import.meta.url));
const tsx = fileURLToPath(new URL('../../node_modules/.bin/tsx', import.meta.url));

interface HostAnswer {
  pid: number;
  runs: {
    name: string;
    mode: string;
    pid: number;
    threadId: number | null;
    result: string;
    resultText: string | null;
  }[];
  logged: string[];
}

function runHost(
  command: string,
  args: string[],
  names = ['SlowTyped', 'ThreadTyped'],
  extraEnv: Record<string, string> = {},
): Promise<HostAnswer> {
  return new Promise((resolve, reject) => {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...extraEnv };
    execFile(
      command,
      [...args, host, t.url, tasksDir, ...names],
      { cwd: root, env, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').pop()!) as HostAnswer);
      },
    );
  });
}

const setups: { name: string; command: string; args: string[] }[] = [
  { name: 'tsx host.mjs', command: tsx, args: [] },
  { name: 'node --import tsx host.mjs', command: process.execPath, args: ['--import', 'tsx'] },
];

describe.each(setups)('a .ts task under $name', ({ command, args }) => {
  it('keeps its static timeoutMs and reads its static mode', async () => {
    const answer = await runHost(command, args);
    const [slow, threaded] = answer.runs;
    // 300 ms from `static timeoutMs`, not the 10 s the task would wait.
    expect(slow).toMatchObject({
      name: 'SlowTyped',
      result: 'TIMED_OUT',
      resultText: expect.stringMatching(/^hard timeout of 300 ms reached/),
    });
    expect(threaded).toMatchObject({ name: 'ThreadTyped', result: 'FINISHED' });
    if (threaded!.threadId === null) {
      // No thread can load it here: a child ran it, and the log says so.
      expect(threaded!.pid).not.toBe(answer.pid);
      expect(answer.logged).toContainEqual(
        expect.stringMatching(
          /task "ThreadTyped" .*: static mode "thread" cannot apply: a worker thread cannot load this file on Node v\d+.*so it runs in a child process/,
        ),
      );
    } else {
      expect(threaded).toMatchObject({ pid: answer.pid, resultText: `pid ${answer.pid} thread ${threaded!.threadId}` });
    }
    expect(answer.logged.filter((line) => /could not be loaded|ERR_UNKNOWN_FILE_EXTENSION/.test(line))).toEqual([]);
  });
});

describe('a loader the children do not get', () => {
  it('is said at start, once, before any try fails to load', async () => {
    // NODE_OPTIONS reaches the launcher, not its children (their environment is allowlisted).
    const answer = await runHost(process.execPath, [], ['SlowTyped'], { NODE_OPTIONS: '--import tsx' });
    expect(answer.runs[0]).toMatchObject({
      name: 'SlowTyped',
      result: 'FAILED',
      resultText: expect.stringContaining('ERR_UNKNOWN_FILE_EXTENSION'),
    });
    expect(answer.logged[0]).toMatch(
      /^warn 2 TypeScript task file\(s\), \S+SlowTyped\.ts first, will fail to load in the children that run their tries: their Node arguments \(childExecArgv\) carry no TypeScript loader/,
    );
    expect(answer.logged.filter((line) => line.includes('will fail to load in the children'))).toHaveLength(1);
  });
});
