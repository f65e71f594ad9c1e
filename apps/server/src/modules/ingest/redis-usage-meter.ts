import type { Redis } from "ioredis";
import type { Storage } from "../../storage/storage.js";
import { storedUsage, type UsageMeter } from "./usage-meter.js";

/**
 * Reserve up to ARGV[2] units under the limit ARGV[1]; -1 when the counter is not in Redis yet (seed it
 * from the database). Blocks are handed out only while the quota is far from spent; close to the limit
 * every request reserves its own unit, so no process holds units another one would need.
 */
const RESERVE = `
local value = redis.call('GET', KEYS[1])
if not value then return -1 end
local remaining = tonumber(ARGV[1]) - tonumber(value)
if remaining <= 0 then return 0 end
local take = 1
if remaining > tonumber(ARGV[2]) * ${50} then take = tonumber(ARGV[2]) end
redis.call('INCRBY', KEYS[1], take)
return take
`;

const CURRENT_CACHE_MS = 1_000;

/** Counters live ~40 days: a month plus slack, then Redis forgets them. */
const COUNTER_TTL_SECONDS = 40 * 24 * 3600;

/** Units an api process reserves at once: 100 for Pro's 250,000 a month, 2 for Free's 5,000. */
export function leaseUnits(limit: number): number {
  return Math.max(1, Math.min(100, Math.floor(limit / 2_500)));
}

/** Units of a block not used within this long go back to Redis. */
const LEASE_TTL_MS = 10_000;

interface Lease {
  left: number;
  atMs: number;
  /** A block being reserved: concurrent requests wait for it instead of asking for their own. */
  refill: Promise<number> | null;
}

/** A block's units not spent within the lease's lifetime go back to Redis. */
function expired(lease: Lease): boolean {
  return performance.now() - lease.atMs >= LEASE_TTL_MS;
}

type ReserveCommand = (key: string, limit: number, units: number) => Promise<number>;

/**
 * Monthly usage shared by every api process. The database row (advanced in the ingest transaction) is
 * the durable count; Redis holds the live count used for the check, seeded from the database when
 * missing (first use, or Redis lost its data).
 *
 * Each api process reserves units in blocks (`leaseUnits`) and spends them locally: one Redis script
 * per block instead of per webhook, which was a Redis round trip on every request's path. Units not
 * spent within 10 s, and those held at shutdown, are given back; a process that crashes loses its
 * block's unspent units (at most 100 counted but never used, 0.04 % of a Pro month).
 */
export class RedisUsageMeter implements UsageMeter {
  /**
   * `current` only serves the early check before a body is read; the reservation in `tryReserve` is exact.
   * Caching it for a second saves a Redis round trip per request.
   */
  readonly #recent = new Map<string, { count: number; atMs: number }>();
  readonly #leases = new Map<string, Lease>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(
    private readonly redis: Redis,
    private readonly storage: Storage,
    private readonly keyPrefix: string,
  ) {
    if (!("mitteUsageReserveBlock" in redis))
      redis.defineCommand("mitteUsageReserveBlock", { numberOfKeys: 1, lua: RESERVE });
    this.#sweeper = setInterval(() => this.#returnExpired(), LEASE_TTL_MS);
    this.#sweeper.unref();
  }

  async tryReserve(userId: string, period: string, limit: number): Promise<boolean> {
    const key = this.#key(userId, period);
    if (this.#spend(key)) return true;
    const pending = this.#leases.get(key)?.refill;
    if (pending) {
      await pending.catch(() => 0);
      if (this.#spend(key)) return true;
    }
    const units = leaseUnits(limit);
    if (units === 1) return (await this.#reserve(key, userId, period, limit, 1)) > 0;
    const lease = this.#lease(key);
    const refill = this.#reserve(key, userId, period, limit, units);
    lease.refill = refill;
    let granted: number;
    try {
      granted = await refill;
    } finally {
      if (lease.refill === refill) lease.refill = null;
    }
    if (granted === 0) return false;
    // This request takes one unit; the rest serve the next ones.
    lease.left += granted - 1;
    return true;
  }

  release(userId: string, period: string): void {
    const key = this.#key(userId, period);
    const lease = this.#leases.get(key);
    if (lease && !expired(lease)) lease.left++;
    else this.redis.decr(key).catch(() => {});
  }

  async current(userId: string, period: string): Promise<number> {
    const key = this.#key(userId, period);
    const cached = this.#recent.get(key);
    if (cached && performance.now() - cached.atMs < CURRENT_CACHE_MS) return cached.count;
    const value = await this.redis.get(key);
    // Units this process holds are counted in Redis but not used yet.
    const held = this.#leases.get(key)?.left ?? 0;
    const count = (value !== null ? Number(value) : await this.#seed(userId, period)) - held;
    if (this.#recent.size > 10_000) this.#recent.clear();
    this.#recent.set(key, { count, atMs: performance.now() });
    return count;
  }

  /** Gives back every unit this process holds (shutdown). */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    const returns = [...this.#leases].map(([key, lease]) => this.#giveBack(key, lease));
    this.#leases.clear();
    await Promise.all(returns);
  }

  #spend(key: string): boolean {
    const lease = this.#leases.get(key);
    if (!lease || lease.left === 0) return false;
    if (expired(lease)) {
      this.#drop(key, lease);
      return false;
    }
    lease.left--;
    return true;
  }

  #lease(key: string): Lease {
    let lease = this.#leases.get(key);
    if (!lease) {
      lease = { left: 0, atMs: performance.now(), refill: null };
      this.#leases.set(key, lease);
    } else if (lease.left === 0) lease.atMs = performance.now();
    return lease;
  }

  #returnExpired(): void {
    for (const [key, lease] of this.#leases) if (!lease.refill && expired(lease)) this.#drop(key, lease);
  }

  #drop(key: string, lease: Lease): void {
    this.#leases.delete(key);
    void this.#giveBack(key, lease);
  }

  async #giveBack(key: string, lease: Lease): Promise<void> {
    const units = lease.left;
    lease.left = 0;
    if (units > 0) await this.redis.decrby(key, units).catch(() => {});
  }

  async #reserve(key: string, userId: string, period: string, limit: number, units: number): Promise<number> {
    const reserve = (this.redis as unknown as { mitteUsageReserveBlock: ReserveCommand })
      .mitteUsageReserveBlock;
    let result = await reserve.call(this.redis, key, limit, units);
    if (result === -1) {
      await this.#seed(userId, period);
      result = await reserve.call(this.redis, key, limit, units);
    }
    return Math.max(0, result);
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
