/**
 * Bounds what a child's `process.stdout` / `process.stderr` may hold back, and lets a try's report
 * wait until its output has gone to the launcher.
 *
 * A write to a pipe that the launcher has not read yet waits in the child's memory, and
 * `process.exit` throws away whatever still waits: a task that wrote 30 MiB in a loop (never waiting
 * for 'drain') got a few hundred KiB into the log, without its last line and without a word. So:
 * once `maxWaitingOutputBytes` wait on a stream, further writes are held instead, and of those only
 * the last `keptOutputBytes` are kept; when the stream drains, a line saying how many bytes were
 * dropped goes out, then what was kept (from its first whole line). The child's memory stays
 * bounded, the end of the output (its last line included) reaches the log, and the report of a
 * try is sent once its output is written (see `afterOutputWritten`), so a reused child's next try
 * does not inherit the tail, and a child that exits after its report loses nothing.
 *
 * The streams are wrapped when first used (the getter is replaced, not read): making one loads
 * Node's socket and stream modules, which a child whose task writes nothing never needs.
 */

/** Bytes a stream may have waiting to be written before further writes are held back. */
export const maxWaitingOutputBytes = 1024 * 1024;
/** Of the writes held back, the last this many bytes are kept; the rest are dropped and counted. */
export const keptOutputBytes = 64 * 1024;
/** How long a report waits for output to drain at most (the launcher reads without pause). */
const maxOutputWaitMs = 5_000;

const newline = 0x0a;

/** A write held back: as written (a string is turned into bytes only if it is kept in part). */
interface HeldChunk {
  data: string | Buffer;
  encoding: BufferEncoding;
  bytes: number;
}

interface Held {
  chunks: HeldChunk[];
  bytes: number;
  dropped: number;
  /** Whether the last byte dropped ended a line (so the kept bytes start one). */
  droppedEndsLine: boolean;
}

interface Watched {
  stream: NodeJS.WriteStream;
  write: (chunk: unknown, ...rest: unknown[]) => boolean;
  held: Held | null;
  /** Whether what was last passed on ended a line. */
  endsLine: boolean;
}

const watched: Watched[] = [];

function heldChunk(chunk: unknown, encoding: unknown): HeldChunk | null {
  if (typeof chunk === 'string') {
    const as = typeof encoding === 'string' && Buffer.isEncoding(encoding) ? encoding : 'utf8';
    return { data: chunk, encoding: as, bytes: Buffer.byteLength(chunk, as) };
  }
  if (chunk instanceof Uint8Array)
    return {
      data: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      encoding: 'utf8',
      bytes: chunk.byteLength,
    };
  return null;
}

const bufferOf = (chunk: HeldChunk): Buffer =>
  typeof chunk.data === 'string' ? Buffer.from(chunk.data, chunk.encoding) : chunk.data;

function lastIsNewline(chunk: unknown): boolean {
  if (typeof chunk === 'string') return chunk.charCodeAt(chunk.length - 1) === newline;
  return chunk instanceof Uint8Array && chunk[chunk.length - 1] === newline;
}

const isEmpty = (chunk: unknown): boolean =>
  (typeof chunk === 'string' || chunk instanceof Uint8Array) && chunk.length === 0;

/** Keeps `chunk` as the newest held; drops the oldest bytes past `keptOutputBytes`. */
function hold(held: Held, chunk: HeldChunk): void {
  held.chunks.push(chunk);
  held.bytes += chunk.bytes;
  while (held.bytes > keptOutputBytes) {
    const first = held.chunks[0]!;
    const over = held.bytes - keptOutputBytes;
    held.dropped += Math.min(over, first.bytes);
    if (over >= first.bytes) {
      held.droppedEndsLine = lastIsNewline(first.data);
      held.bytes -= first.bytes;
      held.chunks.shift();
      continue;
    }
    const bytes = bufferOf(first);
    held.droppedEndsLine = bytes[over - 1] === newline;
    // A copy (at most `keptOutputBytes`): a view would keep all of a huge write alive.
    held.chunks[0] = { data: Buffer.from(bytes.subarray(over)), encoding: 'utf8', bytes: bytes.length - over };
    held.bytes -= over;
  }
}

