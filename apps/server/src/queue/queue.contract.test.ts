import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, testMode } from "../test-support/harness.js";
import type { JobOutcome } from "./queue.js";

/**
 * What every DeliveryQueue adapter must do, run against the adapter of the current test mode:
 * the embedded SQLite queue, or BullMQ on Redis (`npm run test:scale`).
 */
let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => h.close());

describe(`DeliveryQueue contract (${testMode})`, () => {
  it("hands each enqueued job to the handler once, then forgets it", async () => {
    const seen: string[] = [];
    await h.queue.enqueue([
      { logId: "log_a", endpointId: "ep_1", runAtMs: h.clock.now() },
      { logId: "log_b", endpointId: "ep_2", runAtMs: h.clock.now() },
    ]);
    expect(await h.queue.depth()).toBe(2);
    const ran = await h.queue.runOnce(async (job) => {
      seen.push(`${job.logId}@${job.endpointId}`);
      return { kind: "done" };
    });
    expect(ran).toBe(2);
    expect(seen.sort()).toEqual(["log_a@ep_1", "log_b@ep_2"]);
    expect(await h.queue.depth()).toBe(0);
    expect(await h.queue.runOnce(async () => ({ kind: "done" }))).toBe(0);
  });

  it("ignores a second enqueue of a job that is still pending (job id = log id)", async () => {
    const job = { logId: "log_dup", endpointId: "ep_1", runAtMs: h.clock.now() };
    await h.queue.enqueue([job]);
    await h.queue.enqueue([job]);
    let runs = 0;
    await h.queue.runOnce(async () => {
      runs++;
      return { kind: "done" };
    });
    expect(runs).toBe(1);
  });

  it("runs a delayed job only once the clock reaches it", async () => {
    await h.queue.enqueue([{ logId: "log_later", endpointId: "ep_1", runAtMs: h.clock.now() + 60_000 }]);
    const handler = async (): Promise<JobOutcome> => ({ kind: "done" });
    expect(await h.queue.runOnce(handler)).toBe(0);
    h.clock.advance(59_999);
    expect(await h.queue.runOnce(handler)).toBe(0);
    h.clock.advance(1);
    expect(await h.queue.runOnce(handler)).toBe(1);
  });

  it("reschedules a job whose handler asks for a retry, with the same id", async () => {
    await h.queue.enqueue([{ logId: "log_retry", endpointId: "ep_1", runAtMs: h.clock.now() }]);
    const runs: number[] = [];
    const handler = async (job: { logId: string }): Promise<JobOutcome> => {
      runs.push(h.clock.now());
      expect(job.logId).toBe("log_retry");
      return runs.length < 3 ? { kind: "retry", runAtMs: h.clock.now() + 5_000 } : { kind: "done" };
    };
    const t0 = h.clock.now();
    expect(await h.queue.runOnce(handler)).toBe(1);
    expect(await h.queue.depth()).toBe(1);
    h.clock.advance(4_000);
    expect(await h.queue.runOnce(handler)).toBe(0);
    h.clock.advance(1_000);
    expect(await h.queue.runOnce(handler)).toBe(1);
    h.clock.advance(5_000);
    expect(await h.queue.runOnce(handler)).toBe(1);
    expect(runs.map((t) => t - t0)).toEqual([0, 5_000, 10_000]);
    expect(await h.queue.depth()).toBe(0);
  });

  it("keeps a job whose handler throws and runs it again later", async () => {
    await h.queue.enqueue([{ logId: "log_boom", endpointId: "ep_1", runAtMs: h.clock.now() }]);
    let calls = 0;
    const handler = async (): Promise<JobOutcome> => {
      calls++;
      if (calls === 1) throw new Error("database unavailable");
      return { kind: "done" };
    };
    await h.queue.runOnce(handler);
    expect(await h.queue.depth()).toBe(1);
    h.clock.advance(30_000);
    await h.queue.runOnce(handler);
    expect(calls).toBe(2);
    expect(await h.queue.depth()).toBe(0);
  });

  it("reports ready while it can take work", () => {
    expect(h.queue.isReady()).toBe(true);
  });
});
