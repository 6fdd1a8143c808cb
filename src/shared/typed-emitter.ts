import { EventEmitter } from 'node:events';

/**
 * An EventEmitter whose event names and payloads are checked by the compiler.
 * `once()` returns a promise with a timeout so tests and callers can wait on an event
 * instead of sleeping.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  on<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): () => void {
    this.#emitter.on(event, listener as (payload: unknown) => void);
    return () => this.#emitter.off(event, listener as (payload: unknown) => void);
  }

  off<K extends keyof Events & string>(event: K, listener: (payload: Events[K]) => void): void {
    this.#emitter.off(event, listener as (payload: unknown) => void);
  }

  emit<K extends keyof Events & string>(event: K, payload: Events[K]): void {
    // A listener that throws must not break the emitter's caller (the claim loop).
    for (const listener of this.#emitter.listeners(event)) {
      try {
        (listener as (payload: Events[K]) => void)(payload);
      } catch {
        // listeners are the caller's code; their failures are theirs
      }
    }
  }

  /**
   * Resolves with the first payload of `event` that satisfies `filter`, or rejects after
   * `timeoutMs` naming the event it waited for.
   */
  waitFor<K extends keyof Events & string>(
    event: K,
    filter: (payload: Events[K]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Events[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#emitter.off(event, listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for event "${event}"`));
      }, timeoutMs);
      const listener = (payload: Events[K]): void => {
        if (!filter(payload)) return;
        clearTimeout(timer);
        this.#emitter.off(event, listener);
        resolve(payload);
      };
      this.#emitter.on(event, listener);
    });
  }
}
