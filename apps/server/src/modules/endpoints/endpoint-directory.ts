import type { Clock } from "../../lib/clock.js";
import type { SecretBox } from "../../lib/crypto.js";
import type { PubSub } from "../../lib/pubsub.js";
import type { Plan } from "../../storage/schema.js";
import type { Storage } from "../../storage/storage.js";

/** What ingestion and delivery need to know about an endpoint and its owner, decrypted and ready. */
export interface EndpointSnapshot {
  id: string;
  userId: string;
  slug: string;
  name: string;
  targetUrl: string;
  signingSecret: string | null;
  paused: boolean;
  owner: { plan: Plan; trial_ends_at: number | null };
}

export interface EndpointDirectoryOptions {
  storage: Storage;
  clock: Clock;
  secretBox: SecretBox;
  /**
   * How long a snapshot is trusted. Changes made through this process invalidate at once; the TTL bounds
   * staleness for changes made elsewhere (the CLI, another api process). Default 5 s.
   */
  ttlMs?: number;
  maxEntries?: number;
  /** Carries invalidations to the other processes' directories (scale mode). */
  pubsub?: PubSub;
}

const CHANNEL = "endpoint-directory";
type Invalidation = { endpoint: { id: string; slug: string } } | { userId: string };

type Entry = { snapshot: EndpointSnapshot | null; expiresAt: number };

/**
 * Read-through cache of endpoint snapshots by slug and by id, so the ingest hot path does no database
 * read (or AES decryption) per request. Unknown slugs are cached too, so random-slug floods stay cheap.
 */
export class EndpointDirectory {
  readonly #bySlug = new Map<string, Entry>();
  readonly #byId = new Map<string, Entry>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(private readonly options: EndpointDirectoryOptions) {
    this.#ttlMs = options.ttlMs ?? 5_000;
    this.#maxEntries = options.maxEntries ?? 50_000;
  }

  bySlug(slug: string): Promise<EndpointSnapshot | null> {
    return this.#get(this.#bySlug, slug, "slug");
  }

  byId(id: string): Promise<EndpointSnapshot | null> {
    return this.#get(this.#byId, id, "id");
  }

  /** Listens for invalidations published by other processes. */
  async start(): Promise<void> {
    await this.options.pubsub?.subscribe(CHANNEL, (message) =>
      this.#evict(JSON.parse(message) as Invalidation),
    );
  }

  /** Drops cached copies of one endpoint (after update, pause, delete, rotate), here and elsewhere. */
  invalidate(endpoint: { id: string; slug: string }): Promise<void> {
    return this.#broadcast({ endpoint: { id: endpoint.id, slug: endpoint.slug } });
  }

  /** Drops everything owned by a user (after a plan change). */
  invalidateUser(userId: string): Promise<void> {
    return this.#broadcast({ userId });
  }

  async #broadcast(message: Invalidation): Promise<void> {
    this.#evict(message);
    // Other processes fall back to the TTL if the message is lost.
    await this.options.pubsub?.publish(CHANNEL, JSON.stringify(message)).catch(() => {});
  }

  #evict(message: Invalidation): void {
    if ("endpoint" in message) {
      this.#byId.delete(message.endpoint.id);
      this.#bySlug.delete(message.endpoint.slug);
      return;
    }
    for (const map of [this.#bySlug, this.#byId]) {
      for (const [key, entry] of map) if (entry.snapshot?.userId === message.userId) map.delete(key);
    }
  }

  async #get(map: Map<string, Entry>, key: string, column: "slug" | "id"): Promise<EndpointSnapshot | null> {
    const now = this.options.clock.now();
    const cached = map.get(key);
    if (cached && cached.expiresAt > now) return cached.snapshot;
    const snapshot = await this.#load(column, key);
    if (map.size >= this.#maxEntries) {
      // Maps iterate in insertion order: drop the oldest tenth rather than grow without bound.
      let toDrop = Math.ceil(this.#maxEntries / 10);
      for (const oldest of map.keys()) {
        map.delete(oldest);
        if (--toDrop === 0) break;
      }
    }
    map.set(key, { snapshot, expiresAt: now + this.#ttlMs });
    return snapshot;
  }

  async #load(column: "slug" | "id", value: string): Promise<EndpointSnapshot | null> {
    const row = await this.options.storage.db
      .selectFrom("endpoints")
      .innerJoin("users", "users.id", "endpoints.user_id")
      .select([
        "endpoints.id",
        "endpoints.user_id",
        "endpoints.slug",
        "endpoints.name",
        "endpoints.target_url",
        "endpoints.signing_secret_sealed",
        "endpoints.is_paused",
        "users.plan",
        "users.trial_ends_at",
      ])
      .where(`endpoints.${column}`, "=", value)
      .executeTakeFirst();
    if (!row) return null;
    return {
      id: row.id,
      userId: row.user_id,
      slug: row.slug,
      name: row.name,
      targetUrl: row.target_url,
      signingSecret:
        row.signing_secret_sealed === null ? null : this.options.secretBox.open(row.signing_secret_sealed),
      paused: row.is_paused === 1,
      owner: { plan: row.plan, trial_ends_at: row.trial_ends_at },
    };
  }
}
