/**
 * A Mitte deployment the fault lab can hurt: embedded (one `mitte start` process on SQLite) or scale
 * (`api` + `worker` processes on a fresh PostgreSQL schema and a private, restartable redis-server with AOF).
 * Faults address roles, not processes: `ingest` is the process that answers webhooks (embedded: the only one;
 * scale: the api), `delivery` the one that forwards them (embedded: the same one; scale: the worker).
 */
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import {
  createProUser,
  freePort,
  type MitteProcess,
  makeTempDir,
  removeTempDir,
  startMitte,
  stopChild,
} from "../processes.js";
import { DATABASE_URL, type PgAdmin, type RedisServer, startRedis } from "../scale.js";
import type { Mode } from "./scenario.js";

export type Role = "ingest" | "delivery";

export interface Endpoint {
  id: string;
  slug: string;
  signingSecret: string;
}

export interface LabDeployment {
  mode: Mode;
  apiKey: string;
  /** Base URLs that accept webhooks (embedded: one; scale: every api process). */
  apiUrls(): string[];
  createEndpoint(targetUrl: string): Promise<Endpoint>;
  ingestUrls(endpoint: Endpoint): string[];
  /** Sends `signal` to the process(es) of `role` and waits for the exit; returns the exit code/signal. */
  stop(role: Role, signal: NodeJS.Signals): Promise<number | string>;
  /** Starts what `stop` stopped (the same ports, data and schema). */
  restart(role: Role): Promise<void>;
  /** Scale mode only: the private Redis and PostgreSQL the deployment uses. */
  redis?: RestartableRedis;
  pgSchema?: string;
  /** application_name prefix of the deployment's PostgreSQL connections. */
  pgPrefix?: string;
  processes(): MitteProcess[];
  close(): Promise<void>;
}

/** Settings that make recovery quick enough to repeat a fault many times (all documented knobs). */
const LAB_ENV: Record<string, string> = {
  MITTE_DELIVERY_ENABLED: "true",
  MITTE_DELIVERY_TIMEOUT_MS: "5000",
  MITTE_RECONCILE_EVERY_MS: "1000",
  MITTE_RECONCILE_AFTER_MS: "3000",
  LOG_LEVEL: "error",
};

async function createEndpointAt(baseUrl: string, apiKey: string, targetUrl: string): Promise<Endpoint> {
  const response = await fetch(`${baseUrl}/api/v1/endpoints`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name: `lab ${randomBytes(3).toString("hex")}`, targetUrl }),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`creating an endpoint failed: ${response.status} ${text}`);
  const created = JSON.parse(text) as Endpoint;
  return { id: created.id, slug: created.slug, signingSecret: created.signingSecret };
}

function exitOf(process: MitteProcess, signal: NodeJS.Signals, timeoutMs: number) {
  return stopChild(process.child, signal, timeoutMs).then(
    (result) =>
      (result.killed ? "SIGKILL after grace" : (result.code ?? result.signal ?? -1)) as number | string,
  );
}

// ---------------------------------------------------------------- embedded

export async function embeddedDeployment(extraEnv: Record<string, string> = {}): Promise<LabDeployment> {
  const dataDir = makeTempDir("lab");
  const port = await freePort();
  const env = { ...LAB_ENV, ...extraEnv };
  const { apiKey } = await createProUser(dataDir, env);
  let process: MitteProcess | null = await startMitte(dataDir, env, { port });
  const url = `http://127.0.0.1:${port}`;
  return {
    mode: "embedded",
    apiKey,
    apiUrls: () => [url],
    createEndpoint: (targetUrl) => createEndpointAt(url, apiKey, targetUrl),
    ingestUrls: (endpoint) => [`${url}/api/v1/h/${endpoint.slug}`],
    async stop(_role, signal) {
      if (!process) return "not running";
      const code = await exitOf(process, signal, 20_000);
      process = null;
      return code;
    },
    async restart() {
      if (!process) process = await startMitte(dataDir, env, { port });
    },
    processes: () => (process ? [process] : []),
    async close() {
      if (process) await stopChild(process.child, "SIGKILL");
      process = null;
      removeTempDir(dataDir);
    },
  };
}

