import { describe, expect, it } from "vitest";
import { effectivePlan, nextPeriodStartMs, usagePeriod } from "./plan-limits.js";

describe("plan limits", () => {
  it.each([
    [Date.UTC(2026, 10, 30, 23, 59, 59, 999), "2026-11"],
    [Date.UTC(2026, 11, 1), "2026-12"],
    [Date.UTC(2026, 11, 31, 23, 59, 59, 999), "2026-12"],
    [Date.UTC(2027, 0, 1), "2027-01"],
    [Date.UTC(2026, 10, 15), "2026-11"],
  ])("usage period of %d is %s (UTC calendar month, also when called out of order)", (ms, period) => {
    expect(usagePeriod(ms)).toBe(period);
  });

  it("the quota resets at the first millisecond of the next UTC month", () => {
    expect(nextPeriodStartMs(Date.UTC(2026, 11, 31, 12))).toBe(Date.UTC(2027, 0, 1));
  });

  it("a running trial gives Pro; afterwards the stored plan applies", () => {
    expect(effectivePlan({ plan: "free", trial_ends_at: 2_000 }, 1_000)).toBe("pro");
    expect(effectivePlan({ plan: "free", trial_ends_at: 2_000 }, 2_000)).toBe("free");
    expect(effectivePlan({ plan: "pro", trial_ends_at: null }, 0)).toBe("pro");
  });
});
