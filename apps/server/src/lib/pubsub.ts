import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";

/** Cross-process notifications (cache invalidation now, live events later). Messages are strings. */
export interface PubSub {
  publish(channel: string, message: string): Promise<void>;
  subscribe(channel: string, handler: (message: string) => void): Promise<void>;
  close(): Promise<void>;
}

/** One process: an event emitter. */
export class MemoryPubSub implements PubSub {
  readonly #emitter = new EventEmitter().setMaxListeners(0);

  async publish(channel: string, message: string): Promise<void> {
    this.#emitter.emit(channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    this.#emitter.on(channel, handler);
  }

  async close(): Promise<void> {
    this.#emitter.removeAllListeners();
  }
}

/** Many processes: Redis pub/sub. A subscribed connection can do nothing else, hence its own. */
export class RedisPubSub implements PubSub {
  readonly #handlers = new Map<string, ((message: string) => void)[]>();

  constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
  ) {
    subscriber.on("message", (channel: string, message: string) => {
      for (const handler of this.#handlers.get(channel) ?? []) handler(message);
    });
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.publisher.publish(`${this.prefix}:${channel}`, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    const full = `${this.prefix}:${channel}`;
    const handlers = this.#handlers.get(full) ?? [];
    handlers.push(handler);
    this.#handlers.set(full, handlers);
    if (handlers.length === 1) await this.subscriber.subscribe(full);
  }

  async close(): Promise<void> {
    this.subscriber.disconnect();
  }
}
