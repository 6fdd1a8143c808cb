/**
 * Catches what a thread-mode try writes to `process.stdout` / `process.stderr` (console included),
 * so the launcher can log it with the request id as it does a child's. A thread runs one try at a
 * time; writes while no try runs (a timer an earlier try left) go to the launcher's streams as
 * before. What one try may write is capped; past the cap the rest is counted, not kept.
 */
import type { ThreadOutput } from '../thread-result.js';

export const maxThreadOutputBytes = 64 * 1024;

let current: ThreadOutput | null = null;

function capture(stream: 'stdout' | 'stderr', chunk: unknown): void {
  const output = current!;
  const text =
    typeof chunk === 'string'
      ? chunk
      : Buffer.isBuffer(chunk) || chunk instanceof Uint8Array
        ? Buffer.from(chunk).toString('utf8')
        : String(chunk);
  const used = Buffer.byteLength(output.stdout) + Buffer.byteLength(output.stderr);
  const room = maxThreadOutputBytes - used;
  const bytes = Buffer.byteLength(text);
  if (bytes <= room) {
    output[stream] += text;
    return;
  }
  output[stream] += Buffer.from(text)
    .subarray(0, Math.max(0, room))
    .toString('utf8')
    .replace(/\uFFFD$/, '');
  output.droppedBytes += bytes - Math.max(0, room);
}

for (const name of ['stdout', 'stderr'] as const) {
  const stream = process[name];
  const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (current === null) return original(chunk, ...rest);
    capture(name, chunk);
    const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    if (callback !== undefined) queueMicrotask(callback);
    return true;
  }) as typeof stream.write;
}

/** Runs `body` with its output caught; returns both. */
export async function withCapturedOutput<T>(body: () => Promise<T>): Promise<{ value: T; output: ThreadOutput }> {
  const output: ThreadOutput = { stdout: '', stderr: '', droppedBytes: 0 };
  current = output;
  try {
    return { value: await body(), output };
  } finally {
    current = null;
  }
}
