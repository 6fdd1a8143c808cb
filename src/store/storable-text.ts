/**
 * PostgreSQL text cannot hold U+0000: a statement carrying one fails as a whole ("invalid byte
 * sequence for encoding UTF8: 0x00"). Texts that come from tasks (results, error messages, crash
 * output) may hold any character, so each NUL is stored as U+FFFD, the replacement character,
 * which says "a character was here that could not be kept". Everything else is stored as it is.
 */
export function storableText(text: string): string;
export function storableText(text: string | null): string | null;
export function storableText(text: string | null): string | null {
  return text === null || !text.includes('\u0000') ? text : text.replaceAll('\u0000', '\uFFFD');
}
