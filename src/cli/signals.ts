import type { Logger } from '../shared/logger.js';

const stopSignals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
const signalNumbers: Record<(typeof stopSignals)[number], number> = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 };

export interface StopSignals {
  /** Resolves with the name of the first stop signal received. */
  readonly received: Promise<string>;
  /** Removes the handlers. */
  dispose(): void;
}

/**
 * The only signal handlers in the package. The first SIGTERM, SIGINT or SIGHUP asks for a
 * graceful stop (installed before anything starts, so a signal during startup stops the launcher
 * as soon as it is up, with nothing left behind); a second one exits at once, leaving the pid probe
 * of the next launcher to recover the rows still running.
 */
export function installStopSignals(logger: Logger): StopSignals {
  let resolve!: (signal: string) => void;
  const received = new Promise<string>((done) => {
    resolve = done;
  });
  let count = 0;
  const handler = (signal: NodeJS.Signals): void => {
    count += 1;
    if (count === 1) {
      logger.info(`received ${signal}: stopping gracefully (send it again to force an exit)`);
      resolve(signal);
      return;
    }
    logger.warn(`received ${signal} again: exiting now`);
    logger.flush?.();
    process.exit(128 + (signalNumbers[signal as keyof typeof signalNumbers] ?? 15));
  };
  for (const signal of stopSignals) process.on(signal, handler);
  return {
    received,
    dispose: () => {
      for (const signal of stopSignals) process.off(signal, handler);
    },
  };
}
