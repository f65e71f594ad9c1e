import type { Clock } from "../../lib/clock.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { PubSub } from "../../lib/pubsub.js";

export type LiveEventType = "webhook:delivered" | "notification:created";

export interface LiveEvent {
  /** Time-sortable, so `Last-Event-ID` can ask for "everything after". */
  id: string;
  userId: string;
  type: LiveEventType;
  data: unknown;
  atMs: number;
}

type Listener = (event: LiveEvent) => void;

const CHANNEL = "live-events";

/**
 * Fan-out of live events to the SSE connections of their user. Publishing goes through pub/sub (Redis in
 * scale mode), so an event raised by a worker reaches a browser connected to any api process. Each process
 * keeps a short per-user replay buffer for reconnecting clients (`Last-Event-ID`).
 */
export class EventHub {
  readonly #listeners = new Map<string, Set<Listener>>();
  readonly #recent = new Map<string, LiveEvent[]>();
  /** Users with a stream open now or closed within the replay window: only they can ask for a replay. */
  readonly #watchedUntil = new Map<string, number>();

  constructor(
    private readonly options: {
      clock: Clock;
      newId: IdGenerator;
      pubsub?: PubSub | undefined;
      /** Events kept per user for replay. Default 200. */
      replayLimit?: number;
      /** How old a replayed event may be. Default 5 minutes. */
      replayWindowMs?: number;
    },
  ) {}

  async start(): Promise<void> {
    await this.options.pubsub?.subscribe(CHANNEL, (message) =>
      this.#deliver(JSON.parse(message) as LiveEvent),
    );
  }

  /**
   * Whether an event for this user can reach anyone: always with pub/sub (another process may hold the
   * stream); in one process only while the user watches or may still ask for a replay. Lets the delivery
   * path skip building an event nobody will see.
   */
  hasAudience(userId: string): boolean {
    return this.options.pubsub !== undefined || this.#watched(userId);
  }

  async publish(userId: string, type: LiveEventType, data: unknown): Promise<void> {
    if (!this.hasAudience(userId)) return;
    const event: LiveEvent = {
      id: this.options.newId("evt"),
      userId,
      type,
      data,
      atMs: this.options.clock.now(),
    };
    if (this.options.pubsub) await this.options.pubsub.publish(CHANNEL, JSON.stringify(event));
    else this.#deliver(event);
  }

  /** Replays what the client missed after `lastEventId`, then streams live events. Returns unsubscribe. */
  subscribe(userId: string, listener: Listener, lastEventId?: string): () => void {
    if (lastEventId) {
      const oldest = this.options.clock.now() - this.#replayWindowMs();
      for (const event of this.#recent.get(userId) ?? []) {
        if (event.id > lastEventId && event.atMs >= oldest) listener(event);
      }
    }
    const set = this.#listeners.get(userId) ?? new Set();
    set.add(listener);
    this.#listeners.set(userId, set);
    this.#watchedUntil.set(userId, Number.POSITIVE_INFINITY);
    return () => {
      set.delete(listener);
      if (set.size === 0) {
        this.#listeners.delete(userId);
        this.#watchedUntil.set(userId, this.options.clock.now() + this.#replayWindowMs());
      }
    };
  }

  #replayWindowMs(): number {
    return this.options.replayWindowMs ?? 5 * 60_000;
  }

  #watched(userId: string): boolean {
    const until = this.#watchedUntil.get(userId);
    if (until === undefined) return false;
    if (until >= this.options.clock.now()) return true;
    this.#watchedUntil.delete(userId);
    this.#recent.delete(userId);
    return false;
  }

  connections(): number {
    let total = 0;
    for (const set of this.#listeners.values()) total += set.size;
    return total;
  }

  #deliver(event: LiveEvent): void {
    if (!this.#watched(event.userId)) return;
    const recent = this.#recent.get(event.userId) ?? [];
    recent.push(event);
    if (recent.length > (this.options.replayLimit ?? 200)) recent.shift();
    this.#recent.set(event.userId, recent);
    for (const listener of this.#listeners.get(event.userId) ?? []) listener(event);
  }
}
