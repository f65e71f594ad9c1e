import { describe, expect, it } from "vitest";
import { ManualClock } from "./clock.js";
import { createIdGenerator, pooledRandom } from "./ids.js";

describe("ids", () => {
  it("pooledRandom stays in [0, 1) and spreads over the ULID alphabet", () => {
    const random = pooledRandom();
    const seen = new Set<number>();
    for (let i = 0; i < 5_000; i += 1) {
      const value = random();
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThan(1);
      seen.add(Math.floor(value * 32));
    }
    expect(seen.size).toBe(32);
  });

  it("makes prefixed, unique ids that sort by creation within and across milliseconds", () => {
    const clock = new ManualClock(1_764_000_000_000);
    const newId = createIdGenerator(clock);
    const ids: string[] = [];
    for (let i = 0; i < 3_000; i += 1) {
      if (i % 1_000 === 0) clock.advance(1);
      ids.push(newId("log"));
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0]).toMatch(/^log_[0-9a-hjkmnp-tv-z]{26}$/);
  });
});
