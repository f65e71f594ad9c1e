/**
 * `npm run bench:bounds [-- --rounds=N]`: what this machine leaves of S1's and S4's ratios before Mitte does
 * its own work. Not a benchmark of Mitte (S1 is measured beside the floors only as a reference point): it
 * measures, in one run and with S1's and S4's own load generators,
 *   - S1 floors: the bare node:http baseline; the same server burning 10 and 25 µs per request (what a
 *     given amount of main-thread work costs in the ratio, load generator sharing the 2 cores); Fastify set up
 *     as Mitte's ingest route but doing nothing (the framework alone); the same route storing each webhook's
 *     row durably before its 202 and doing nothing else (bench/durable-floor-server.ts), with the commit on
 *     a SQLite thread as Mitte does it and on the HTTP thread; Mitte itself;
 *   - SQLite's floor: CPU per webhook of inserting S1's rows into Mitte's migrated schema, in ingest's
 *     multi-row transactions, on this thread with nothing else running;
 *   - S4 floors: the bare undici loop (S4's baseline) and the same loop sending through Mitte's outbound
 *     client with the headers a delivery adds (stored headers parsed and filtered, HMAC signature), with
 *     no claim and no record.
 * Options: --rounds=N (default 2); --load=autocannon|wrk (S1's load generator; default autocannon, S1's own;
 * wrk is Debian's `wrk` package, which the issue also allows); --only=s1,sqlite,s4 (parts to run).
 * docs/benchmarks.md quotes its output.
 */
import type { IncomingHttpHeaders } from "node:http";
import { performance } from "node:perf_hooks";
import {
  createAddressPolicy,
  createDeliveryRecorder,
  createIdGenerator,
  createOutboundHttp,
  forwardableHeaders,
  LOG_COLUMNS,
  openSqliteStorage,
  queuedLogRow,
  signWebhook,
  sqlitePragmas,
  systemClock,
} from "@mitte/server";
import Database from "better-sqlite3";
import { log, section, sleep, spread, waitForQuiet } from "./common.js";
import { autocannon, closedLoop, reqPerSec, wrk } from "./load.js";
import { makeBody, WEBHOOK_HEADERS } from "./payload.js";
import {
  createProUser,
  forkHelper,
  installCleanup,
  makeTempDir,
  removeTempDir,
  startMitteWithEndpoint,
  stopChild,
} from "./processes.js";
import type { SinkChildMessage, SinkDone } from "./sink-child.js";
import { CpuWindow, fmtInt, fmtRatio, median } from "./stats.js";

function option(name: string): string | undefined {
  return process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
}
const ROUNDS = Number(option("rounds") ?? 2);
const LOAD = option("load") ?? "autocannon";
if (LOAD !== "autocannon" && LOAD !== "wrk") throw new Error(`--load=${LOAD}: autocannon or wrk`);
const ONLY = new Set((option("only") ?? "s1,sqlite,s4").split(","));
const S1_CONNECTIONS = 50;
const S4_N = 20_000;
const S4_CONCURRENCY = 64;

// ---------------------------------------------------------------- S1 floors

const DURABLE_THREAD = "Fastify + commit, SQLite thread";
const DURABLE_INLINE = "Fastify + commit, HTTP thread";
type S1Target =
  | "node:http"
  | "node:http + 10 µs"
  | "node:http + 25 µs"
  | "Fastify, no work"
  | typeof DURABLE_THREAD
  | typeof DURABLE_INLINE
  | "Mitte";
const TARGET_WIDTH = DURABLE_THREAD.length;

