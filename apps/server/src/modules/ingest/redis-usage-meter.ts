import type { Redis } from "ioredis";
import type { Storage } from "../../storage/storage.js";
import { storedUsage, type UsageMeter } from "./usage-meter.js";

/** Reserve one unit if under the limit; -1 when the counter is not in Redis yet (seed it from the database). */
const RESERVE = `
local value = redis.call('GET', KEYS[1])
if not value then return -1 end
if tonumber(value) >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
return 1
`;

const CURRENT_CACHE_MS = 1_000;

/** Counters live ~40 days: a month plus slack, then Redis forgets them. */
const COUNTER_TTL_SECONDS = 40 * 24 * 3600;

/**
 * Monthly usage shared by every api process. The database row (advanced in the ingest transaction) is
 * the durable count; Redis holds the live count used for the check, seeded from the database when
 * missing (first use, or Redis lost its data).
 */
export class RedisUsageMeter implements UsageMeter {
  /**
   * `current` only serves the early check before a body is read; the reservation in `tryReserve` is exact.
   * Caching it for a second saves a Redis round trip per request.
   */
  readonly #recent = new Map<string, { count: number; atMs: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly storage: Storage,
    private readonly keyPrefix: string,
  ) {
    if (!("mitteUsageReserve" in redis))
      redis.defineCommand("mitteUsageReserve", { numberOfKeys: 1, lua: RESERVE });
  }

  async tryReserve(userId: string, period: string, limit: number): Promise<boolean> {
    const key = this.#key(userId, period);
    const reserve = (
      this.redis as unknown as { mitteUsageReserve: (key: string, limit: number) => Promise<number> }
    ).mitteUsageReserve;
    let result = await reserve.call(this.redis, key, limit);
    if (result === -1) {
      await this.#seed(userId, period);
      result = await reserve.call(this.redis, key, limit);
    }
    return result === 1;
  }

  release(userId: string, period: string): void {
    this.redis.decr(this.#key(userId, period)).catch(() => {});
  }

  async current(userId: string, period: string): Promise<number> {
    const key = this.#key(userId, period);
    const cached = this.#recent.get(key);
    if (cached && performance.now() - cached.atMs < CURRENT_CACHE_MS) return cached.count;
    const value = await this.redis.get(key);
    const count = value !== null ? Number(value) : await this.#seed(userId, period);
    if (this.#recent.size > 10_000) this.#recent.clear();
    this.#recent.set(key, { count, atMs: performance.now() });
    return count;
  }

  async #seed(userId: string, period: string): Promise<number> {
    const count = await storedUsage(this.storage, userId, period);
    // NX: another process may have seeded (and counted on) it meanwhile.
    await this.redis.set(this.#key(userId, period), count, "EX", COUNTER_TTL_SECONDS, "NX");
    return Number((await this.redis.get(this.#key(userId, period))) ?? count);
  }

  #key(userId: string, period: string): string {
    return `${this.keyPrefix}:usage:${userId}:${period}`;
  }
}
