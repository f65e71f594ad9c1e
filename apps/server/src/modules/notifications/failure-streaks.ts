import type { Redis } from "ioredis";

/**
 * Consecutive delivery failures per endpoint. A streak is forgotten after `idleResetMs` without events,
 * judged by the caller's clock, so tests can move time. Embedded: memory (one process). Scale: Redis, so
 * failures seen by different workers add up.
 */
export interface FailureStreaks {
  /** Adds a failure and returns the streak length. */
  increment(key: string, nowMs: number, idleResetMs: number): Promise<number>;
  reset(key: string): Promise<void>;
  /** false when this key certainly has no streak (a success then needs no reset). */
  mayHaveStreak(key: string): boolean;
}

export class MemoryFailureStreaks implements FailureStreaks {
  readonly #streaks = new Map<string, { count: number; lastAt: number }>();

  async increment(key: string, nowMs: number, idleResetMs: number): Promise<number> {
    const streak = this.#streaks.get(key);
    const count = streak && nowMs - streak.lastAt < idleResetMs ? streak.count + 1 : 1;
    this.#streaks.set(key, { count, lastAt: nowMs });
    return count;
  }

  async reset(key: string): Promise<void> {
    this.#streaks.delete(key);
  }

  mayHaveStreak(key: string): boolean {
    return this.#streaks.has(key);
  }
}

const INCREMENT = `
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local now = tonumber(ARGV[1])
if now - last >= tonumber(ARGV[2]) then count = 0 end
count = count + 1
redis.call('HSET', KEYS[1], 'count', count, 'last', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return count
`;

export class RedisFailureStreaks implements FailureStreaks {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    if (!("mitteStreak" in redis)) redis.defineCommand("mitteStreak", { numberOfKeys: 1, lua: INCREMENT });
  }

  async increment(key: string, nowMs: number, idleResetMs: number): Promise<number> {
    const command = (
      this.redis as unknown as { mitteStreak: (key: string, now: number, idle: number) => Promise<number> }
    ).mitteStreak;
    return command.call(this.redis, `${this.prefix}:streak:${key}`, nowMs, idleResetMs);
  }

  async reset(key: string): Promise<void> {
    await this.redis.del(`${this.prefix}:streak:${key}`);
  }

  /** Another worker may have counted failures: only Redis knows. */
  mayHaveStreak(): boolean {
    return true;
  }
}