// ---------------------------------------------------------------- scale

/** A redis-server with AOF (fsync every second) that can be killed and started again on the same port and data. */
export interface RestartableRedis {
  url: string;
  /** SIGKILL: no final fsync, so up to a second of writes may be lost (the reconciler's job). */
  kill(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function restartableRedis(): Promise<RestartableRedis> {
  const port = await freePort();
  const dir = makeTempDir("lab-redis");
  let server: RedisServer | null = await startRedis({ port, dir });
  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      if (!server) return;
      server.client.disconnect();
      await stopChild(server.child, "SIGKILL");
      server = null;
    },
    async start() {
      if (!server) server = await startRedis({ port, dir });
    },
    async close() {
      if (server) {
        server.client.disconnect();
        await stopChild(server.child, "SIGKILL");
      }
      server = null;
      removeTempDir(dir);
    },
  };
}

export async function scaleDeployment(
  admin: PgAdmin,
  options: { apis?: number; workers?: number; extraEnv?: Record<string, string> } = {},
): Promise<LabDeployment> {
  const apis = options.apis ?? 1;
  const workers = options.workers ?? 1;
  const id = randomBytes(4).toString("hex");
  const schema = `lab_${id}`;
  const prefix = `lab-${id}`;
  const dataDir = makeTempDir("lab-scale");
  const redis = await restartableRedis();
  await admin.createSchema(schema, prefix);
  const env = {
    ...LAB_ENV,
    ...options.extraEnv,
    DATABASE_URL,
    MITTE_PG_SCHEMA: schema,
    MITTE_PG_POOL_SIZE: "5",
    REDIS_URL: redis.url,
    MITTE_REDIS_PREFIX: prefix,
    MITTE_SECRET_KEY: randomBytes(32).toString("hex"),
  };
  const { apiKey } = await createProUser(dataDir, env);
  const apiPorts = await Promise.all(Array.from({ length: apis }, () => freePort()));
  const workerPorts = await Promise.all(Array.from({ length: workers }, () => freePort()));
  const start = (role: "api" | "worker", port: number) => startMitte(dataDir, env, { port, role });
  let apiProcesses: (MitteProcess | null)[] = await Promise.all(apiPorts.map((port) => start("api", port)));
  let workerProcesses: (MitteProcess | null)[] = await Promise.all(
    workerPorts.map((port) => start("worker", port)),
  );
  const urls = apiPorts.map((port) => `http://127.0.0.1:${port}`);
  return {
    mode: "scale",
    apiKey,
    redis,
    pgSchema: schema,
    pgPrefix: prefix,
    apiUrls: () => urls,
    createEndpoint: (targetUrl) => createEndpointAt(urls[0]!, apiKey, targetUrl),
    ingestUrls: (endpoint) => urls.map((url) => `${url}/api/v1/h/${endpoint.slug}`),
    async stop(role, signal) {
      // The first process of the role: with several api processes the others keep answering.
      const list = role === "ingest" ? apiProcesses : workerProcesses;
      const victim = list[0];
      if (!victim) return "not running";
      const code = await exitOf(victim, signal, 20_000);
      list[0] = null;
      return code;
    },
    async restart(role) {
      if (role === "ingest" && !apiProcesses[0]) apiProcesses[0] = await start("api", apiPorts[0]!);
      if (role === "delivery" && !workerProcesses[0])
        workerProcesses[0] = await start("worker", workerPorts[0]!);
    },
    processes: () => [...apiProcesses, ...workerProcesses].filter((p): p is MitteProcess => p !== null),
    async close() {
      const started = performance.now();
      await Promise.all(
        [...apiProcesses, ...workerProcesses].map((p) => (p ? stopChild(p.child, "SIGKILL") : undefined)),
      );
      apiProcesses = [];
      workerProcesses = [];
      await admin.dropSchema(schema).catch(() => {});
      await redis.close();
      removeTempDir(dataDir);
      void started;
    },
  };
}
