/** Small checks on values that arrive from outside (messages, config files, rows). */

/**
 * The largest value of a PostgreSQL `integer` column (tries, priority, timeout_ms), which is also
 * the longest delay a Node timer takes: one bound for every such number.
 */
export const maxInt4 = 2_147_483_647;

/** A plain object (not null, not an array). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The start of a value's JSON (or of its string form when it has none), for error messages. */
export function previewJson(value: unknown, maxChars: number): string {
  let shown: string | undefined;
  try {
    shown = JSON.stringify(value);
  } catch {
    shown = undefined;
  }
  return (shown ?? String(value)).slice(0, maxChars);
}
