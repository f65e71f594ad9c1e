import { pino } from "pino";
import { buildApp } from "../app.js";
import { loadConfig } from "../config.js";
import { createDeps } from "../deps.js";
import { ManualClock } from "../lib/clock.js";
import { EmbeddedDeliveryQueue } from "../queue/embedded/embedded-queue.js";
import { createServices } from "../services.js";
import type { Plan } from "../storage/schema.js";
import { openSqliteStorage } from "../storage/sqlite/sqlite-storage.js";

export const TEST_SECRET_KEY = "11".repeat(32);

export interface HarnessOptions {
  env?: Record<string, string>;
  clock?: ManualClock;
  /** Jitter source; 0.5 makes backoff delays exactly the table values. */
  random?: () => number;
}

/**
 * The whole product in process: in-memory SQLite, a manual clock, the embedded queue driven by
 * `runDeliveries()` instead of its background loop, and the Fastify app for `inject()`.
 */
export async function createHarness(options: HarnessOptions = {}) {
  const clock = options.clock ?? new ManualClock();
  const config = loadConfig({
    MITTE_SECRET_KEY: TEST_SECRET_KEY,
    MITTE_ALLOW_PRIVATE_TARGETS: "127.0.0.0/8",
    MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: "0",
    MITTE_RATE_LIMIT_IP_PER_MIN: "0",
    MITTE_DELIVERY_TIMEOUT_MS: "2000",
    LOG_LEVEL: "silent",
    ...options.env,
  });
  const logger = pino({ level: "silent" });
  const storage = openSqliteStorage({ filename: ":memory:" });
  const queue = new EmbeddedDeliveryQueue({
    db: storage.db,
    clock,
    logger,
    concurrency: config.delivery.concurrency,
    groupConcurrency: config.delivery.endpointConcurrency,
    leaseMs: 60_000,
  });
  const deps = await createDeps(config, {
    clock,
    logger,
    storage,
    queue,
    random: options.random ?? (() => 0.5),
  });
  const services = createServices(deps);
  const app = await buildApp(deps, services);

  return {
    clock,
    config,
    deps,
    services,
    app,
    queue,
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
      const ran = await queue.runOnce((job) => services.delivery.deliver(job));
      await services.delivery.flush();
      return ran;
    },

    async close() {
      await app.close();
      await deps.outbound.close();
      await storage.close();
    },
  };
}

export type Harness = Awaited<ReturnType<typeof createHarness>>;
