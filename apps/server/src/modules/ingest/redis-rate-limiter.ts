import type { Redis } from "ioredis";
import type { RateLimitDecision, RateLimiter } from "./rate-limiter.js";

/**
 * The sliding-window counter of MemoryRateLimiter, in one Lua script so a limit holds across any number of
 * api processes. Returns {allowed, remaining, retryAfterMs}. Time comes from the caller's clock (the block
 * key stores its end); Redis expiry only collects the keys afterwards.
 */
const SCRIPT = `
local block_key = KEYS[1]
local current_key = KEYS[2]
local previous_key = KEYS[3]
local limit = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local block_ms = tonumber(ARGV[3])
local elapsed = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local blocked_until = tonumber(redis.call('GET', block_key) or '0')
if blocked_until > now then return {0, 0, blocked_until - now} end
local current = tonumber(redis.call('GET', current_key) or '0')
local previous = tonumber(redis.call('GET', previous_key) or '0')
local estimate = previous * (1 - elapsed / window_ms) + current
if estimate + 1 > limit then
  if block_ms > 0 then redis.call('SET', block_key, now + block_ms, 'PX', block_ms + window_ms) end
  return {0, 0, block_ms}
end
redis.call('INCR', current_key)
redis.call('PEXPIRE', current_key, window_ms * 2)
return {1, math.floor(limit - estimate - 1), 0}
`;

export class RedisRateLimiter implements RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    private readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly blockMs = 120_000,
  ) {
    if (!("mitteRateLimit" in redis)) redis.defineCommand("mitteRateLimit", { numberOfKeys: 3, lua: SCRIPT });
  }

  async hit(key: string, nowMs: number): Promise<RateLimitDecision> {
    const windowStart = nowMs - (nowMs % this.windowMs);
    const base = `${this.keyPrefix}:${key}`;
    const [allowed, remaining, retryAfterMs] = (await (
      this.redis as unknown as { mitteRateLimit: (...args: (string | number)[]) => Promise<number[]> }
    ).mitteRateLimit(
      `${base}:block`,
      `${base}:${windowStart}`,
      `${base}:${windowStart - this.windowMs}`,
      this.limit,
      this.windowMs,
      this.blockMs,
      nowMs - windowStart,
      nowMs,
    )) as [number, number, number];
    const resetSeconds = Math.ceil((windowStart + this.windowMs) / 1000);
    if (allowed === 1) return { allowed: true, limit: this.limit, remaining, resetSeconds };
    return {
      allowed: false,
      limit: this.limit,
      remaining: 0,
      resetSeconds,
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    };
  }
}
