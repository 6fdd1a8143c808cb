import pg from 'pg';
import type { Logger } from '../shared/logger.js';

export interface NotifyListenerParams {
  /** A connection string, or a pool whose connection settings are reused for a separate client. */
  source: string | pg.Pool;
  /** Channel name → what to do with a notification's payload. */
  channels: Readonly<Record<string, (payload: string) => void>>;
  /** Called after (re)connecting, so the caller can claim what arrived while it was away. */
  onConnected(): void;
  logger: Logger;
}

/**
 * Holds one dedicated connection in LISTEN. A pooled connection cannot be used: notifications
 * arrive only on the session that listens, and a pool hands sessions around. If the connection
 * drops it reconnects with a backoff; the poll interval covers the gap.
 */
export class NotifyListener {
  readonly #params: NotifyListenerParams;
  #client: pg.Client | null = null;
  #stopped = false;
  #retryTimer: NodeJS.Timeout | null = null;
  #failures = 0;

  constructor(params: NotifyListenerParams) {
    this.#params = params;
  }

  async start(): Promise<void> {
    await this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = null;
    if (client !== null) await client.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const source = this.#params.source;
    const client =
      typeof source === 'string'
        ? new pg.Client({ connectionString: source, keepAlive: true, keepAliveInitialDelayMillis: 10_000 })
        : new pg.Client(source.options);
    client.on('notification', (message) => {
      const handler = Object.hasOwn(this.#params.channels, message.channel)
        ? this.#params.channels[message.channel]
        : undefined;
      handler?.(message.payload ?? '');
    });
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('connection ended')));
    try {
      await client.connect();
      for (const channel of Object.keys(this.#params.channels)) await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      this.#lost(client, error as Error);
      return;
    }
    if (this.#stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#failures = 0;
    this.#params.onConnected();
  }

  #lost(client: pg.Client, error: Error): void {
    if (this.#stopped || this.#retryTimer !== null) return;
    if (this.#client !== null && this.#client !== client) return;
    this.#client = null;
    client.end().catch(() => undefined);
    this.#failures += 1;
    const delayMs = Math.min(100 * 2 ** Math.min(this.#failures, 6), 5_000);
    this.#params.logger.warn('LISTEN connection lost; reconnecting', { error: error.message, delayMs });
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      void this.#connect();
    }, delayMs);
    this.#retryTimer.unref();
  }
}
