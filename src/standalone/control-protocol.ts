import path from 'node:path';

/**
 * The control socket's protocol: newline-delimited JSON, one request line answered by one
 * response line, any number per connection.
 *
 *   → {"cmd":"status"}   ← {"ok":true,"result":{launcherId, host, pid, running, counts}}
 *   → {"cmd":"probe"}    ← {"ok":true,"result":{crashed, recovered}}
 *   → {"cmd":"ping"}     ← {"ok":true,"result":"pong"}
 *   anything else        ← {"ok":false,"error":{"code":"PROTOCOL_INVALID","message":"..."}}
 */
export type ControlCommand = 'status' | 'probe' | 'ping';
export const controlCommands: readonly ControlCommand[] = ['status', 'probe', 'ping'];

export interface ControlRequest {
  cmd: ControlCommand;
}

export type ControlResponse = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string } };

/** A request line longer than this closes the connection. */
export const maxControlLineBytes = 64 * 1024;

export function controlSocketPath(tmpDir: string): string {
  return path.join(tmpDir, 'sockets', 'task_runner.sock');
}

/** Unix socket paths are limited to 107 bytes on Linux (103 on macOS). */
export const maxSocketPathBytes = process.platform === 'darwin' ? 103 : 107;

export function decodeControlRequest(line: string): ControlRequest | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'request is not JSON';
  }
  const cmd = (value as { cmd?: unknown } | null)?.cmd;
  if (typeof cmd !== 'string' || !controlCommands.includes(cmd as ControlCommand)) {
    return `unknown command ${JSON.stringify(cmd)}; expected one of ${controlCommands.join(', ')}`;
  }
  return { cmd: cmd as ControlCommand };
}

export function decodeControlResponse(line: string): ControlResponse {
  const value = JSON.parse(line) as ControlResponse;
  if (typeof value !== 'object' || value === null || typeof value.ok !== 'boolean') {
    throw new Error('malformed control response');
  }
  return value;
}
