import { chmod, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { TaskRunnerError } from '../errors.js';
import { silentLogger, type Logger } from '../shared/logger.js';
import { ServiceState, type Service } from '../shared/service.js';
import { pingControlSocket } from './control-client.js';
import {
  decodeControlRequest,
  maxControlLineBytes,
  maxSocketPathBytes,
  type ControlCommand,
  type ControlResponse,
} from './control-protocol.js';

export interface ControlServerParams {
  socketPath: string;
  /** One handler per command but `ping`; results are sent as JSON (Dates as ISO strings). */
  handlers: Record<Exclude<ControlCommand, 'ping'>, () => Promise<unknown>>;
  logger?: Logger;
}

/**
 * The launcher's control socket: a unix socket
 * answering newline-delimited JSON requests, readable by the launcher's user only. A socket file
 * left by a launcher that died is removed at start; one that still answers is refused.
 */
export class ControlServer implements Service {
  readonly #params: ControlServerParams;
  readonly #state = new ServiceState();
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;

  constructor(params: ControlServerParams) {
    this.#params = params;
  }

  get socketPath(): string {
    return this.#params.socketPath;
  }

  start(): Promise<void> {
    return this.#state.start(async () => {
      const file = this.#params.socketPath;
      if (Buffer.byteLength(file) > maxSocketPathBytes) {
        throw new TaskRunnerError(
          'CONFIG_INVALID',
          `control socket path ${file} is longer than ${maxSocketPathBytes} bytes, the system's limit; choose a shorter tmpDir`,
        );
      }
      await mkdir(path.dirname(file), { recursive: true });
      if (await pingControlSocket(file)) {
        throw new TaskRunnerError(
          'ALREADY_RUNNING',
          `another launcher answers on ${file}; stop it first, or use another tmpDir`,
        );
      }
      await unlink(file).catch(() => undefined);
      const server = createServer((socket) => this.#serve(socket));
      await new Promise<void>((resolve, reject) => {
        const fail = (error: NodeJS.ErrnoException): void =>
          reject(
            new TaskRunnerError('CONFIG_INVALID', `cannot listen on ${file}: ${error.code ?? error.message}`, {
              cause: error,
            }),
          );
        server.once('error', fail);
        server.listen(file, () => {
          server.off('error', fail);
          resolve();
        });
      });
      server.on('error', (error) =>
        (this.#params.logger ?? silentLogger).error('control socket failed', { error: error.message }),
      );
      this.#server = server;
      await chmod(file, 0o600);
    });
  }

  stop(): Promise<void> {
    return this.#state.stop(async () => {
      const server = this.#server;
      if (server === null) return;
      for (const socket of this.#sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(this.#params.socketPath).catch(() => undefined);
    });
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.setEncoding('utf8');
    let buffer = '';
    let queue = Promise.resolve();
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      if (Buffer.byteLength(buffer) > maxControlLineBytes) {
        socket.destroy();
        return;
      }
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line === '') continue;
        // Answers go out in request order.
        queue = queue.then(async () => {
          const response = await this.#answer(line);
          if (!socket.destroyed) socket.write(`${JSON.stringify(response)}\n`);
        });
      }
    });
  }

  async #answer(line: string): Promise<ControlResponse> {
    const request = decodeControlRequest(line);
    if (typeof request === 'string') return { ok: false, error: { code: 'PROTOCOL_INVALID', message: request } };
    if (request.cmd === 'ping') return { ok: true, result: 'pong' };
    try {
      return { ok: true, result: await this.#params.handlers[request.cmd]() };
    } catch (error) {
      const code = error instanceof TaskRunnerError ? error.code : 'INTERNAL';
      return { ok: false, error: { code, message: (error as Error).message } };
    }
  }
}
