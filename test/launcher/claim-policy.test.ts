/**
 * The claim policy's arithmetic (claim-policy.ts): how many rows a statement asks for, given the
 * launcher's slots and held rows. The launch path's behaviour under load is measured by the bench
 * and exercised end to end in local-queue.test.ts; this pins the rule itself.
 */
import { describe, expect, it } from 'vitest';
import { ClaimPolicy } from '../../src/launcher/claim-policy.js';

function policy(concurrency: number, prefetch: number): ClaimPolicy {
  const claims = new ClaimPolicy({
    concurrency,
    prefetch,
    prefetchHorizonMs: 1_000,
    pollIntervalMs: 1_000,
    nextDelayMs: async () => null,
    onWake: () => undefined,
    onIdle: () => undefined,
    onError: (error) => {
      throw error;
    },
  });
  claims.start();
  return claims;
}

describe('claim policy', () => {
  it('holds nothing beyond the free slots until a try has ended', () => {
    const claims = policy(8, 256);
    expect(claims.order({ running: 0, queued: 0, blocked: false })).toEqual({ limit: 8, startNow: 8 });
    expect(claims.order({ running: 8, queued: 0, blocked: false })).toBeNull();
  });

  it('refills the queue once a quarter of it is gone, up to the target', () => {
    const claims = policy(8, 256);
    claims.tryEnded(0.1); // short tries: the whole prefetch can start within the horizon
    expect(claims.heldTarget).toBe(256);
    // All slots busy: every queued row is held.
    expect(claims.order({ running: 8, queued: 200, blocked: false })).toBeNull();
    expect(claims.order({ running: 8, queued: 193, blocked: false })).toBeNull();
    // 192 held (three quarters): a claim rides on the next statement and tops the queue up, so
    // the rows come before the queue has run dry even when that statement is slow.
    expect(claims.order({ running: 8, queued: 192, blocked: false })).toEqual({ limit: 64, startNow: 0 });
    expect(claims.order({ running: 8, queued: 136, blocked: false })).toEqual({ limit: 120, startNow: 0 });
  });

  it('starts what fills free slots at once and holds the rest', () => {
    const claims = policy(8, 256);
    claims.tryEnded(0.1);
    expect(claims.order({ running: 5, queued: 0, blocked: false })).toEqual({ limit: 259, startNow: 3 });
  });

  it('holds no more than the horizon allows for long tries', () => {
    const claims = policy(8, 256);
    claims.tryEnded(2_000); // 8 slots, 2 s tries, 1 s horizon: 4 startable, fewer than prefetch
    expect(claims.heldTarget).toBe(4);
    expect(claims.order({ running: 8, queued: 4, blocked: false })).toBeNull();
    expect(claims.order({ running: 8, queued: 3, blocked: false })).toEqual({ limit: 1, startNow: 0 });
  });

  it('asks for nothing while outcomes wait beyond their cap, or after a short claim', async () => {
    const claims = policy(8, 256);
    claims.tryEnded(0.1);
    expect(claims.order({ running: 0, queued: 0, blocked: true })).toBeNull();
    claims.claimed(100, 10);
    expect(claims.order({ running: 0, queued: 0, blocked: false })).toBeNull();
    claims.wake();
    expect(claims.order({ running: 0, queued: 0, blocked: false })).toEqual({ limit: 264, startNow: 8 });
    await claims.stop();
  });
});
