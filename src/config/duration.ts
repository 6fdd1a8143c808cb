import { ConfigError } from '../errors.js';

const units: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The longest duration accepted anywhere (100 years): past it a value is a mistake, not a wish. */
export const maxDurationMs = 100 * 365 * units.d!;

/**
 * A duration as config files and call sites write it: milliseconds as a number, or text with a
 * unit (`500ms`, `30s`, `5m`, `12h`, `7d`). Errors name `field`.
 *
 * @example
 * parseDurationMs('retention.keep.FINISHED', '7d'); // 604800000
 */
export function parseDurationMs(field: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= maxDurationMs) return value;
  if (typeof value === 'string') {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim());
    if (match !== null) {
      const ms = Math.round(Number(match[1]) * units[match[2]!]!);
      if (ms <= maxDurationMs) return ms;
    }
  }
  throw new ConfigError(
    field,
    `must be a duration (milliseconds, or text such as 500ms, 30s, 5m, 12h, 7d), got ${JSON.stringify(value)}`,
  );
}
