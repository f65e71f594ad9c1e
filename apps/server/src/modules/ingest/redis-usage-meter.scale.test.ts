import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { testRedisUrl } from "../../test-support/test-storage.js";
import { leaseUnits, RedisUsageMeter } from "./redis-usage-meter.js";

/** Scale mode only: the meter's blocks are reserved in the Redis the api processes share. */
let h: Harness;
let redis: Redis;
const prefix = `mitte-test-usage-${randomBytes(4).toString("hex")}`;
const period = "2026-11";
const key = (userId: string) => `${prefix}:usage:${userId}:${period}`;

beforeEach(async () => {
  h = await createHarness();
  redis = new Redis(testRedisUrl!);
});
afterEach(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  await h.close();
});

describe("RedisUsageMeter (blocks of units per api process)", () => {
  it("two api processes never accept more than the limit between them, and every unit is accounted for", async () => {
    const limit = 250_000;
    await redis.set(key("usr_a"), limit - 6_000);
    const apis = [
      new RedisUsageMeter(redis, h.deps.storage, prefix),
      new RedisUsageMeter(redis, h.deps.storage, prefix),
    ];
    let accepted = 0;
    // Far from the limit both reserve blocks; the last 5,000 units go one by one.
    for (let round = 0; round < 3_100; round++) {
      const results = await Promise.all(apis.map((api) => api.tryReserve("usr_a", period, limit)));
      accepted += results.filter(Boolean).length;
    }
    expect(accepted).toBe(6_000);
    expect(Number(await redis.get(key("usr_a")))).toBe(limit);
    expect(await apis[0]!.tryReserve("usr_a", period, limit)).toBe(false);
    for (const api of apis) await api.close();
    expect(Number(await redis.get(key("usr_a")))).toBe(limit);
  });

  it("gives back the units it holds at close, and a released unit serves the next request", async () => {
    const limit = 250_000;
    const api = new RedisUsageMeter(redis, h.deps.storage, prefix);
    expect(await api.tryReserve("usr_b", period, limit)).toBe(true);
    // Seeded from the database (0), then one block reserved in Redis.
    expect(Number(await redis.get(key("usr_b")))).toBe(leaseUnits(limit));
    expect(await api.current("usr_b", period)).toBe(1);
    api.release("usr_b", period);
    for (let i = 0; i < leaseUnits(limit); i++)
      expect(await api.tryReserve("usr_b", period, limit)).toBe(true);
    expect(Number(await redis.get(key("usr_b")))).toBe(leaseUnits(limit));
    await api.close();
    expect(Number(await redis.get(key("usr_b")))).toBe(leaseUnits(limit));
  });

  it("concurrent requests share one block instead of each reserving one", async () => {
    const limit = 250_000;
    const api = new RedisUsageMeter(redis, h.deps.storage, prefix);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => api.tryReserve("usr_c", period, limit)),
    );
    expect(results.every(Boolean)).toBe(true);
    expect(Number(await redis.get(key("usr_c")))).toBe(leaseUnits(limit));
    await api.close();
    expect(Number(await redis.get(key("usr_c")))).toBe(50);
  });
});
