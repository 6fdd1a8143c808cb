import { runCli } from './main.js';

/** How long a finished command may take to let go of its last handles before it is made to exit. */
const exitGraceMs = 2_000;

/**
 * Runs the CLI in this process and exits with its code: the shared body of `bin.ts` and of the
 * standalone `launcher.ts`.
 */
export function runEntry(argv: readonly string[]): void {
  void runCli(argv, { stdout: process.stdout, stderr: process.stderr }).then((code) => {
    process.exitCode = code;
    // Normally the event loop is empty by now; a handle left open (a socket in a task library,
    // say) must not keep a finished command alive.
    setTimeout(() => process.exit(code), exitGraceMs).unref();
  });
}
