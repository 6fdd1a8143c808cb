/** Longest line passed on whole; a longer one is cut, and the cut is marked. */
export const maxLineChars = 16 * 1024;

/**
 * Splits a stream's text into lines for the log. A line with no newline in sight is passed on in
 * pieces of {@link maxLineChars}, so a child writing megabytes without a newline cannot make the
 * launcher hold them.
 */
export class OutputLines {
  readonly #emit: (line: string) => void;
  #partial = '';

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  push(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) this.#line(line);
    while (this.#partial.length > maxLineChars) {
      this.#emit(`${this.#partial.slice(0, maxLineChars)} [line continues]`);
      this.#partial = this.#partial.slice(maxLineChars);
    }
  }

  end(): void {
    if (this.#partial.length > 0) this.#line(this.#partial);
    this.#partial = '';
  }

  #line(line: string): void {
    for (let at = 0; at < line.length; at += maxLineChars) {
      const piece = line.slice(at, at + maxLineChars);
      this.#emit(at + maxLineChars < line.length ? `${piece} [line continues]` : piece);
    }
    if (line.length === 0) this.#emit('');
  }
}
