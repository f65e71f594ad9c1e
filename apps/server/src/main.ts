import type { FastifyInstance } from "fastify";
import { buildApp } from "./app.js";
import type { Config } from "./config.js";
import { createDeps, type Deps, type DepsOverrides } from "./deps.js";
import { createServices, type Services } from "./services.js";

const RETENTION_INTERVAL_MS = 60 * 60 * 1000;

export interface RunningMitte {
  app: FastifyInstance;
  deps: Deps;
  services: Services;
  /** Base URL the server listens on, e.g. http://127.0.0.1:3000. */
  url: string;
  /** Graceful stop: refuse new requests, commit accepted ones, finish or release deliveries. */
  close(graceMs?: number): Promise<void>;
}

/** Starts the whole product in one process: API, ingestion, delivery worker, periodic jobs. */
export async function startMitte(config: Config, overrides: DepsOverrides = {}): Promise<RunningMitte> {
  const deps = await createDeps(config, overrides);
  const services = createServices(deps);
  const app = await buildApp(deps, services);
  const { logger } = deps;

  await app.listen({ port: config.http.port, host: config.http.host });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.http.port;
  const url = `http://${config.http.host === "0.0.0.0" ? "127.0.0.1" : config.http.host}:${port}`;

  if (config.delivery.enabled) await deps.queue.startConsumer((job) => services.delivery.deliver(job));

  const runRetention = () =>
    services.retention
      .runOnce()
      .catch((error: unknown) => logger.error({ err: error }, "retention run failed"));
  void runRetention();
  const retentionTimer = setInterval(runRetention, RETENTION_INTERVAL_MS);
  retentionTimer.unref();

  logger.info(
    { url, dataDir: config.storage.dataDir, delivery: config.delivery.enabled },
    "Mitte is listening",
  );
  if ((await services.users.count()) === 0) {
    logger.info("No users yet. Create one with: npx mitte user create --email you@example.com --json");
  }

  let closing: Promise<void> | undefined;
  return {
    app,
    deps,
    services,
    url,
    close(graceMs = 10_000) {
      closing ??= (async () => {
        clearInterval(retentionTimer);
        await app.close();
        await services.ingest.flush();
        await deps.queue.close(graceMs);
        await services.delivery.flush();
        await deps.outbound.close();
        await deps.storage.close();
      })();
      return closing;
    },
  };
}
