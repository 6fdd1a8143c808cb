/**
 * A TCP proxy on 127.0.0.1 between one launcher and its PostgreSQL that can black-hole the path:
 * `cut()` stops forwarding in both directions while every socket stays open (a partition that
 * TCP sees as silence: no reset, no FIN, keepalive probes answered by the proxy's kernel), and
 * connections opened meanwhile are accepted and left silent too. `heal()` forwards again what
 * waited, as TCP's retransmissions would deliver it once a real partition ends.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class BlackHoleProxy {
  readonly #target: { host: string; port: number };
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; upstream: Socket | null; pending: Buffer[] }>();
  #cut = false;
  port = 0;

  constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((client) => this.#accept(client));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  /** `url` with its host and port replaced by the proxy's. */
  urlThrough(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.href;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  cut(): void {
    this.#cut = true;
    for (const pair of this.#pairs) {
      pair.client.pause();
      pair.upstream?.pause();
    }
  }

  heal(): void {
    this.#cut = false;
    for (const pair of this.#pairs) this.#open(pair);
  }

  async stop(): Promise<void> {
    for (const pair of this.#pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const pair = { client, upstream: null as Socket | null, pending: [] as Buffer[] };
    this.#pairs.add(pair);
    const forget = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    client.on('error', forget);
    client.on('close', forget);
    // Until the upstream exists, what the client sends waits here.
    client.on('data', (chunk: Buffer) => {
      if (pair.upstream === null) pair.pending.push(chunk);
    });
    if (this.#cut) client.pause();
    else this.#open(pair);
  }

  /** Connects the pair upstream (once) and lets both directions flow. */
  #open(pair: { client: Socket; upstream: Socket | null; pending: Buffer[] }): void {
    if (pair.upstream === null) {
      const upstream = connect(this.#target.port, this.#target.host);
      pair.upstream = upstream;
      upstream.on('error', () => pair.client.destroy());
      upstream.on('close', () => pair.client.destroy());
      for (const chunk of pair.pending) upstream.write(chunk);
      pair.pending = [];
      pair.client.on('data', (chunk: Buffer) => upstream.write(chunk));
      upstream.on('data', (chunk: Buffer) => pair.client.write(chunk));
    }
    pair.client.resume();
    pair.upstream.resume();
  }
}
