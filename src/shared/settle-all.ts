/**
 * Resolves true once `pending` is empty (promises added while waiting are waited for too), or
 * false after `timeoutMs`. Members remove themselves from the set when they settle.
 */
export async function settleAll(pending: ReadonlySet<Promise<unknown>>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const all = (async () => {
    while (pending.size > 0) await Promise.allSettled([...pending]);
    return true as const;
  })();
  const settled = await Promise.race([all, timeout]);
  clearTimeout(timer);
  return settled;
}