/** Passes on what was held: the marker first when something was dropped. */
function release(entry: Watched): void {
  const held = entry.held;
  if (held === null) return;
  entry.held = null;
  let kept = Buffer.concat(held.chunks.map(bufferOf));
  let { dropped } = held;
  if (dropped > 0) {
    // From the first whole line kept (a flood without newlines is kept as it is).
    const start = held.droppedEndsLine ? -1 : kept.indexOf(newline);
    if (start >= 0) {
      dropped += start + 1;
      kept = kept.subarray(start + 1);
    }
    const cut = entry.endsLine ? '' : '\n';
    entry.write(
      `${cut}[${dropped} bytes of output dropped: the task wrote faster than the launcher read; a child keeps ${maxWaitingOutputBytes / 1024} KiB waiting and the last ${keptOutputBytes / 1024} KiB after that]\n`,
    );
  }
  if (kept.length > 0) {
    entry.write(kept);
    entry.endsLine = kept[kept.length - 1] === newline;
  }
}

function watch(stream: NodeJS.WriteStream): void {
  const entry: Watched = { stream, write: stream.write.bind(stream) as Watched['write'], held: null, endsLine: true };
  watched.push(entry);
  stream.on('drain', () => release(entry));
  stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    if (entry.held === null && stream.writableLength < maxWaitingOutputBytes) {
      if (!isEmpty(chunk)) entry.endsLine = lastIsNewline(chunk);
      return entry.write(chunk, ...rest);
    }
    const held = heldChunk(chunk, rest[0]);
    if (held === null || stream.destroyed) return entry.write(chunk, ...rest);
    entry.held ??= { chunks: [], bytes: 0, dropped: 0, droppedEndsLine: true };
    hold(entry.held, held);
    const callback = rest.find((arg) => typeof arg === 'function') as (() => void) | undefined;
    if (callback !== undefined) queueMicrotask(callback);
    // Over the stream's high-water mark: 'drain' follows, as it would have.
    return false;
  }) as typeof stream.write;
}

/** Wraps `process.stdout` and `process.stderr` as they are first used. Call once, at start. */
export function boundOutput(): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const descriptor = Object.getOwnPropertyDescriptor(process, name);
    const get = descriptor?.get;
    if (get === undefined) {
      watch(process[name]);
      continue;
    }
    let stream: NodeJS.WriteStream | undefined;
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: descriptor!.enumerable ?? true,
      get() {
        if (stream === undefined) {
          stream = get.call(process) as NodeJS.WriteStream;
          watch(stream);
        }
        return stream;
      },
    });
  }
}

function waiting(entry: Watched): boolean {
  return !entry.stream.destroyed && (entry.held !== null || entry.stream.writableLength > 0);
}

/** Calls `then` once nothing of the stream's waits: what is held is released on 'drain' first. */
function whenFlushed(entry: Watched, then: () => void): void {
  if (!waiting(entry)) {
    then();
    return;
  }
  // release() was registered first: it has written what was held when this runs.
  if (entry.held !== null) entry.stream.once('drain', () => whenFlushed(entry, then));
  // A write's callback runs once it and everything before it went to the pipe.
  else entry.write('', () => whenFlushed(entry, then));
}

/**
 * Calls `then` once what the streams hold has been handed to the pipes: at once (synchronously)
 * when nothing waits, as for most tries; after `maxOutputWaitMs` at the latest.
 */
export function afterOutputWritten(then: () => void): void {
  const pending = watched.filter(waiting);
  if (pending.length === 0) {
    then();
    return;
  }
  let left = pending.length;
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    then();
  };
  const timer = setTimeout(finish, maxOutputWaitMs);
  for (const entry of pending) {
    whenFlushed(entry, () => {
      left -= 1;
      if (left === 0) finish();
    });
  }
}
