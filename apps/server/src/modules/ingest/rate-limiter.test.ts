import { describe, expect, it } from "vitest";
import { MemoryRateLimiter, moreRestrictive } from "./rate-limiter.js";

const WINDOW = 60_000;

describe("sliding-window rate limiter", () => {
  it("allows the limit within a window, then blocks for the block duration", () => {
    const limiter = new MemoryRateLimiter(3, WINDOW, 120_000);
    const t = 10 * WINDOW;
    expect([1, 2, 3].map(() => limiter.hit("k", t).remaining)).toEqual([2, 1, 0]);
    const refused = limiter.hit("k", t + 1);
    expect(refused).toMatchObject({ allowed: false, retryAfterSeconds: 120 });
    expect(limiter.hit("k", t + 60_000)).toMatchObject({ allowed: false, retryAfterSeconds: 61 });
    expect(limiter.hit("k", t + 120_001).allowed).toBe(true);
  });

  it("weights the previous window (sliding, not fixed)", () => {
    const limiter = new MemoryRateLimiter(10, WINDOW, 0);
    const start = 100 * WINDOW;
    for (let i = 0; i < 10; i++) expect(limiter.hit("k", start + WINDOW - 10).allowed).toBe(true);
    // A quarter into the next window, 75 % of the previous 10 still count: only 2 more fit.
    const quarter = start + WINDOW + WINDOW / 4;
    expect(limiter.hit("k", quarter).allowed).toBe(true);
    expect(limiter.hit("k", quarter).allowed).toBe(true);
    expect(limiter.hit("k", quarter).allowed).toBe(false);
    // Two windows later nothing of the burst remains.
    expect(limiter.hit("k", start + 3 * WINDOW).remaining).toBe(9);
  });

  it("keeps keys apart and reports the window reset in Unix seconds", () => {
    const limiter = new MemoryRateLimiter(1, WINDOW, 1_000);
    expect(limiter.hit("a", 90_000)).toEqual({ allowed: true, limit: 1, remaining: 0, resetSeconds: 120 });
    expect(limiter.hit("b", 90_000).allowed).toBe(true);
    expect(limiter.hit("a", 90_001).allowed).toBe(false);
  });

  it("the more restrictive decision fills the headers", () => {
    const a = { allowed: true, limit: 100, remaining: 50, resetSeconds: 1 };
    const b = { allowed: true, limit: 200, remaining: 20, resetSeconds: 2 };
    expect(moreRestrictive(a, b)).toBe(b);
    expect(moreRestrictive(null, a)).toBe(a);
    expect(moreRestrictive(null, null)).toBeNull();
  });
});
