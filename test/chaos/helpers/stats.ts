/** Small summaries of measured durations, for the chaos reports. */
export interface Spread {
  n: number;
  minMs: number | null;
  medianMs: number | null;
  p95Ms: number | null;
  maxMs: number | null;
}

export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { n: 0, minMs: null, medianMs: null, p95Ms: null, maxMs: null };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return {
    n: sorted.length,
    minMs: Math.round(sorted[0]!),
    medianMs: at(0.5),
    p95Ms: at(0.95),
    maxMs: Math.round(sorted[sorted.length - 1]!),
  };
}

/** The parent pid of `pid` (from /proc), or null when it is gone. */
export async function parentOf(pid: number): Promise<number | null> {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}
