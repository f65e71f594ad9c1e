import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { buildApp } from "../app.js";
import { loadConfig } from "../config.js";
import { createDeps } from "../deps.js";
import { ManualClock } from "../lib/clock.js";
import { createServices } from "../services.js";
import type { Plan } from "../storage/schema.js";
import { openTestStorage, testDatabaseUrl, testRedisUrl } from "./test-storage.js";

export const TEST_SECRET_KEY = "11".repeat(32);

export interface HarnessOptions {
  env?: Record<string, string>;
  clock?: ManualClock;
  /** Jitter source; 0.5 makes backoff delays exactly the table values. */
  random?: () => number;
}

/** The mode the suite runs in: embedded by default, scale when both test URLs are set (`npm run test:scale`). */
export const testMode = testDatabaseUrl && testRedisUrl ? "scale" : "embedded";

/** Deletes every Redis key a harness created under its prefix. */
async function dropRedisPrefix(prefix: string): Promise<void> {
  if (!testRedisUrl) return;
  const redis = new Redis(testRedisUrl);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  redis.disconnect();
}

/**
 * The whole product in process, driven by a manual clock: the queue's `runOnce` replaces the background
 * consumer, and the Fastify app answers `inject()`. Embedded mode uses in-memory SQLite; scale mode uses
 * PostgreSQL (one schema per harness) and BullMQ on Redis (one key prefix per harness).
 */
export async function createHarness(options: HarnessOptions = {}) {
  const clock = options.clock ?? new ManualClock();
  const redisPrefix = `mitte-test-${randomBytes(5).toString("hex")}`;
  const scaleEnv: Record<string, string> =
    testMode === "scale"
      ? { DATABASE_URL: testDatabaseUrl!, REDIS_URL: testRedisUrl!, MITTE_REDIS_PREFIX: redisPrefix }
      : {};
  const config = loadConfig({
    MITTE_SECRET_KEY: TEST_SECRET_KEY,
    MITTE_ALLOW_PRIVATE_TARGETS: "127.0.0.0/8",
    MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: "0",
    MITTE_RATE_LIMIT_IP_PER_MIN: "0",
    MITTE_DELIVERY_TIMEOUT_MS: "2000",
    LOG_LEVEL: "silent",
    ...scaleEnv,
    ...options.env,
  });
  const logger = pino({ level: process.env.MITTE_TEST_LOG ?? "silent" });
  const { storage, drop } = await openTestStorage(logger);
  const deps = await createDeps(config, { clock, logger, storage, random: options.random ?? (() => 0.5) });
  const services = createServices(deps);
  await services.directory.start();
  await services.hub.start();
  const app = await buildApp(deps, services);

  return {
    clock,
    config,
    deps,
    services,
    app,
    queue: deps.queue,
    db: storage.db,

    async createUser(plan: Plan = "free", email = `user-${Math.random().toString(36).slice(2)}@example.com`) {
      const result = await services.users.createUser({ email, plan });
      if (result.outcome !== "created") throw new Error("user exists");
      return {
        userId: result.user.id,
        apiKey: result.apiKey,
        headers: { authorization: `Bearer ${result.apiKey}` },
      };
    },

    async createEndpoint(headers: Record<string, string>, body: Record<string, unknown>) {
      const response = await app.inject({ method: "POST", url: "/api/v1/endpoints", headers, payload: body });
      if (response.statusCode !== 201)
        throw new Error(`create endpoint failed: ${response.statusCode} ${response.body}`);
      return response.json<{ id: string; slug: string; signingSecret: string | null; ingestUrl: string }>();
    },

    /** Commits pending ingests, then runs every delivery due at the clock's current time. */
    async runDeliveries(): Promise<number> {
      await services.ingest.flush();
      const ran = await deps.queue.runOnce((job) => services.delivery.deliver(job));
      await services.delivery.flush();
      await services.settle();
      return ran;
    },

    async close() {
      await app.close();
      await deps.close({
        graceMs: 1_000,
        onGraceEnd: () => services.delivery.abandon(),
        afterQueue: () => services.afterQueueClosed(),
      });
      await drop();
      await dropRedisPrefix(redisPrefix);
    },
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;
