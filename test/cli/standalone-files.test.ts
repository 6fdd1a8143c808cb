/** The standalone launcher's pidfile and control socket, in this process. */
import { spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestControl } from '../../dist/standalone/control-client.js';
import { controlSocketPath } from '../../dist/standalone/control-protocol.js';
import { ControlServer } from '../../dist/standalone/control-server.js';
import { acquirePidfile, pidfilePath } from '../../dist/standalone/pidfile.js';
import { readProcessIdentity } from '../../dist/pool/process-identity.js';
import { TaskRunnerError } from '../../dist/index.js';
import { waitForExit } from '../helpers/processes.js';
import { workDir } from './cli-process.js';

let dir: string;
let remove: () => Promise<void>;
let n = 0;
beforeAll(async () => {
  ({ dir, remove } = await workDir());
});
afterAll(async () => {
  await remove();
});

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );
const freshTmp = (): string => path.join(dir, `t${++n}`);

describe('pidfile', () => {
  it("is created with its directories at the seed's path, and removed on release", async () => {
    const tmp = freshTmp();
    const file = pidfilePath(tmp);
    expect(file).toBe(path.join(tmp, 'pids', 'task_runner_daemon.pid'));
    const identity = await readProcessIdentity(process.pid);
    const pidfile = await acquirePidfile(file, identity);
    expect((await readFile(file, 'utf8')).split('\n')[0]).toBe(String(process.pid));
    await pidfile.release();
    await pidfile.release();
    expect(await exists(file)).toBe(false);
  });

  it('refuses to start while it names a live process, naming the pid', async () => {
    const file = pidfilePath(freshTmp());
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, `${other.pid}\n${await readProcessIdentity(other.pid!)}\n`);
      const error = await acquirePidfile(file, null).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TaskRunnerError);
      expect((error as TaskRunnerError).code).toBe('ALREADY_RUNNING');
      expect((error as Error).message).toContain(`pid ${other.pid}`);
      expect(await readFile(file, 'utf8')).toContain(String(other.pid));
    } finally {
      other.kill('SIGKILL');
      await waitForExit(other.pid!);
    }
  });

  it('replaces a stale one: a dead pid, a reused pid, or garbage', async () => {
    for (const content of ['4194305\n\n', `${process.ppid}\nnot-its-identity\n`, 'garbage']) {
      const file = pidfilePath(freshTmp());
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, content);
      const pidfile = await acquirePidfile(file, null);
      expect((await readFile(file, 'utf8')).split('\n')[0]).toBe(String(process.pid));
      await pidfile.release();
    }
  });

  it('does not remove a pidfile that another launcher has taken over', async () => {
    const file = pidfilePath(freshTmp());
    const pidfile = await acquirePidfile(file, null);
    await writeFile(file, '4194305\n');
    await pidfile.release();
    expect(await exists(file)).toBe(true);
  });
});

/** Sends raw lines and collects `count` answer lines. */
function converse(socketPath: string, text: string, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(text));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split('\n').filter((line) => line !== '');
      if (lines.length >= count) {
        socket.destroy();
        resolve(lines);
      }
    });
    socket.on('error', reject);
  });
}

describe('control socket', () => {
  it('answers status and probe with the handlers, as newline-delimited JSON, in order', async () => {
    const socketPath = controlSocketPath(freshTmp());
    expect(socketPath.endsWith(path.join('sockets', 'task_runner.sock'))).toBe(true);
    const at = new Date('2030-01-01T00:00:00Z');
    const server = new ControlServer({
      socketPath,
      handlers: {
        status: async () => ({ pid: 1, running: [{ id: '7', startedAt: at }] }),
        probe: async () => {
          throw new TaskRunnerError('DATABASE_UNAVAILABLE', 'database down');
        },
      },
    });
    await server.start();
    try {
      expect(await requestControl(socketPath, 'status')).toEqual({
        pid: 1,
        running: [{ id: '7', startedAt: at.toISOString() }],
      });
      await expect(requestControl(socketPath, 'probe')).rejects.toMatchObject({
        code: 'DATABASE_UNAVAILABLE',
        message: 'launcher: database down',
      });
      const lines = await converse(socketPath, '{"cmd":"ping"}\nnot json\n{"cmd":"shutdown"}\n\n{"cmd":"status"}\n', 4);
      expect(lines.map((line) => JSON.parse(line))).toEqual([
        { ok: true, result: 'pong' },
        { ok: false, error: { code: 'PROTOCOL_INVALID', message: 'request is not JSON' } },
        {
          ok: false,
          error: {
            code: 'PROTOCOL_INVALID',
            message: 'unknown command "shutdown"; expected one of status, probe, ping',
          },
        },
        { ok: true, result: { pid: 1, running: [{ id: '7', startedAt: at.toISOString() }] } },
      ]);
    } finally {
      await server.stop();
    }
    expect(await exists(socketPath)).toBe(false);
    expect(await requestControl(socketPath, 'status')).toBeNull();
  });

  it('removes a stale socket file at start and refuses to start while another server answers', async () => {
    const socketPath = controlSocketPath(freshTmp());
    const handlers = { status: async () => 'a', probe: async () => 'a' };
    await mkdir(path.dirname(socketPath), { recursive: true });
    await writeFile(socketPath, '');
    const first = new ControlServer({ socketPath, handlers });
    await first.start();
    try {
      const second = new ControlServer({ socketPath, handlers });
      await expect(second.start()).rejects.toMatchObject({ code: 'ALREADY_RUNNING' });
      expect(await requestControl(socketPath, 'status')).toBe('a');
    } finally {
      await first.stop();
    }
  });

  it('refuses a socket path longer than the system allows, with a clear message', async () => {
    const socketPath = controlSocketPath(path.join(dir, 'x'.repeat(120)));
    const server = new ControlServer({ socketPath, handlers: { status: async () => 1, probe: async () => 1 } });
    await expect(server.start()).rejects.toThrow(/longer than \d+ bytes.*shorter tmpDir/);
  });
});
