/**
 * Scale-mode infrastructure for the benchmarks: a private `redis-server` child (AOF, fsync every second), a
 * fresh PostgreSQL schema and Redis prefix per Mitte deployment, the environment its `api` and `worker`
 * processes share, and the PostgreSQL backends they open (their CPU is Mitte's work, not other load).
 * The shared Redis on 6379 is never touched; schemas left behind by an interrupted run are dropped by the
 * exit hook in processes.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import pg from "pg";
import {
  addExitTask,
  createProUser,
  freePort,
  makeTempDir,
  OutputTail,
  REPO_DIR,
  removeExitTask,
  removeTempDir,
  stopChild,
  track,
} from "./processes.js";

export const DATABASE_URL = "postgres://postgres@127.0.0.1:5432/test";

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

// ---------------------------------------------------------------- Redis

export interface RedisServer {
  child: ReturnType<typeof spawn>;
  port: number;
  url: string;
  /** A client for the bench's own checks (config, queue length, INFO); never used by Mitte. */
  client: Redis;
  /** `CONFIG GET` of the settings the brief prescribes, as Redis reports them. */
  settings: Record<string, string>;
  version: string;
  /** How many AOF rewrites the bench itself asked for (see `reset`). */
  rewritesRequested: number;
  /**
   * Empties Redis (FLUSHALL) and rewrites the now tiny AOF (BGREWRITEAOF, awaited), so every deployment starts
   * from an empty Redis and Redis's automatic rewrite (a fork, at 64 MB of AOF growth) does not fire inside a
   * measured window.
   */
  reset(): Promise<void>;
  close(): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

/** The flags the benchmark's Redis runs with (docs/deployment.md's production settings). */
export const REDIS_FLAGS = [
  "--appendonly",
  "yes",
  "--appendfsync",
  "everysec",
  "--save",
  "",
  "--maxmemory-policy",
  "noeviction",
];

/**
 * Starts a private redis-server on a free loopback port, data (the AOF) in a temp dir removed on close; or on
 * a given port and dir (the fault lab restarts one on its old data), which close() then leaves in place.
 */
export async function startRedis(
  options: { port?: number; dir?: string; timeoutMs?: number } = {},
): Promise<RedisServer> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const port = options.port ?? (await freePort());
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? makeTempDir("redis");
  const output = new OutputTail();
  const child = track(
    spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, ...REDIS_FLAGS], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  output.attach(child.stdout);
  output.attach(child.stderr);
  const spawnError = new Promise<never>((_, reject) => child.once("error", reject));
  spawnError.catch(() => {}); // observed through the race below; a late error must not crash the bench
  const deadline = performance.now() + timeoutMs;
  const ready = (async () => {
    while (!output.lines.some((line) => line.includes("Ready to accept connections"))) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}):\n${output.text()}`);
      if (performance.now() > deadline)
        throw new Error(`redis-server not ready within ${timeoutMs} ms:\n${output.text()}`);
      await sleep(20);
    }
  })();
  await Promise.race([ready, spawnError]);
  const url = `redis://127.0.0.1:${port}`;
  const client = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  client.on("error", () => {});
  await client.connect();
  const settings: Record<string, string> = {};
  for (const name of ["appendonly", "appendfsync", "save", "maxmemory-policy"]) {
    const reply = (await client.config("GET", name)) as string[];
    settings[name] = reply[1] ?? "";
  }
  const version = /redis_version:(\S+)/.exec(await client.info("server"))?.[1] ?? "unknown";
  const server: RedisServer = {
    child,
    port,
    url,
    client,
    settings,
    version,
    rewritesRequested: 0,
    async reset() {
      await client.flushall();
      // A rewrite already running (an automatic one) refuses a second; wait for it and ask again.
      for (let attempt = 0; attempt < 50; attempt += 1) {
        const fields = await redisPersistence(server);
        if (fields.aof_rewrite_in_progress === "0" && fields.aof_rewrite_scheduled === "0") break;
        await sleep(100);
      }
      await client.bgrewriteaof();
      server.rewritesRequested += 1;
      for (let attempt = 0; attempt < 100; attempt += 1) {
        const fields = await redisPersistence(server);
        if (fields.aof_rewrite_in_progress === "0" && fields.aof_rewrite_scheduled === "0") return;
        await sleep(50);
      }
    },
    async close() {
      client.disconnect();
      const stopped = await stopChild(child);
      if (ownDir) removeTempDir(dir);
      return stopped;
    },
  };
  return server;
}

