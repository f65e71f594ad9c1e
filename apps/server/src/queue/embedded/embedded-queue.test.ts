import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../../lib/clock.js";
import { openSqliteStorage } from "../../storage/sqlite/sqlite-storage.js";
import { migrateToLatest, type Storage } from "../../storage/storage.js";
import { pendingLogRow, recordOutcome } from "../../test-support/pending-logs.js";
import type { JobOutcome } from "../queue.js";
import { EmbeddedDeliveryQueue } from "./embedded-queue.js";

/**
 * The embedded queue's background consumer with real time (the contract suite drives queues with
 * runOnce): claims are per endpoint, so a backlog behind a hung endpoint does not hold up the others.
 * Its jobs are the pending logs themselves; these tests write log rows as ingest would and finish them as
 * the delivery recorder would.
 */
let storage: Storage;
let queue: EmbeddedDeliveryQueue;
const release: (() => void)[] = [];

async function start(options: { groupConcurrency: number }) {
  storage = openSqliteStorage({ filename: ":memory:" });
  await migrateToLatest(storage);
  const now = Date.now();
  await storage.db
    .insertInto("users")
    .values({
      id: "usr_1",
      email: "q@example.com",
      name: null,
      plan: "pro",
      trial_ends_at: null,
      created_at: now,
      updated_at: now,
      password_hash: null,
      email_verified_at: null,
      avatar_url: null,
    })
    .execute();
  queue = queueOn(storage, options.groupConcurrency);
}

/** A queue over `db` as the tests run it: 32 slots, `groupConcurrency` per endpoint, polling every 50 ms. */
function queueOn(db: Storage, groupConcurrency: number): EmbeddedDeliveryQueue {
  return new EmbeddedDeliveryQueue({
    db: db.db,
    storage: db,
    clock: systemClock,
    logger: pino({ level: "silent" }),
    concurrency: 32,
    groupConcurrency,
    pollIntervalMs: 50,
  });
}

afterEach(async () => {
  for (const done of release.splice(0)) done();
  await queue.close(1_000);
  await storage.close();
});

/** Committed logs of a (new) endpoint, due now, as ingest leaves them; returns their jobs. */
async function pendingLogs(
  endpointId: string,
  count: number,
  options: { paused?: boolean; committed?: boolean } = {},
) {
  const now = Date.now();
  const { db } = storage;
  await db
    .insertInto("endpoints")
    .values({
      id: endpointId,
      user_id: "usr_1",
      name: endpointId,
      slug: `mt_${endpointId}`,
      target_url: "http://127.0.0.1:9/",
      signing_secret_sealed: null,
      is_paused: options.paused ? 1 : 0,
      created_at: now,
      updated_at: now,
    })
    .onConflict((oc) => oc.column("id").doNothing())
    .execute();
  const ids = Array.from({ length: count }, (_, i) => `log_${endpointId}_${String(i).padStart(4, "0")}`);
  const rows = ids.map((id) => pendingLogRow({ id, userId: "usr_1", endpointId, now }));
  if (options.committed !== false) await db.insertInto("webhook_logs").values(rows).execute();
  return rows.map((log) => ({ logId: log.id, endpointId, runAtMs: now, log }));
}

const record = (logId: string, outcome: JobOutcome) => recordOutcome(storage.db, logId, outcome);

