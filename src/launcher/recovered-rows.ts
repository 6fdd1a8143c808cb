import type { Logger } from '../shared/logger.js';
import type { TypedEmitter } from '../shared/typed-emitter.js';
import type { RunnerEvents } from './events.js';

/** Where the probe and the lease service say which rows they recovered. */
export interface RecoveryListeners {
  events: TypedEmitter<RunnerEvents>;
  logger: Logger;
}

/**
 * Says that rows another process left behind were recovered: `probe` when their process was gone
 * on this host, `lease` when their launcher's lease ran out (or their pid was cleared by hand).
 */
export function announceRecovered(to: RecoveryListeners, ids: readonly string[], reason: 'probe' | 'lease'): void {
  if (ids.length === 0) return;
  to.events.emit('probe:recovered', { ids: [...ids], reason });
  const message =
    reason === 'probe' ? 'pid probe recovered crashed requests' : 'recovered requests whose lease expired';
  to.logger.warn(message, { ids: ids.join(',') });
}
