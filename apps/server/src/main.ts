import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import type { Config } from "./config.js";
import { createDeps, type Deps, type DepsOverrides } from "./deps.js";
import { createServices, type Services } from "./services.js";
import { lockDataDir } from "./storage/sqlite/data-dir-lock.js";

const RETENTION_EVERY_MS = 60 * 60 * 1000;

export interface RunningMitte {
  app: FastifyInstance;
  deps: Deps;
  services: Services;
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000. */
  url: string;
  /**
   * Graceful stop: refuse new requests, commit accepted ones, give running deliveries `graceMs` (default
   * MITTE_SHUTDOWN_GRACE_MS) to finish, then cut the rest short and leave them to run again.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts Mitte in this process. Role `all` (the default, and the only one in embedded mode) runs the API,
 * ingestion, the delivery consumer and the periodic jobs; `api` serves HTTP only; `worker` delivers and
 * runs periodic jobs, serving only /healthz and /readyz.
 */
export async function startMitte(config: Config, overrides: DepsOverrides = {}): Promise<RunningMitte> {
  // Embedded mode: one server per data directory, or two embedded queues deliver the same webhooks.
  const dataDirLock =
    config.storage.databaseUrl || overrides.storage ? null : lockDataDir(config.storage.dataDir);
  try {
    const running = await start(config, overrides);
    if (!dataDirLock) return running;
    return { ...running, close: (graceMs) => running.close(graceMs).finally(() => dataDirLock.release()) };
  } catch (error) {
    dataDirLock?.release();
    throw error;
  }
}

async function start(config: Config, overrides: DepsOverrides): Promise<RunningMitte> {
  const deps = await createDeps(config, overrides);
  const services = createServices(deps);
  await services.directory.start();
  await services.hub.start();
  const { logger } = deps;
  const { role } = config;
  const app = await buildApp(deps, services, { healthOnly: role === "worker" });

  try {
    await app.listen({ port: config.http.port, host: config.http.host });
  } catch (error) {
    // Opened so far, closed again: the process may go on (tests, Mitte embedded in another program).
    await app.close().catch(() => {});
    await deps.close({ graceMs: 0 }).catch(() => {});
    // Node's own words ("getaddrinfo ENOTFOUND x") do not say which setting to change.
    throw new Error(
      `Cannot listen on ${config.http.host}:${config.http.port} (HOST, PORT): ${(error as Error).message}`,
    );
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.http.port;
  const url = `http://${config.http.host === "0.0.0.0" ? "127.0.0.1" : config.http.host}:${port}`;

  if (role !== "api") {
    if (config.delivery.enabled) await deps.queue.startConsumer((job) => services.delivery.deliver(job));
    deps.periodic.schedule("retention", RETENTION_EVERY_MS, () => services.retention.runOnce());
    deps.periodic.schedule("quota-warnings", 60_000, () => services.monitors.checkQuotas());
    deps.periodic.schedule("trial-ending", RETENTION_EVERY_MS, () => services.monitors.checkTrials());
    deps.periodic.schedule("anomaly-detection", 10 * 60_000, () => services.stats.detectAnomalies());
    deps.periodic.schedule("stats-prune", RETENTION_EVERY_MS, () => services.stats.prune());
    if (deps.mode === "scale")
      deps.periodic.schedule("reconcile", config.queue.reconcileEveryMs, () => services.reconciler.runOnce());
    await deps.periodic.start();
  }

  logger.info({ url, mode: deps.mode, role, delivery: config.delivery.enabled }, "Mitte is listening");
  if (role !== "worker" && (await services.users.count()) === 0) {
    logger.info("No users yet. Create one with: npx mitte user create --email you@example.com --json");
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    deps,
    services,
    url,
    close(graceMs = config.delivery.shutdownGraceMs) {
      closing ??= (async () => {
        // One grace period for the whole stop: requests in flight and running deliveries share it.
        const deadline = Date.now() + graceMs;
        // Node stops its request-timeout checks once the server closes, so a sender trickling a body would
        // hold the stop forever. A request cut off here gets no answer and its sender sends it again (stored
        // twice if its commit had just finished: at-least-once, nothing lost).
        const cutRequests = setTimeout(() => app.server.closeAllConnections(), graceMs);
        try {
          await app.close();
        } finally {
          clearTimeout(cutRequests);
        }
        await services.ingest.flush();
        // Deliveries still waiting on their targets when the grace period ends are cut short and handed
        // back (the queue calls onGraceEnd once it has stopped fetching): left to run, they would end at
        // their timeout and be recorded as failures (on Free, the webhook's only attempt).
        await deps.close({
          graceMs: Math.max(0, deadline - Date.now()),
          onGraceEnd: () => services.delivery.abandon(),
          afterQueue: () => services.afterQueueClosed(),
        });
      })();
      return closing;
    },
  };
}