async function waitFor(condition: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("EmbeddedDeliveryQueue consumer", () => {
  it("keeps delivering to healthy endpoints while a hung one has a backlog", async () => {
    await start({ groupConcurrency: 4 });
    const started: Record<string, number> = {};
    const finishedAt = new Map<string, number>();
    await queue.startConsumer(async (job): Promise<JobOutcome> => {
      started[job.endpointId] = (started[job.endpointId] ?? 0) + 1;
      if (job.endpointId === "ep_hung") await new Promise<void>((done) => release.push(done));
      finishedAt.set(job.logId, Date.now());
      return record(job.logId, { kind: "done" });
    });
    await queue.enqueue(await pendingLogs("ep_hung", 500));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const sentAt = Date.now();
    const healthy = [...(await pendingLogs("ep_a", 20)), ...(await pendingLogs("ep_b", 20))];
    await queue.afterCommit(healthy);
    await waitFor(() => finishedAt.size === 40, 5_000);
    expect(finishedAt.size).toBe(40);
    expect(Math.max(...finishedAt.values()) - sentAt).toBeLessThan(1_000);
    // The hung endpoint holds exactly its own slots, never more, and its running logs are not claimed
    // twice although they are still pending in the table.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(started.ep_hung).toBe(4);
  });

  it("does not let hung endpoints hold every slot: a job running past parkAfterMs stops counting", async () => {
    await start({ groupConcurrency: 2 });
    await queue.close(0);
    // 4 slots, 2 per endpoint: two hung endpoints alone would fill the process.
    queue = new EmbeddedDeliveryQueue({
      db: storage.db,
      storage,
      clock: systemClock,
      logger: pino({ level: "silent" }),
      concurrency: 4,
      groupConcurrency: 2,
      pollIntervalMs: 50,
      parkAfterMs: 100,
    });
    const started: Record<string, number> = {};
    const finished: string[] = [];
    await queue.startConsumer(async (job): Promise<JobOutcome> => {
      started[job.endpointId] = (started[job.endpointId] ?? 0) + 1;
      if (job.endpointId.startsWith("ep_hung")) await new Promise<void>((done) => release.push(done));
      finished.push(job.logId);
      return record(job.logId, { kind: "done" });
    });
    const hung = Array.from({ length: 10 }, (_, i) => `ep_hung${i}`);
    await queue.enqueue((await Promise.all(hung.slice(0, 2).map((id) => pendingLogs(id, 5)))).flat());
    await waitFor(() => Object.values(started).reduce((sum, n) => sum + n, 0) === 4);
    const fast = await pendingLogs("ep_fast", 3);
    await queue.afterCommit(fast);
    await waitFor(() => finished.length === 3);
    expect(finished.sort()).toEqual(fast.map((job) => job.logId));
    // Each hung endpoint still holds only its own 2 slots.
    expect([started.ep_hung0, started.ep_hung1]).toEqual([2, 2]);

    // Parked jobs are bounded too: at most 4 × 4 in flight, however many endpoints hang.
    await queue.enqueue((await Promise.all(hung.slice(2).map((id) => pendingLogs(id, 2)))).flat());
    await waitFor(() => Object.values(started).reduce((sum, n) => sum + n, 0) >= 3 + 16, 3_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const running = hung.reduce((sum, id) => sum + (started[id] ?? 0), 0);
    expect(running).toBe(16);
  });

  it("finds pending logs it was not told about (left by an earlier process) when it starts", async () => {
    await start({ groupConcurrency: 4 });
    const seen: string[] = [];
    await pendingLogs("ep_left", 3);
    await queue.startConsumer(async (job) => {
      seen.push(job.logId);
      return record(job.logId, { kind: "done" });
    });
    await waitFor(() => seen.length === 3);
    expect(seen.sort()).toEqual(["log_ep_left_0000", "log_ep_left_0001", "log_ep_left_0002"]);
  });

  it("runs a retry when it comes due, also when the endpoint has nothing else queued", async () => {
    await start({ groupConcurrency: 4 });
    const runs: number[] = [];
    await queue.startConsumer(async ({ logId }) => {
      runs.push(Date.now());
      return record(
        logId,
        runs.length === 1 ? { kind: "retry", runAtMs: Date.now() + 300 } : { kind: "done" },
      );
    });
    await queue.afterCommit(await pendingLogs("ep_retry", 1));
    await waitFor(() => runs.length >= 2);
    expect(runs).toHaveLength(2);
    expect(runs[1]! - runs[0]!).toBeGreaterThanOrEqual(300);
    expect(await queue.depth()).toBe(0);
  });

  it("leaves the logs of a paused endpoint alone until it is resumed", async () => {
    await start({ groupConcurrency: 4 });
    const seen: string[] = [];
    // Ingest hands over no job for a paused endpoint; its logs are found by the scan at start.
    const parked = await pendingLogs("ep_paused", 2, { paused: true });
    await queue.startConsumer(async (job) => {
      seen.push(job.logId);
      return record(job.logId, { kind: "done" });
    });
    await queue.afterCommit(await pendingLogs("ep_open", 1));
    await waitFor(() => seen.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen).toEqual(["log_ep_open_0000"]);
    expect(await queue.depth()).toBe(0);

    await storage.db.updateTable("endpoints").set({ is_paused: 0 }).where("id", "=", "ep_paused").execute();
    await queue.enqueue(parked);
    await waitFor(() => seen.length === 3);
    expect(seen.slice(1).sort()).toEqual(["log_ep_paused_0000", "log_ep_paused_0001"]);
  });

  it("reclaims a log whose handler never finished once the process restarts (at-least-once)", async () => {
    await start({ groupConcurrency: 4 });
    let firstRuns = 0;
    await queue.startConsumer(async () => {
      firstRuns++;
      await new Promise<void>((done) => release.push(done));
      return { kind: "done" }; // never reached before the "crash": nothing was recorded
    });
    await queue.afterCommit(await pendingLogs("ep_crash", 1));
    await waitFor(() => firstRuns === 1);
    await queue.close(10);

    const seen: string[] = [];
    const restarted = queueOn(storage, 4);
    queue = restarted;
    await restarted.startConsumer(async (job) => {
      seen.push(job.logId);
      return record(job.logId, { kind: "done" });
    });
    await waitFor(() => seen.length === 1);
    expect(seen).toEqual(["log_ep_crash_0000"]);
  });

  it("starts a log from its commit without a claim, and never runs a log twice", async () => {
    await start({ groupConcurrency: 64 });
    const runs = new Map<string, number>();
    await queue.startConsumer(async (job) => {
      runs.set(job.logId, (runs.get(job.logId) ?? 0) + 1);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return record(job.logId, { kind: "done" });
    });
    // Not in the table: only the hand-over from the commit can start it.
    const [fromMemory] = await pendingLogs("ep_memory", 1, { committed: false });
    await queue.afterCommit([fromMemory!]);
    expect(runs.get("log_ep_memory_0000")).toBe(1);

    // In the table and handed over while a claim round (a scan, then claims) is under way.
    const raced = await pendingLogs("ep_race", 40);
    const claimRound = queue.runOnce();
    await queue.afterCommit(raced);
    await claimRound;
    await waitFor(() => runs.size === 41);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(runs.size).toBe(41);
    expect([...runs.values()].every((count) => count === 1)).toBe(true);
  });

  it("keeps an endpoint's cap when hand-overs and claims race for its slots", async () => {
    await start({ groupConcurrency: 4 });
    let running = 0;
    let most = 0;
    let done = 0;
    await queue.startConsumer(async (job) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 20));
      running--;
      done++;
      return record(job.logId, { kind: "done" });
    });
    const logs = await pendingLogs("ep_capped", 30);
    const claimRound = queue.runOnce();
    await queue.afterCommit(logs.slice(0, 10));
    await claimRound;
    await waitFor(() => done === 30, 5_000);
    expect(done).toBe(30);
    expect(most).toBe(4);
  });

  it("starts an endpoint's logs oldest first as slots free up, and leaves the rest pending when it stops", async () => {
    await start({ groupConcurrency: 2 });
    const started: string[] = [];
    await queue.startConsumer(async (job) => {
      started.push(job.logId);
      await new Promise<void>((done) => release.push(done));
      return record(job.logId, { kind: "done" });
    });
    const jobs = await pendingLogs("ep_order", 8);
    await queue.enqueue(jobs);
    await waitFor(() => started.length === 2);
    // Two running: each released slot goes to the oldest waiting log.
    for (const expected of [3, 4, 5]) {
      release.shift()!();
      await waitFor(() => started.length === expected);
    }
    expect(started).toEqual(jobs.slice(0, 5).map((job) => job.logId));

    // Stopped with logs running and waiting: only the finished ones are done, the rest run after a restart.
    await queue.close(10);
    const seen: string[] = [];
    queue = queueOn(storage, 2);
    await queue.startConsumer(async (job) => {
      seen.push(job.logId);
      return record(job.logId, { kind: "done" });
    });
    await waitFor(() => seen.length === 5);
    expect(seen).toEqual(jobs.slice(3).map((job) => job.logId));
  });
});