/** S1's load on `url` (2 s warm-up, 8 s measured); CPU shares of the server and the load generator. */
async function loadRun(url: string, serverPid: number | undefined) {
  const options = { url, connections: S1_CONNECTIONS, headers: WEBHOOK_HEADERS, body: makeBody(1) };
  await waitForQuiet("an S1 floor");
  if (LOAD === "wrk") {
    await wrk({ ...options, duration: 2 });
    let wrkPid: number | undefined;
    let cpu: CpuWindow | undefined;
    const result = await wrk({
      ...options,
      duration: 8,
      onStart: (pid) => {
        wrkPid = pid;
        cpu = new CpuWindow({ server: serverPid, bench: () => (wrkPid ? [wrkPid] : []) });
      },
    });
    const shares = cpu!.stop();
    if (result.non2xx > 0 || result.errors > 0)
      throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
    return { reqPerSec: result.reqPerSec, cpu: shares };
  }
  await autocannon({ ...options, duration: 2 });
  const cpu = new CpuWindow({ server: serverPid, bench: process.pid });
  const result = await autocannon({ ...options, duration: 8 });
  const shares = cpu.stop();
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { reqPerSec: reqPerSec(result), cpu: shares };
}

const FLOOR_ENDPOINT_ID = "ep_floor";

/** Adds the endpoint the floors' logs belong to (their foreign key needs one). */
function insertFloorEndpoint(db: Database.Database, userId: string): void {
  const now = Date.now();
  db.prepare(
    "insert into endpoints (id, user_id, name, slug, target_url, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
  ).run(FLOOR_ENDPOINT_ID, userId, "floor", "mt_floor00000", "http://127.0.0.1:9/", now, now);
}

/** The insert parameters (LOG_COLUMNS order) of one S1-shaped log of the floor endpoint, queued as ingest stores it. */
function floorLogParameters(id: string, userId: string, requestHeaders: string, body: Buffer, now: number) {
  const row = queuedLogRow({
    id,
    userId,
    endpointId: FLOOR_ENDPOINT_ID,
    method: "POST",
    query: "",
    requestHeaders,
    body,
    source: "stripe",
    isTest: false,
    maxAttempts: 5,
    now,
  });
  return LOG_COLUMNS.map((column) => row[column]);
}

/** A database Mitte's CLI migrated, with a Pro user and the floor endpoint. */
async function floorDatabase(label: string): Promise<{ dataDir: string; filename: string; userId: string }> {
  const dataDir = makeTempDir(label);
  const { userId } = await createProUser(dataDir);
  const filename = `${dataDir}/mitte.db`;
  const db = new Database(filename);
  try {
    insertFloorEndpoint(db, userId);
  } finally {
    db.close();
  }
  return { dataDir, filename, userId };
}

async function s1Floor(target: S1Target): Promise<{ reqPerSec: number; cpu: Record<string, number> }> {
  if (target === "Mitte") {
    const { mitte, dataDir, ingestUrl } = await startMitteWithEndpoint("bounds", "http://127.0.0.1:9/unused");
    try {
      return await loadRun(ingestUrl, mitte.child.pid);
    } finally {
      await stopChild(mitte.child);
      removeTempDir(dataDir);
    }
  }
  if (target === DURABLE_THREAD || target === DURABLE_INLINE) {
    const { dataDir, filename, userId } = await floorDatabase("bounds-durable");
    const server = await forkHelper<{ type: string; port: number }>("durable-floor-server.ts", [
      filename,
      userId,
      FLOOR_ENDPOINT_ID,
      target === DURABLE_INLINE ? "inline" : "thread",
    ]);
    try {
      return await loadRun(`${server.url}/api/v1/h/floor`, server.child.pid);
    } finally {
      await stopChild(server.child);
      removeTempDir(dataDir);
    }
  }
  const spinUs = target === "node:http + 10 µs" ? 10 : target === "node:http + 25 µs" ? 25 : 0;
  const script = target === "Fastify, no work" ? "fastify-floor-server.ts" : "baseline-server.ts";
  const previous = process.env.BENCH_SPIN_US;
  process.env.BENCH_SPIN_US = String(spinUs);
  const server = await forkHelper<{ type: string; port: number }>(script).finally(() => {
    if (previous === undefined) delete process.env.BENCH_SPIN_US;
    else process.env.BENCH_SPIN_US = previous;
  });
  try {
    return await loadRun(`${server.url}/api/v1/h/floor`, server.child.pid);
  } finally {
    await stopChild(server.child);
  }
}

interface S1Floor {
  reqPerSec: number;
  /** CPU shares, 100% = one core: the server process, the load generator. */
  serverCpu: number;
  loadCpu: number;
}

