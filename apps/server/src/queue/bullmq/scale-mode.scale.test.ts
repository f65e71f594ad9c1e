import pg from "pg";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLoad, statusSummary, waitForDelivery } from "../../test-support/load.js";
import {
  type MitteProcess,
  provisionEndpoint,
  scaleProcessEnv,
  startMitteProcess,
} from "../../test-support/mitte-process.js";
import { type Sink, startSink } from "../../test-support/sink.js";
import { createTestSchema, testDatabaseUrl, testRedisUrl } from "../../test-support/test-storage.js";

/**
 * Scale mode as deployed: separate `api` and `worker` processes on one PostgreSQL and one Redis.
 * Every webhook answered 202 must reach the target, whatever happens to the processes around it.
 */
let env: Record<string, string>;
let dropSchema: () => Promise<void>;
let sink: Sink;
let slug: string;
let apiKey: string;
const apis: MitteProcess[] = [];
const workers: MitteProcess[] = [];
const prefix = `mitte-scale-${Math.random().toString(36).slice(2, 8)}`;

const receivedIds = () => new Set(sink.received.map((r) => String(r.headers["x-mitte-delivery-id"])));

beforeAll(async () => {
  if (!testDatabaseUrl || !testRedisUrl)
    throw new Error("scale tests need MITTE_TEST_DATABASE_URL and MITTE_TEST_REDIS_URL");
  const schema = await createTestSchema();
  dropSchema = schema.drop;
  sink = await startSink(() => ({ status: 200 }));
  env = scaleProcessEnv({
    databaseUrl: testDatabaseUrl,
    schema: schema.schema,
    redisUrl: testRedisUrl,
    prefix,
  });
  const started = await Promise.all([
    startMitteProcess({ ...env, MITTE_ROLE: "api" }),
    startMitteProcess({ ...env, MITTE_ROLE: "api" }),
    startMitteProcess({ ...env, MITTE_ROLE: "worker" }),
    startMitteProcess({ ...env, MITTE_ROLE: "worker" }),
  ]);
  apis.push(started[0], started[1]);
  workers.push(started[2], started[3]);
  ({ apiKey, slug } = await provisionEndpoint(env, apis[0]!.url, "scale@example.com", `${sink.url}/hook`));
}, 120_000);

afterAll(async () => {
  for (const process of [...apis, ...workers]) process.child.kill("SIGKILL");
  await sink?.close();
  await dropSchema?.();
});

describe("scale mode: 2 api + 2 worker processes on PostgreSQL and Redis", () => {
  it("delivers 5,000 webhooks sent through both api processes", async () => {
    const startedAt = Date.now();
    const load = startLoad({ baseUrls: apis.map((a) => a.url), slug, concurrency: 32, total: 5_000 });
    await load.done;
    const ingestMs = Date.now() - startedAt;
    expect(statusSummary(load.result.statuses)).toBe("202: 5000");
    const lost = await waitForDelivery(load.result.accepted, receivedIds, 60_000);
    const duplicates = sink.received.length - receivedIds().size;
    console.log(
      `scale: 5000 sent, ${load.result.accepted.size} answered 202 in ${ingestMs} ms, all received after ${Date.now() - startedAt} ms, ` +
        `${lost.length} lost, ${duplicates} duplicates`,
    );
    expect(lost).toEqual([]);
  }, 120_000);

  it("loses nothing when a worker is killed with SIGKILL mid-run", async () => {
    const before = sink.received.length;
    const load = startLoad({ baseUrls: apis.map((a) => a.url), slug, concurrency: 32, total: 5_000 });
    while (load.result.accepted.size < 2_500) await new Promise((resolve) => setTimeout(resolve, 10));
    const victim = workers.shift()!;
    victim.child.kill("SIGKILL");
    expect(await victim.exited).toBe("SIGKILL");
    await load.done;
    const lost = await waitForDelivery(load.result.accepted, receivedIds, 90_000);
    const runIds = new Set(sink.received.slice(before).map((r) => String(r.headers["x-mitte-delivery-id"])));
    const duplicates = sink.received.length - before - runIds.size;
    console.log(
      `scale, worker killed: ${load.result.accepted.size} answered 202 (${statusSummary(load.result.statuses)}), ${lost.length} lost, ${duplicates} duplicates`,
    );
    expect(lost).toEqual([]);
    workers.push(await startMitteProcess({ ...env, MITTE_ROLE: "worker" }));
  }, 150_000);

  it("reconnects to PostgreSQL after its backends are terminated and goes on", async () => {
    const load = startLoad({ baseUrls: apis.map((a) => a.url), slug, concurrency: 16, total: 3_000 });
    while (load.result.accepted.size < 1_000) await new Promise((resolve) => setTimeout(resolve, 10));
    const admin = new pg.Client({ connectionString: testDatabaseUrl });
    await admin.connect();
    const { rows } = await admin.query(
      "select pg_terminate_backend(pid) as killed from pg_stat_activity where application_name like $1 and pid <> pg_backend_pid()",
      [`${prefix}-%`],
    );
    await admin.end();
    const acceptedAtKill = load.result.accepted.size;
    await load.done;
    const lost = await waitForDelivery(load.result.accepted, receivedIds, 60_000);
    console.log(
      `scale, ${rows.length} postgres backends terminated: ${load.result.accepted.size} answered 202 (${statusSummary(load.result.statuses)}), ${lost.length} lost`,
    );
    if (lost.length > 0 || load.result.statuses.get(0))
      for (const p of [...apis, ...workers]) console.log(p.output().slice(-2_000));
    expect(rows.length).toBeGreaterThan(0);
    expect(load.result.accepted.size).toBeGreaterThan(acceptedAtKill + 1_000); // ingestion went on
    expect(lost).toEqual([]);
    for (const process of [...apis, ...workers]) {
      expect((await fetch(`${process.url}/readyz`)).status).toBe(200);
    }
  }, 120_000);

  it("carries live events from a worker process to an SSE client on an api process", async () => {
    const events: string[] = [];
    const controller = new AbortController();
    const stream = await request(`${apis[1]!.url}/api/v1/events`, {
      headers: { authorization: `Bearer ${apiKey}` },
      signal: controller.signal,
    });
    expect(stream.statusCode).toBe(200);
    stream.body.setEncoding("utf8");
    stream.body.on("data", (chunk: string) => events.push(chunk));
    stream.body.on("error", () => {});
    const sent = await fetch(`${apis[0]!.url}/api/v1/h/${slug}`, {
      method: "POST",
      body: "{}",
      headers: { "content-type": "application/json" },
    });
    const { id } = (await sent.json()) as { id: string };
    const deadline = Date.now() + 10_000;
    while (!events.join("").includes(id) && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    expect(events.join("")).toContain("event: webhook:delivered");
    expect(events.join("")).toContain(id);
  }, 30_000);

  it("stops a worker gracefully on SIGTERM: exit 0, nothing lost", async () => {
    const load = startLoad({ baseUrls: apis.map((a) => a.url), slug, concurrency: 16, total: 2_000 });
    while (load.result.accepted.size < 500) await new Promise((resolve) => setTimeout(resolve, 10));
    const leaving = workers.shift()!;
    leaving.child.kill("SIGTERM");
    const code = await leaving.exited;
    if (code !== 0) console.log(leaving.output().slice(-3_000));
    expect(code).toBe(0);
    await load.done;
    const lost = await waitForDelivery(load.result.accepted, receivedIds, 60_000);
    expect(lost).toEqual([]);
  }, 120_000);
});
