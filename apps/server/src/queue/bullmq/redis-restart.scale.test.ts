import { type ChildProcess, spawn } from "node:child_process";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLoad, statusSummary, waitForDelivery } from "../../test-support/load.js";
import {
  freePort,
  type MitteProcess,
  provisionEndpoint,
  scaleProcessEnv,
  startMitteProcess,
} from "../../test-support/mitte-process.js";
import { type Sink, startSink } from "../../test-support/sink.js";
import { createTestSchema, testDatabaseUrl } from "../../test-support/test-storage.js";

/**
 * Redis is stopped mid-run and started again, empty (no persistence: the worst case). While it is down,
 * ingestion must answer 503 rather than promise what it cannot queue; after it is back, workers resume
 * and the reconciler re-enqueues from PostgreSQL every webhook whose job was lost.
 */
let redisPort: number;
let redis: ChildProcess | undefined;
let sink: Sink;
let dropSchema: () => Promise<void>;
let schemaName: string;
const processes: MitteProcess[] = [];

async function startRedis(): Promise<ChildProcess> {
  const child = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  );
  for (let i = 0; i < 100; i++) {
    const listening = await new Promise<boolean>((resolve) => {
      const socket = connect(redisPort, "127.0.0.1", () => {
        socket.end();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (listening) return child;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("redis-server did not start");
}

async function stopRedis(): Promise<void> {
  const child = redis!;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

beforeAll(async () => {
  if (!testDatabaseUrl) throw new Error("scale tests need MITTE_TEST_DATABASE_URL");
  redisPort = await freePort();
  redis = await startRedis();
  const schema = await createTestSchema();
  dropSchema = schema.drop;
  schemaName = schema.schema;
  sink = await startSink(() => ({ status: 200 }));
}, 60_000);

afterAll(async () => {
  for (const process of processes) process.child.kill("SIGKILL");
  redis?.kill("SIGKILL");
  await sink?.close();
  await dropSchema?.();
});

describe("Redis restarted mid-run", () => {
  it("answers 503 while Redis is down, resumes within 10 s after, loses no 202", async () => {
    const env = scaleProcessEnv({
      databaseUrl: testDatabaseUrl!,
      schema: schemaName,
      redisUrl: `redis://127.0.0.1:${redisPort}`,
    });
    env.MITTE_RECONCILE_AFTER_MS = "2000";
    const [api, worker] = await Promise.all([
      startMitteProcess({ ...env, MITTE_ROLE: "api" }),
      startMitteProcess({ ...env, MITTE_ROLE: "worker" }),
    ]);
    processes.push(api, worker);
    const { slug } = await provisionEndpoint(env, api.url, "redis@example.com", `${sink.url}/hook`);
    const receivedIds = () => new Set(sink.received.map((r) => String(r.headers["x-mitte-delivery-id"])));

    const before = startLoad({ baseUrls: [api.url], slug, concurrency: 8 });
    while (before.result.accepted.size < 500) await new Promise((resolve) => setTimeout(resolve, 10));
    await stopRedis();
    await new Promise((resolve) => setTimeout(resolve, 500)); // let in-flight requests settle
    await before.stop();

    // Redis down: every answer must be a refusal, never a 202.
    const during = startLoad({ baseUrls: [api.url], slug, concurrency: 4, total: 200 });
    await during.done;
    expect(during.result.accepted.size).toBe(0);
    expect(during.result.statuses.get(503)).toBe(200);
    const readyz = await fetch(`${api.url}/readyz`);
    expect(readyz.status).toBe(503);

    redis = await startRedis();
    const restartedAt = Date.now();
    // The api reconnects on its own (ioredis backoff); it says so on /readyz.
    while ((await fetch(`${api.url}/readyz`)).status !== 200 && Date.now() - restartedAt < 10_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const after = startLoad({ baseUrls: [api.url], slug, concurrency: 8, total: 500 });
    await after.done;
    const firstAfter = [...after.result.accepted][0];
    const resumeLost = await waitForDelivery(new Set(firstAfter ? [firstAfter] : []), receivedIds, 10_000);
    const resumedInMs = Date.now() - restartedAt;

    const accepted = new Set([...before.result.accepted, ...after.result.accepted]);
    const lost = await waitForDelivery(accepted, receivedIds, 60_000);
    const duplicates = sink.received.length - receivedIds().size;
    console.log(
      `redis restart: before ${statusSummary(before.result.statuses)}; during ${statusSummary(during.result.statuses)}; ` +
        `after ${statusSummary(after.result.statuses)}; first new delivery ${resumedInMs} ms after restart; ` +
        `${accepted.size} answered 202, ${lost.length} lost, ${duplicates} duplicates`,
    );
    expect(firstAfter).toBeDefined();
    expect(resumeLost).toEqual([]);
    expect(resumedInMs).toBeLessThanOrEqual(10_000);
    expect(lost).toEqual([]);
  }, 150_000);
});
