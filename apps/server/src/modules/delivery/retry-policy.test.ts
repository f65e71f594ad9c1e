import { describe, expect, it } from "vitest";
import { backoffDelayMs, nextAttemptDelayMs, parseRetryAfterMs } from "./retry-policy.js";

describe("retry policy", () => {
  it.each([
    [1, 5_000],
    [2, 10_000],
    [3, 20_000],
    [4, 40_000],
  ])("after attempt %i fails, waits %i ms (no jitter)", (failed, delay) => {
    expect(backoffDelayMs(failed, 0.5)).toBe(delay);
  });

  it("jitter stays within ±10 %", () => {
    expect(backoffDelayMs(1, 0)).toBe(4_500);
    expect(backoffDelayMs(1, 0.999_999)).toBe(5_500);
    expect(backoffDelayMs(4, 0)).toBe(36_000);
  });

  it.each([
    ["120", 120_000],
    ["0", 0],
    ["  7 ", 7_000],
    ["999999", 3_600_000],
    ["soon", null],
    ["-5", null],
    [undefined, null],
  ])("Retry-After %j → %j ms", (value, expected) => {
    expect(parseRetryAfterMs(value, 0)).toBe(expected);
  });

  it("Retry-After as an HTTP date", () => {
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    expect(parseRetryAfterMs("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
  });

  it("takes the later of backoff and Retry-After", () => {
    expect(nextAttemptDelayMs(1, 0.5, 1_000)).toBe(5_000);
    expect(nextAttemptDelayMs(1, 0.5, 60_000)).toBe(60_000);
    expect(nextAttemptDelayMs(2, 0.5, null)).toBe(10_000);
  });
});