async function runS1Floors(): Promise<Map<S1Target, S1Floor>> {
  section(
    `S1 floors — ${LOAD}, ${S1_CONNECTIONS} connections, 2 s warm-up + 8 s, ${ROUNDS} interleaved rounds`,
  );
  const targets: S1Target[] = [
    "node:http",
    "node:http + 10 µs",
    "node:http + 25 µs",
    "Fastify, no work",
    DURABLE_THREAD,
    DURABLE_INLINE,
    "Mitte",
  ];
  const runs = new Map<S1Target, number[]>(targets.map((t) => [t, []]));
  const loadCpu = new Map<S1Target, number[]>(targets.map((t) => [t, []]));
  const serverCpu = new Map<S1Target, number[]>(targets.map((t) => [t, []]));
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const target of targets) {
      const run = await s1Floor(target);
      runs.get(target)!.push(run.reqPerSec);
      loadCpu.get(target)!.push(run.cpu.bench ?? Number.NaN);
      serverCpu.get(target)!.push(run.cpu.server ?? Number.NaN);
      log(
        `${target.padEnd(TARGET_WIDTH)} round ${round}: ${fmtInt(run.reqPerSec)} req/s; CPU server ${Math.round(
          run.cpu.server ?? 0,
        )}%, ${LOAD} ${Math.round(run.cpu.bench ?? 0)}%`,
      );
      await sleep(300);
    }
  }
  const medians = new Map(
    targets.map((t): [S1Target, S1Floor] => [
      t,
      {
        reqPerSec: median(runs.get(t)!),
        serverCpu: median(serverCpu.get(t)!),
        loadCpu: median(loadCpu.get(t)!),
      },
    ]),
  );
  const baseline = medians.get("node:http")!.reqPerSec;
  for (const target of targets) {
    const values = spread(runs.get(target)!);
    log(
      `${target.padEnd(TARGET_WIDTH)} median ${fmtInt(values.median)} req/s (${fmtInt(values.min)}–${fmtInt(values.max)}) = ${fmtRatio(
        values.median / baseline,
      )} of node:http`,
    );
  }
  return medians;
}

// ---------------------------------------------------------------- SQLite floor

/** CPU µs per row (user, system) of inserting `total` S1-shaped logs in transactions of `perCommit`. */
function sqliteFloor(perCommit: number, total: number): { user: number; system: number } {
  const dataDir = makeTempDir("bounds-sqlite");
  try {
    return sqliteFloorIn(dataDir, perCommit, total);
  } finally {
    removeTempDir(dataDir);
  }
}

let migratedDir: string | null = null;

function sqliteFloorIn(dataDir: string, perCommit: number, total: number) {
  // A copy of a database Mitte's CLI migrated, so the schema (indexes, foreign keys) is exactly Mitte's.
  const db = new Database(`${migratedDir}/mitte.db`, { readonly: true });
  const copy = `${dataDir}/mitte.db`;
  db.exec(`vacuum into '${copy}'`);
  db.close();
  const target = new Database(copy);
  try {
    for (const pragma of sqlitePragmas()) target.pragma(pragma);
    const userId = (target.prepare("select id from users").get() as { id: string }).id;
    insertFloorEndpoint(target, userId);
    const placeholders = `(${LOG_COLUMNS.map(() => "?").join(", ")})`;
    const insert = target.prepare(
      `insert into webhook_logs (${LOG_COLUMNS.join(", ")}) values ${Array(perCommit).fill(placeholders).join(", ")}`,
    );
    const usage = target.prepare(
      "insert into usage_counters (user_id, period, request_count) values (?, ?, ?) on conflict (user_id, period) do update set request_count = usage_counters.request_count + ?",
    );
    const commit = target.transaction((parameters: unknown[]) => {
      insert.run(parameters);
      usage.run(userId, "2026-11", perCommit, perCommit);
    });
    const headers: IncomingHttpHeaders = {
      host: "127.0.0.1:3000",
      connection: "keep-alive",
      "content-length": "1024",
      ...WEBHOOK_HEADERS,
    };
    const requestHeaders = JSON.stringify(headers);
    const newId = createIdGenerator(systemClock);
    const body = Buffer.from(makeBody(1));
    const started = process.cpuUsage();
    for (let done = 0; done < total; done += perCommit) {
      const parameters: unknown[] = [];
      for (let i = 0; i < perCommit; i += 1) {
        parameters.push(...floorLogParameters(newId("log"), userId, requestHeaders, body, Date.now()));
      }
      commit(parameters);
    }
    const used = process.cpuUsage(started);
    return { user: used.user / total, system: used.system / total };
  } finally {
    target.close();
  }
}

