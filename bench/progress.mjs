// One progress line on stderr, rewritten in place on a terminal and printed per step otherwise
// (CI logs), so stdout keeps only the table.
const tty = process.stderr.isTTY === true;
const startedAt = performance.now();
let last = '';

function elapsed() {
  return `${((performance.now() - startedAt) / 1000).toFixed(0).padStart(4)} s`;
}

/** A new step: always shown. */
export function step(text) {
  last = text;
  if (tty) process.stderr.write(`\r\x1b[2K[${elapsed()}] ${text}`);
  else process.stderr.write(`[${elapsed()}] ${text}\n`);
}

/** A figure within the current step: updates the line on a terminal, silent in a log. */
export function tick(detail) {
  if (tty) process.stderr.write(`\r\x1b[2K[${elapsed()}] ${last} ${detail}`);
}

export function done() {
  if (tty) process.stderr.write('\n');
}
