/** The runner logs through this interface; library code never writes to the console itself. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** Writes out what is buffered, now (before a process exits). */
  flush?(): void;
  /**
   * Whether lines of `level` go anywhere: a caller that would build a line per task skips the
   * work when they would be dropped. Absent means they may.
   */
  enabled?(level: LogLevel): boolean;
}

/** Whether `logger` keeps lines of `level` (true when it cannot say). */
export function logsAt(logger: Logger, level: LogLevel): boolean {
  return logger.enabled?.(level) ?? true;
}

/** A logger that drops everything: the default for embedded use. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  enabled: () => false,
};

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface StreamLoggerOptions {
  /** Lines below this level are dropped. Default `info`. */
  level?: LogLevel;
  /**
   * `pretty`: `time LEVEL message key=value ...`, for a person at a terminal; `json`: one JSON
   * object per line (`time`, `level`, `msg`, the base fields, then the line's own), for a log
   * collector. Default `pretty`.
   */
  format?: 'pretty' | 'json';
  /** Fields on every line (the launcher gives `pid` and `host`). JSON lines only. */
  base?: Record<string, unknown>;
}

/** Lines held before a write is forced, in characters. */
const maxBufferedChars = 64 * 1024;

/** How long a line may wait for others to share its write, in milliseconds. */
const logFlushDelayMs = 10;

/**
 * A logger writing one line per entry to a stream. Lines logged within 10 ms of the first one
 * waiting go out in one write (at once when 64 KiB are waiting), not one write each: a launcher
 * logging a line per task at thousands of tasks a second, one task per turn of the event loop
 * (reused children), would otherwise spend a system call per line. The wait holds the process
 * open for at most those 10 ms; `flush()` writes at once (before `process.exit`).
 *
 * @example
 * const logger = createStreamLogger(process.stderr, { level: 'info', base: { pid: process.pid } });
 */
export function createStreamLogger(
  stream: { write(chunk: string): unknown },
  options: LogLevel | StreamLoggerOptions = {},
): Logger {
  const {
    level: minLevel = 'info',
    format = 'pretty',
    base = {},
  } = typeof options === 'string' ? { level: options } : options;
  const baseJson = Object.keys(base).length === 0 ? '' : JSON.stringify(base).slice(1, -1);
  let buffered = '';
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    if (buffered.length === 0) return;
    const text = buffered;
    buffered = '';
    stream.write(text);
  };
  const line = format === 'json' ? jsonLine(baseJson) : prettyLine;
  const enabled = (level: LogLevel): boolean => levelRank[level] >= levelRank[minLevel];
  const write = (level: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (!enabled(level)) return;
    buffered += line(level, message, fields);
    if (buffered.length >= maxBufferedChars) flush();
    else if (timer === null) timer = setTimeout(flush, logFlushDelayMs);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    flush,
    enabled,
  };
}

// A launcher logs thousands of lines a second, many in the same millisecond: the time text is
// made once per millisecond, not once per line.
let stampMs = Number.NaN;
let stampText = '';
function timeText(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stampText = new Date(now).toISOString();
  }
  return stampText;
}

const levelText: Record<LogLevel, string> = { debug: 'DEBUG', info: 'INFO ', warn: 'WARN ', error: 'ERROR' };

function prettyLine(level: LogLevel, message: string, fields?: Record<string, unknown>): string {
  let line = `${timeText()} ${levelText[level]} ${message}`;
  if (fields !== undefined) {
    for (const key in fields) {
      const value = fields[key];
      line += ` ${key}=${typeof value === 'string' ? JSON.stringify(value) : String(value)}`;
    }
  }
  return `${line}\n`;
}

function jsonLine(baseJson: string): (level: LogLevel, message: string, fields?: Record<string, unknown>) => string {
  return (level, message, fields) => {
    let line = `{"time":"${timeText()}","level":"${level}","msg":${JSON.stringify(message)}`;
    if (baseJson.length > 0) line += `,${baseJson}`;
    if (fields !== undefined) {
      const own = JSON.stringify(fields, (_key, value: unknown) => (typeof value === 'bigint' ? String(value) : value));
      if (own.length > 2) line += `,${own.slice(1, -1)}`;
    }
    return `${line}}\n`;
  };
}