async function runSqliteFloor(): Promise<{ perCommit: number; user: number; system: number }[]> {
  section("SQLite floor — S1's rows into Mitte's schema, on this thread alone (Mitte's pragmas: WAL, …)");
  const dataDir = makeTempDir("bounds-migrated");
  migratedDir = dataDir;
  try {
    await createProUser(dataDir);
    const results = [];
    for (const perCommit of [25, 50]) {
      const runs = Array.from({ length: ROUNDS + 1 }, () => sqliteFloor(perCommit, 50_000));
      const user = median(runs.map((r) => r.user));
      const system = median(runs.map((r) => r.system));
      log(
        `${perCommit} rows per commit: ${(user + system).toFixed(1)} µs CPU per webhook (user ${user.toFixed(
          1,
        )}, system ${system.toFixed(1)}), median of ${runs.length}`,
      );
      results.push({ perCommit, user, system });
    }
    return results;
  } finally {
    removeTempDir(dataDir);
  }
}

// ---------------------------------------------------------------- S4 floors

type Sink = Awaited<ReturnType<typeof forkHelper<SinkChildMessage>>>;
const isDone = (m: SinkChildMessage): m is SinkDone => m.type === "done";

type OutboundResult = Awaited<ReturnType<ReturnType<typeof createOutboundHttp>["send"]>>;
/** Records the outcome of post `n` (sent with `headers` at `startedAt`) durably. */
type Record_ = (
  n: number,
  result: OutboundResult,
  headers: Record<string, string>,
  startedAt: number,
) => Promise<void>;

/**
 * S4's baseline loop, but each request is built and sent as a delivery sends it, minus the claim and the
 * log's read; with `record`, also minus nothing of the bookkeeping: each outcome is committed as Mitte's
 * delivery commits it (attempt row and log update, group-committed by Mitte's recorder on its SQLite thread).
 */
async function outboundLoop(url: string, bodies: readonly Buffer[], record?: Record_): Promise<void> {
  const outbound = createOutboundHttp({ policy: createAddressPolicy(["127.0.0.1/32"]) });
  const stored = JSON.stringify({
    host: "127.0.0.1:3000",
    connection: "keep-alive",
    "content-length": "1024",
    ...WEBHOOK_HEADERS,
  });
  let next = 0;
  let failures = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const n = next++;
      const body = bodies[n]!;
      const headers = forwardableHeaders(JSON.parse(stored) as Record<string, string>);
      headers["x-mitte-attempt"] = "1";
      headers["x-mitte-delivery-id"] = `log_${String(n).padStart(26, "0")}`;
      headers["x-mitte-signature"] = signWebhook("whsec_bounds", Math.floor(Date.now() / 1000), body);
      const startedAt = Date.now();
      const result = await outbound.send({
        url,
        method: "POST",
        headers,
        body,
        timeoutMs: 30_000,
        maxResponseBytes: 64 * 1024,
      });
      if (result.kind !== "response" || result.status >= 300) failures += 1;
      if (record) await record(n, result, headers, startedAt);
    }
  };
  await Promise.all(Array.from({ length: S4_CONCURRENCY }, worker));
  await outbound.close();
  if (failures > 0) throw new Error(`outbound loop: ${failures} failed sends`);
}

/**
 * A database Mitte migrated holding one log per body (ids as the loop's delivery ids), and Mitte's
 * delivery recorder over Mitte's SQLite storage, recording each outcome as a delivery does.
 */
