/**
 * The child's end of its channel to the launcher (fd 3), used with blocking reads and writes
 * instead of a `net.Socket`. The socket's modules and stream machinery are a noticeable part of a
 * child's start (docs/performance.md says how the bench measures it), and a child that runs one
 * try has nothing else to do while it waits for its messages.
 *
 * Text is cut into lines at the newline byte, which never occurs inside a multi-byte UTF-8
 * character, so no decoder is loaded either.
 */
import { fs } from '../../shared/builtins.js';

const newline = 0x0a;

export type BlockingRead =
  /** Complete lines, each ending in '\n'. */
  | { kind: 'lines'; text: string }
  /** The launcher closed the channel (or went). */
  | { kind: 'end' }
  /** The descriptor does not block: nothing can be read this way. */
  | { kind: 'would block' }
  /** More than the cap arrived without a newline: the launcher is no longer trusted. */
  | { kind: 'too long' };

export class BlockingChannel {
  readonly #fd: number;
  readonly #maxLineBytes: number;
  readonly #buffer = Buffer.allocUnsafe(64 * 1024);
  /** Bytes read after the last newline. */
  #partial: Buffer[] = [];
  #partialBytes = 0;

  constructor(fd: number, maxLineBytes: number) {
    this.#fd = fd;
    this.#maxLineBytes = maxLineBytes;
  }

  /** Blocks until at least one complete line has arrived, or the channel ends. */
  readLines(): BlockingRead {
    for (;;) {
      let count: number;
      try {
        count = fs.readSync(this.#fd, this.#buffer, 0, this.#buffer.length, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return { kind: 'would block' };
        if ((error as NodeJS.ErrnoException).code === 'EINTR') continue;
        return { kind: 'end' };
      }
      if (count === 0) return { kind: 'end' };
      const got = this.#take(this.#buffer, count);
      if (got !== null) return got;
    }
  }

  /**
   * Writes all of `text`, blocking while the launcher's side is full. False when the launcher is
   * gone (the channel is closed).
   */
  write(text: string): boolean {
    const bytes = Buffer.from(text, 'utf8');
    let offset = 0;
    while (offset < bytes.length) {
      try {
        offset += fs.writeSync(this.#fd, bytes, offset, bytes.length - offset);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN' || (error as NodeJS.ErrnoException).code === 'EINTR')
          continue;
        return false;
      }
    }
    return true;
  }

  /** What was read after the last complete line, as text, and forgets it (for a socket taking over). */
  unread(): string {
    const text = Buffer.concat(this.#partial).toString('utf8');
    this.#partial = [];
    this.#partialBytes = 0;
    return text;
  }

  /** Adds `count` bytes read into `buffer`; the complete lines so far, or null while none is. */
  #take(buffer: Buffer, count: number): BlockingRead | null {
    const chunk = buffer.subarray(0, count);
    const last = chunk.lastIndexOf(newline);
    if (last < 0) {
      this.#partial.push(Buffer.from(chunk));
      this.#partialBytes += count;
      return this.#partialBytes > this.#maxLineBytes ? { kind: 'too long' } : null;
    }
    const text = Buffer.concat([...this.#partial, chunk.subarray(0, last + 1)]).toString('utf8');
    this.#partial = last + 1 < count ? [Buffer.from(chunk.subarray(last + 1))] : [];
    this.#partialBytes = count - last - 1;
    return { kind: 'lines', text };
  }
}
