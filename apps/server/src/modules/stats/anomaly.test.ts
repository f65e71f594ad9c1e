import { describe, expect, it } from "vitest";
import { evaluateAnomaly, type HourCounts } from "./anomaly.js";

const hours = (count: number, requests: number, failures: number): HourCounts[] =>
  Array.from({ length: count }, () => ({ requests, failures }));

describe("evaluateAnomaly", () => {
  it.each([
    // label, history, current, fire, reason
    [
      "steady 5 % failures, spike to 50 %",
      hours(48, 100, 5),
      { requests: 100, failures: 50 },
      true,
      "z_score",
    ],
    ["steady 5 %, current 6 %", hours(48, 100, 5), { requests: 100, failures: 6 }, false, "normal"],
    [
      "zero variance at 0 %, one failure in 100",
      hours(48, 100, 0),
      { requests: 100, failures: 1 },
      false,
      "normal",
    ],
    [
      "zero variance at 0 %, 20 % failures",
      hours(48, 100, 0),
      { requests: 100, failures: 20 },
      true,
      "z_score",
    ],
    [
      "noisy history, 85 % with 10 requests",
      [...hours(24, 10, 0), ...hours(24, 10, 9)],
      { requests: 10, failures: 9 },
      true,
      "failure_rate",
    ],
    [
      "noisy history, 90 % with only 9 requests",
      [...hours(24, 10, 0), ...hours(24, 10, 9)],
      { requests: 9, failures: 9 },
      false,
      "normal",
    ],
    ["exactly 6 hours of history", hours(6, 50, 1), { requests: 50, failures: 40 }, true, "z_score"],
    [
      "5 hours of history never fires",
      hours(5, 50, 0),
      { requests: 50, failures: 50 },
      false,
      "not_enough_history",
    ],
    [
      "sparse: 42 empty hours and 6 busy ones",
      [...hours(42, 0, 0), ...hours(6, 20, 1)],
      { requests: 20, failures: 15 },
      true,
      "z_score",
    ],
    [
      "sparse: 44 empty hours and 4 busy ones",
      [...hours(44, 0, 0), ...hours(4, 20, 1)],
      { requests: 20, failures: 20 },
      false,
      "not_enough_history",
    ],
    ["no requests this hour", hours(48, 100, 5), { requests: 0, failures: 0 }, false, "no_requests"],
  ] as const)("%s", (_label, history, current, fire, reason) => {
    const verdict = evaluateAnomaly(history, current);
    expect(verdict.fire).toBe(fire);
    expect(verdict.reason).toBe(reason);
  });

  it("reports the z-score the documented example would show", () => {
    const history = [...hours(24, 100, 10), ...hours(24, 100, 30)]; // mean 20 %, σ 10 %
    const verdict = evaluateAnomaly(history, { requests: 100, failures: 52 });
    expect(verdict.zScore).toBeCloseTo(3.2, 5);
    expect(verdict.fire).toBe(true);
  });
});
