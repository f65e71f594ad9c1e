import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../lib/clock.js";
import { openSqliteStorage } from "../../storage/sqlite/sqlite-storage.js";
import { migrateToLatest, type Storage } from "../../storage/storage.js";
import type { JobOutcome } from "../queue.js";
import { EmbeddedDeliveryQueue } from "./embedded-queue.js";

/**
 * The embedded queue's background consumer with real time (the contract suite drives queues with
 * runOnce): claims are per endpoint, so a backlog behind a hung endpoint does not hold up the others.
 */
let storage: Storage;
let queue: EmbeddedDeliveryQueue;
const release: (() => void)[] = [];

async function start(options: { groupConcurrency: number }) {
  storage = openSqliteStorage({ filename: ":memory:" });
  await migrateToLatest(storage);
  queue = new EmbeddedDeliveryQueue({
    db: storage.db,
    storage,
    clock: systemClock,
    logger: pino({ level: "silent" }),
    concurrency: 32,
    groupConcurrency: options.groupConcurrency,
    leaseMs: 60_000,
    pollIntervalMs: 50,
  });
}

afterEach(async () => {
  for (const done of release.splice(0)) done();
  await queue.close(1_000);
  await storage.close();
});

const jobs = (endpointId: string, count: number, prefix = endpointId) =>
  Array.from({ length: count }, (_, i) => ({
    logId: `log_${prefix}_${String(i).padStart(4, "0")}`,
    endpointId,
    runAtMs: Date.now(),
  }));

describe("EmbeddedDeliveryQueue consumer", () => {
  it("keeps delivering to healthy endpoints while a hung one has a backlog", async () => {
    await start({ groupConcurrency: 4 });
    const started: Record<string, number> = {};
    const finishedAt = new Map<string, number>();
    await queue.startConsumer(async (job): Promise<JobOutcome> => {
      started[job.endpointId] = (started[job.endpointId] ?? 0) + 1;
      if (job.endpointId === "ep_hung") await new Promise<void>((done) => release.push(done));
      finishedAt.set(job.logId, Date.now());
      return { kind: "done" };
    });
    await queue.enqueue(jobs("ep_hung", 500));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sentAt = Date.now();
    await queue.enqueue([...jobs("ep_a", 20), ...jobs("ep_b", 20)]);
    const deadline = Date.now() + 5_000;
    while (finishedAt.size < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(finishedAt.size).toBe(40);
    expect(Math.max(...finishedAt.values()) - sentAt).toBeLessThan(1_000);
    // The hung endpoint holds exactly its own slots, never more.
    expect(started.ep_hung).toBe(4);
  });

  it("finds jobs it was not told about (left by an earlier process) when it starts", async () => {
    await start({ groupConcurrency: 4 });
    const seen: string[] = [];
    // Rows written straight into the table, as a crashed process leaves them.
    await storage.executeBatch(queue.stage(jobs("ep_left", 3)));
    await queue.startConsumer(async (job) => {
      seen.push(job.logId);
      return { kind: "done" };
    });
    const deadline = Date.now() + 3_000;
    while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(seen.sort()).toEqual(["log_ep_left_0000", "log_ep_left_0001", "log_ep_left_0002"]);
  });

  it("runs a retry when it comes due, also when the endpoint has nothing else queued", async () => {
    await start({ groupConcurrency: 4 });
    const runs: number[] = [];
    await queue.startConsumer(async () => {
      runs.push(Date.now());
      return runs.length === 1 ? { kind: "retry", runAtMs: Date.now() + 300 } : { kind: "done" };
    });
    await queue.enqueue(jobs("ep_retry", 1));
    const deadline = Date.now() + 3_000;
    while (runs.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(runs).toHaveLength(2);
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(300);
    expect(await queue.depth()).toBe(0);
  });
});
