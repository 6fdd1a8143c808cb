/** The runner logs through this interface; library code never writes to the console itself. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A logger that drops everything: the default for embedded use. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * A logger writing one line per entry (`time level message key=value ...`) to a stream.
 *
 * @example
 * const logger = createStreamLogger(process.stderr, 'info');
 */
export function createStreamLogger(
  stream: { write(chunk: string): unknown },
  minLevel: LogLevel = 'info',
): Logger {
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (levelRank[level] < levelRank[minLevel]) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
    if (fields !== undefined) {
      for (const [key, value] of Object.entries(fields)) {
        line += ` ${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
      }
    }
    stream.write(`${line}\n`);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
  };
}
