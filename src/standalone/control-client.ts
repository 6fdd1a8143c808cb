import { connect } from 'node:net';
import { TaskRunnerError, type ErrorCode } from '../errors.js';
import { decodeControlResponse, type ControlCommand } from './control-protocol.js';

/**
 * Sends one command to a launcher's control socket. Resolves with the result, or null when no
 * launcher listens there (no socket file, or nobody accepting on it).
 *
 * @throws TaskRunnerError with the launcher's error code when it answered with an error, or
 *   PROTOCOL_INVALID when it did not answer within `timeoutMs`.
 * @example
 * const status = await requestControl(controlSocketPath('tmp'), 'status');
 */
export function requestControl(socketPath: string, cmd: ControlCommand, timeoutMs = 30_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffer = '';
    let settled = false;
    const finish = (body: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      body();
    };
    const timer = setTimeout(() => {
      finish(() =>
        reject(new TaskRunnerError('PROTOCOL_INVALID', `no answer on ${socketPath} within ${timeoutMs} ms`)),
      );
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ cmd })}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      finish(() => {
        try {
          const response = decodeControlResponse(buffer.slice(0, newline));
          if (response.ok) resolve(response.result);
          else reject(new TaskRunnerError(response.error.code as ErrorCode, `launcher: ${response.error.message}`));
        } catch (error) {
          reject(new TaskRunnerError('PROTOCOL_INVALID', `bad answer on ${socketPath}: ${(error as Error).message}`));
        }
      });
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      const nobody = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK';
      finish(() => (nobody ? resolve(null) : reject(error)));
    });
    socket.on('close', () =>
      finish(() => reject(new TaskRunnerError('PROTOCOL_INVALID', `${socketPath} closed without an answer`))),
    );
  });
}

/** True when a launcher answers on the socket. */
export async function pingControlSocket(socketPath: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    return (await requestControl(socketPath, 'ping', timeoutMs)) === 'pong';
  } catch {
    return false;
  }
}