async function recordingStore(count: number): Promise<{ record: Record_; close: () => Promise<void> }> {
  const { dataDir, filename, userId } = await floorDatabase("bounds-s4-record");
  const db = new Database(filename);
  try {
    const now = Date.now();
    const insert = db.prepare(
      `insert into webhook_logs (${LOG_COLUMNS.join(", ")}) values (${LOG_COLUMNS.map(() => "?").join(", ")})`,
    );
    const requestHeaders = JSON.stringify({ "content-length": "1024", ...WEBHOOK_HEADERS });
    const body = Buffer.from(makeBody(1));
    db.transaction(() => {
      for (let n = 0; n < count; n += 1)
        insert.run(
          floorLogParameters(`log_${String(n).padStart(26, "0")}`, userId, requestHeaders, body, now),
        );
    })();
  } finally {
    db.close();
  }
  const storage = openSqliteStorage({ filename });
  const recorder = createDeliveryRecorder(storage);
  const newId = createIdGenerator(systemClock);
  const record: Record_ = async (n, result, headers, startedAt) => {
    const finishedAt = Date.now();
    const response = result.kind === "response" ? result : null;
    await recorder.submit({
      kind: "finished",
      attempt: {
        id: newId("att"),
        log_id: `log_${String(n).padStart(26, "0")}`,
        attempt: 1,
        started_at: startedAt,
        duration_ms: Math.round(result.durationMs),
        target_url: "http://127.0.0.1/",
        request_headers: JSON.stringify(headers),
        outcome: response && response.status < 400 ? "success" : "failure",
        response_status: response?.status ?? null,
        response_headers: response ? JSON.stringify(response.headers) : null,
        response_body: response?.body ?? null,
        response_truncated: response?.truncated ? 1 : 0,
        error_kind: null,
        error_message: null,
      },
      status: "delivered",
      nextAttemptAt: null,
      atMs: finishedAt,
    });
  };
  return {
    record,
    close: async () => {
      await recorder.flush();
      await storage.close();
      removeTempDir(dataDir);
    },
  };
}

type S4Client = "undici" | "outbound" | "outbound + record";
const S4_LABELS: Record<S4Client, string> = {
  undici: "bare undici loop",
  outbound: "Mitte's outbound client",
  "outbound + record": "outbound client + record",
};

async function s4Floor(sink: Sink, bodies: readonly Buffer[], client: S4Client) {
  const store = client === "outbound + record" ? await recordingStore(bodies.length) : null;
  sink.send({ type: "reset", expected: bodies.length });
  await waitForQuiet("an S4 floor");
  const cpu = new CpuWindow({ sink: sink.child.pid, bench: process.pid });
  const url = `${sink.url}/bounds-${client.replace(/\W+/g, "-")}`;
  try {
    if (client === "undici") {
      const result = await closedLoop({ url, bodies, concurrency: S4_CONCURRENCY, headers: WEBHOOK_HEADERS });
      if (result.errors > 0) throw new Error(`undici loop: ${result.errors} errors (${result.firstError})`);
    } else {
      await outboundLoop(url, bodies, store?.record);
    }
  } finally {
    await store?.close();
  }
  const done = await sink.next(isDone, 60_000);
  const shares = cpu.stop();
  return { ratePerSec: ((bodies.length - 1) * 1000) / (done.lastAt - done.firstAt), cpu: shares };
}