/** Fields of `INFO persistence` the report shows (AOF rewrites and write errors during the run). */
export async function redisPersistence(redis: RedisServer): Promise<Record<string, string>> {
  const info = await redis.client.info("persistence");
  const fields: Record<string, string> = {};
  for (const line of info.split("\r\n")) {
    const [key, value] = line.split(":");
    if (key && value !== undefined) fields[key] = value;
  }
  return fields;
}

// ---------------------------------------------------------------- PostgreSQL

/** The bench's own PostgreSQL connection: creates and drops schemas, lists a deployment's backends. */
export class PgAdmin {
  private constructor(private readonly client: pg.Client) {}

  static async open(): Promise<PgAdmin> {
    const client = new pg.Client({ connectionString: DATABASE_URL, application_name: "mitte-bench-admin" });
    client.on("error", () => {});
    await client.connect();
    return new PgAdmin(client);
  }

  /** Creates `name`; until dropSchema, the exit hook drops it (ending the backends of `prefix` first). */
  async createSchema(name: string, prefix: string): Promise<void> {
    addExitTask(`schema ${name}`, () => dropSchemaSync(name, prefix));
    await this.client.query(`create schema ${name}`);
  }

  async dropSchema(name: string): Promise<void> {
    await this.client.query(`drop schema if exists ${name} cascade`);
    removeExitTask(`schema ${name}`);
  }

  /** Ends every backend of the deployment `prefix` (the lab's PostgreSQL connection-loss fault). */
  async terminateBackends(prefix: string): Promise<number> {
    const { rows } = await this.client.query<{ ended: boolean }>(
      "select pg_terminate_backend(pid) as ended from pg_stat_activity where starts_with(application_name, $1)",
      [`${prefix}-`],
    );
    return rows.filter((row) => row.ended).length;
  }

  /** Pids of the backends whose application_name starts with `prefix-` (Mitte names them prefix-role). */
  async backendPids(prefix: string): Promise<number[]> {
    const { rows } = await this.client.query<{ pid: number }>(
      "select pid from pg_stat_activity where starts_with(application_name, $1)",
      [`${prefix}-`],
    );
    return rows.map((row) => row.pid);
  }

  /** Server version and the durability settings that bound commit latency. */
  async facts(): Promise<Record<string, string>> {
    const facts: Record<string, string> = {};
    for (const name of ["server_version", "synchronous_commit", "fsync", "max_connections"]) {
      const { rows } = await this.client.query<Record<string, string>>(`show ${name}`);
      facts[name] = rows[0]?.[name] ?? "unknown";
    }
    return facts;
  }

  async close(): Promise<void> {
    await this.client.end();
  }
}

/** For the exit hook: ends the deployment's connections (its processes are being killed), drops the schema. */
function dropSchemaSync(name: string, prefix: string): void {
  const script = `
    const pg = require("pg");
    const client = new pg.Client({ connectionString: ${JSON.stringify(DATABASE_URL)} });
    client.connect()
      .then(() => client.query("select pg_terminate_backend(pid) from pg_stat_activity where starts_with(application_name, $1)", [${JSON.stringify(`${prefix}-`)}]))
      .then(() => client.query(${JSON.stringify(`drop schema if exists ${name} cascade`)}))
      .then(() => client.end(), (error) => { console.error(error.message); process.exit(1); });
  `;
  const result = spawnSync(process.execPath, ["-e", script], {
    cwd: REPO_DIR,
    timeout: 15_000,
    stdio: "inherit",
  });
  if (result.status !== 0) throw new Error(`drop schema ${name}: exit ${result.status ?? result.signal}`);
}

