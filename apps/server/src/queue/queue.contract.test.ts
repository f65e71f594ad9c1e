import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, testMode } from "../test-support/harness.js";
import { pendingLogRow, recordOutcome } from "../test-support/pending-logs.js";
import type { JobOutcome } from "./queue.js";

/**
 * What every DeliveryQueue adapter must do, run against the adapter of the current test mode:
 * the embedded SQLite queue, or BullMQ on Redis (`npm run test:scale`).
 *
 * Jobs belong to logs, and a handler writes its outcome to the log before it returns, as the delivery
 * service does: the embedded queue has no job rows and reads what is pending from the logs themselves.
 */
let h: Harness;
let userId: string;
let endpoints: string[];
beforeEach(async () => {
  h = await createHarness();
  const user = await h.createUser();
  const target = { targetUrl: "http://127.0.0.1:9/" };
  endpoints = [
    (await h.createEndpoint(user.headers, { name: "one", ...target })).id,
    (await h.createEndpoint(user.headers, { name: "two", ...target })).id,
  ];
  userId = user.userId;
});
afterEach(async () => h.close());

/** A committed log still to be delivered, as ingest leaves it (before its job is enqueued). */
async function pendingLog(id: string, endpoint = 0): Promise<{ logId: string; endpointId: string }> {
  const endpointId = endpoints[endpoint]!;
  await h.db
    .insertInto("webhook_logs")
    .values(pendingLogRow({ id, userId, endpointId, now: h.clock.now() }))
    .execute();
  return { logId: id, endpointId };
}

const record = (logId: string, outcome: JobOutcome) => recordOutcome(h.db, logId, outcome);

describe(`DeliveryQueue contract (${testMode})`, () => {
  it("hands each enqueued job to the handler once, then forgets it", async () => {
    const seen: string[] = [];
    const a = await pendingLog("log_a", 0);
    const b = await pendingLog("log_b", 1);
    await h.queue.enqueue([a, b].map((job) => ({ ...job, runAtMs: h.clock.now() })));
    expect(await h.queue.depth()).toBe(2);
    const ran = await h.queue.runOnce(async (job) => {
      seen.push(`${job.logId}@${job.endpointId}`);
      return record(job.logId, { kind: "done" });
    });
    expect(ran).toBe(2);
    expect(seen.sort()).toEqual([`log_a@${endpoints[0]}`, `log_b@${endpoints[1]}`]);
    expect(await h.queue.depth()).toBe(0);
    expect(await h.queue.runOnce(async () => ({ kind: "done" }))).toBe(0);
  });

  it("ignores a second enqueue of a job that is still pending (job id = log id)", async () => {
    const job = { ...(await pendingLog("log_dup")), runAtMs: h.clock.now() };
    await h.queue.enqueue([job]);
    await h.queue.enqueue([job]);
    let runs = 0;
    await h.queue.runOnce(async ({ logId }) => {
      runs++;
      return record(logId, { kind: "done" });
    });
    expect(runs).toBe(1);
  });

  it("runs a delayed job only once the clock reaches it", async () => {
    await h.queue.enqueue([{ ...(await pendingLog("log_later")), runAtMs: h.clock.now() + 60_000 }]);
    const handler = async ({ logId }: { logId: string }) => record(logId, { kind: "done" });
    expect(await h.queue.runOnce(handler)).toBe(0);
    h.clock.advance(59_999);
    expect(await h.queue.runOnce(handler)).toBe(0);
    h.clock.advance(1);
    expect(await h.queue.runOnce(handler)).toBe(1);
  });

  it("reschedules a job whose handler asks for a retry, with the same id", async () => {
    await h.queue.enqueue([{ ...(await pendingLog("log_retry")), runAtMs: h.clock.now() }]);
    const runs: number[] = [];
    const handler = async (job: { logId: string }): Promise<JobOutcome> => {
      runs.push(h.clock.now());
      expect(job.logId).toBe("log_retry");
      return record(
        job.logId,
        runs.length < 3 ? { kind: "retry", runAtMs: h.clock.now() + 5_000 } : { kind: "done" },
      );
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
    await h.queue.enqueue([{ ...(await pendingLog("log_boom")), runAtMs: h.clock.now() }]);
    let calls = 0;
    const handler = async ({ logId }: { logId: string }): Promise<JobOutcome> => {
      calls++;
      if (calls === 1) throw new Error("database unavailable");
      return record(logId, { kind: "done" });
    };
    await h.queue.runOnce(handler);
    expect(await h.queue.depth()).toBe(1);
    h.clock.advance(29_999);
    await h.queue.runOnce(handler);
    expect(calls).toBe(1);
    h.clock.advance(1);
    await h.queue.runOnce(handler);
    expect(calls).toBe(2);
    expect(await h.queue.depth()).toBe(0);
  });

  it("reports ready while it can take work", () => {
    expect(h.queue.isReady()).toBe(true);
  });
});
