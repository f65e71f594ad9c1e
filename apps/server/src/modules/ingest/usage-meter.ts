import type { Storage } from "../../storage/storage.js";

/**
 * Monthly request counts per user, for the quota. The embedded adapter keeps an exact count in memory
 * (one process ingests), seeded from the database; the persisted count is advanced in the same
 * transaction as the logs, so after a restart memory and disk agree.
 */
export interface UsageMeter {
  /** Reserves one request if the user is under `limit`; false means the quota is spent. */
  tryReserve(userId: string, period: string, limit: number): Promise<boolean> | boolean;
  /** Gives back a reservation whose request was not stored. */
  release(userId: string, period: string): void;
  current(userId: string, period: string): Promise<number>;
  /** Gives back what the meter holds beyond the requests it counted (scale mode's reserved blocks). */
  close?(): Promise<void>;
}

export class EmbeddedUsageMeter implements UsageMeter {
  readonly #counts = new Map<string, number>();
  /** One database read per key, however many requests arrive before it returns. */
  readonly #loading = new Map<string, Promise<void>>();

  constructor(private readonly storage: Storage) {}

  tryReserve(userId: string, period: string, limit: number): Promise<boolean> | boolean {
    const key = `${userId}:${period}`;
    const known = this.#counts.get(key);
    if (known === undefined) {
      return this.#load(userId, period).then(() => this.tryReserve(userId, period, limit) as boolean);
    }
    if (known >= limit) return false;
    this.#counts.set(key, known + 1);
    return true;
  }

  release(userId: string, period: string): void {
    const key = `${userId}:${period}`;
    const known = this.#counts.get(key);
    if (known !== undefined && known > 0) this.#counts.set(key, known - 1);
  }

  async current(userId: string, period: string): Promise<number> {
    const key = `${userId}:${period}`;
    if (!this.#counts.has(key)) await this.#load(userId, period);
    return this.#counts.get(key) ?? 0;
  }

  #load(userId: string, period: string): Promise<void> {
    const key = `${userId}:${period}`;
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = this.#read(userId, period).finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    return loading;
  }

  async #read(userId: string, period: string): Promise<void> {
    const count = await storedUsage(this.storage, userId, period);
    const key = `${userId}:${period}`;
    // Another reservation may have loaded it while we awaited.
    if (!this.#counts.has(key)) this.#counts.set(key, count);
  }
}

/** The durable monthly count, advanced in the same transaction as the logs it counts. */
export async function storedUsage(storage: Storage, userId: string, period: string): Promise<number> {
  const row = await storage.db
    .selectFrom("usage_counters")
    .select("request_count")
    .where("user_id", "=", userId)
    .where("period", "=", period)
    .executeTakeFirst();
  return Number(row?.request_count ?? 0);
}