/**
 * Keeps a current list of a deployment's PostgreSQL backend pids (polled from pg_stat_activity), for
 * CpuWindow groups: the work those backends do for Mitte would otherwise count as other load.
 */
export class BackendWatch {
  private current: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> = Promise.resolve();

  constructor(
    private readonly admin: PgAdmin,
    private readonly prefix: string,
  ) {}

  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => {
      this.polling = this.refresh();
    }, 250);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    try {
      this.current = await this.admin.backendPids(this.prefix);
    } catch {
      // keep the last list
    }
  }

  /** Polls once more right now (before a CpuWindow opens or closes). */
  async sync(): Promise<void> {
    await this.polling;
    await this.refresh();
  }

  readonly pids = (): readonly number[] => this.current;

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.polling;
  }
}

// ---------------------------------------------------------------- one deployment

export interface ScaleDeployment {
  schema: string;
  prefix: string;
  /** MITTE_DATA_DIR is unused in scale mode but set to a fresh temp dir, so nothing lands in the repo. */
  dataDir: string;
  env: Record<string, string>;
  apiKey: string;
  backends: BackendWatch;
  /** Jobs BullMQ holds in its wait list (before workers start: what the api processes enqueued). */
  waitingJobs(): Promise<number>;
  /** Drops the schema, deletes the deployment's Redis keys, removes the data dir. */
  close(): Promise<void>;
}

/**
 * Deliveries waiting in Redis: delivery jobs in BullMQ's wait list, plus those still inside the api
 * processes' hand-over jobs (one per ingest commit), which a worker adds as delivery jobs.
 */
async function waitingDeliveries(client: Redis, prefix: string): Promise<number> {
  const ids = await client.lrange(`${prefix}:deliveries-handover:wait`, 0, -1);
  let handedOver = 0;
  for (const id of ids) {
    const data = await client.hget(`${prefix}:deliveries-handover:${id}`, "data");
    handedOver += data ? (JSON.parse(data) as { jobs: unknown[] }).jobs.length : 0;
  }
  return (await client.llen(`${prefix}:deliveries:wait`)) + handedOver;
}

/** One bench secret for every deployment of this run (what matters is that all processes share it). */
const SECRET_KEY = randomBytes(32).toString("hex");

/** Fresh schema + Redis prefix, a pro user made by `mitte user create` with the scale environment. */
export async function createDeployment(
  label: string,
  redis: RedisServer,
  admin: PgAdmin,
): Promise<ScaleDeployment> {
  const id = randomBytes(4).toString("hex");
  const schema = `bench_${label.replace(/[^a-z0-9]/g, "_")}_${id}`;
  const prefix = `bench-${label}-${id}`;
  const dataDir = makeTempDir(`${label}`);
  await admin.createSchema(schema, prefix);
  const backends = new BackendWatch(admin, prefix);
  const close = async () => {
    await backends.stop();
    await admin.dropSchema(schema);
    await redis.reset();
    removeTempDir(dataDir);
  };
  try {
    const env = {
      DATABASE_URL,
      MITTE_PG_SCHEMA: schema,
      REDIS_URL: redis.url,
      MITTE_REDIS_PREFIX: prefix,
      MITTE_SECRET_KEY: SECRET_KEY,
    };
    const { apiKey } = await createProUser(dataDir, env);
    await backends.start();
    return {
      schema,
      prefix,
      dataDir,
      env,
      apiKey,
      backends,
      waitingJobs: () => waitingDeliveries(redis.client, prefix),
      close,
    };
  } catch (error) {
    await close().catch(() => {});
    throw error;
  }
}