async function runS4Floors(): Promise<Map<string, number>> {
  section(
    `S4 floors — ${fmtInt(S4_N)} posts, ${S4_CONCURRENCY} in flight, to S4's sink process, ${ROUNDS} interleaved rounds`,
  );
  const sink = await forkHelper<SinkChildMessage>("sink-child.ts");
  const bodies = Array.from({ length: S4_N }, (_, i) => Buffer.from(makeBody(i)));
  const clients: S4Client[] = ["undici", "outbound", "outbound + record"];
  const runs = new Map<S4Client, number[]>(clients.map((client) => [client, []]));
  try {
    // Unmeasured: the first pass through a fresh sink and client runs cold.
    for (const client of clients) await s4Floor(sink, bodies.slice(0, 5_000), client);
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const client of clients) {
        const run = await s4Floor(sink, bodies, client);
        runs.get(client)!.push(run.ratePerSec);
        log(
          `${S4_LABELS[client].padEnd(24)} round ${round}: ${fmtInt(
            run.ratePerSec,
          )} posts/s; CPU client ${Math.round(run.cpu.bench ?? 0)}%, sink ${Math.round(run.cpu.sink ?? 0)}%`,
        );
      }
    }
  } finally {
    await stopChild(sink.child);
  }
  const medians = new Map([...runs].map(([client, values]) => [client, median(values)]));
  for (const client of ["outbound", "outbound + record"] as const)
    log(
      `${S4_LABELS[client]}: ${fmtInt(medians.get(client)!)} posts/s = ${fmtRatio(
        medians.get(client)! / medians.get("undici")!,
      )} of the bare loop (${fmtInt(medians.get("undici")!)} posts/s)`,
    );
  return medians;
}

/**
 * What the floors say about S1's bar. 1/throughput grows linearly with the work added per request (the +10
 * and +25 µs runs give the line), so the work that still allows 0.5× of node:http can be read off it, and so
 * can how much of that Fastify alone takes. SQLite's insert runs on another thread, but on the same 2 cores
 * that the HTTP thread and the load generator already fill.
 */
function s1Budget(floors: Map<S1Target, S1Floor>, sqliteUsPerRow: number): void {
  section("S1's bar against these floors");
  const period = (target: S1Target) => 1e6 / floors.get(target)!.reqPerSec;
  const slope = (period("node:http + 25 µs") - period("node:http + 10 µs")) / 15;
  const workFor = (periodUs: number) => 10 + (periodUs - period("node:http + 10 µs")) / slope;
  const half = floors.get("node:http")!.reqPerSec / 2;
  const allowed = workFor(1e6 / half);
  const fastify = workFor(period("Fastify, no work"));
  const mitte = workFor(period("Mitte"));
  const ten = floors.get("node:http + 10 µs")!;
  const twentyFive = floors.get("node:http + 25 µs")!;
  const loadCpu =
    twentyFive.loadCpu +
    ((ten.loadCpu - twentyFive.loadCpu) * (half - twentyFive.reqPerSec)) /
      (ten.reqPerSec - twentyFive.reqPerSec);
  // node:http's own CPU per request, plus the work allowed on top of it.
  const bare = floors.get("node:http")!;
  const httpThread = half * ((bare.serverCpu * 1e4) / bare.reqPerSec + allowed);
  const sqlite = (half * sqliteUsPerRow) / 1e4;
  log(
    `0.5× of node:http = ${fmtInt(half)} req/s: work the HTTP thread may add to node:http's ≈ ${allowed.toFixed(
      1,
    )} µs per request`,
  );
  log(
    `Fastify with no work of its own behaves like ≈ ${fastify.toFixed(1)} µs of that; Mitte like ≈ ${mitte.toFixed(1)} µs`,
  );
  log(
    `CPU at ${fmtInt(half)} req/s, 100% = one core: HTTP thread ≈ ${Math.round(
      httpThread / 1e4,
    )}%, ${LOAD} ≈ ${Math.round(loadCpu)}%, SQLite's insert and commit alone (${sqliteUsPerRow.toFixed(
      1,
    )} µs per webhook) ≈ ${Math.round(sqlite)}%: ${Math.round(httpThread / 1e4 + loadCpu + sqlite)}% of the machine's 200%`,
  );
}

installCleanup();
const startedAt = performance.now();
const s1Floors = ONLY.has("s1") ? await runS1Floors() : null;
const sqliteFloors = ONLY.has("sqlite") ? await runSqliteFloor() : null;
if (ONLY.has("s4")) await runS4Floors();
if (s1Floors && sqliteFloors) s1Budget(s1Floors, Math.min(...sqliteFloors.map((f) => f.user + f.system)));
console.log(`\nbench:bounds done in ${Math.round((performance.now() - startedAt) / 1000)} s`);
process.exit(0);
