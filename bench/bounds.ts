/**
 * `npm run bench:bounds [-- --rounds=N]`: what this machine leaves of S1's and S4's ratios before Mitte does
 * its own work. Not a benchmark of Mitte (S1 is measured beside the floors only as a reference point): it
 * measures, in one run and with S1's and S4's own load generators,
 *   - S1 floors: the bare node:http baseline; the same server burning 10 and 25 µs per request (what a
 *     given amount of main-thread work costs in the ratio, load generator sharing the 2 cores); Fastify set up
 *     as Mitte's ingest route but doing nothing (the framework alone); Mitte itself;
 *   - SQLite's floor: CPU per webhook of inserting S1's rows into Mitte's migrated schema, in ingest's
 *     multi-row transactions, on this thread with nothing else running;
 *   - S4 floors: the bare undici loop (S4's baseline) and the same loop sending through Mitte's outbound
 *     client with the headers a delivery adds (stored headers parsed and filtered, HMAC signature), with
 *     no claim and no record.
 * docs/benchmarks.md quotes its output.
 */
import type { IncomingHttpHeaders } from "node:http";
import { performance } from "node:perf_hooks";
import {
  createAddressPolicy,
  createIdGenerator,
  createOutboundHttp,
  forwardableHeaders,
  LOG_COLUMNS,
  queuedLogRow,
  signWebhook,
  systemClock,
} from "@mitte/server";
import Database from "better-sqlite3";
import { log, section, sleep, spread, waitForQuiet } from "./common.js";
import { autocannon, closedLoop, reqPerSec } from "./load.js";
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

const ROUNDS = Number(process.argv.find((arg) => arg.startsWith("--rounds="))?.slice(9) ?? 2);
const S1_CONNECTIONS = 50;
const S4_N = 20_000;
const S4_CONCURRENCY = 64;

// ---------------------------------------------------------------- S1 floors

type S1Target = "node:http" | "node:http + 10 µs" | "node:http + 25 µs" | "Fastify, no work" | "Mitte";

async function autocannonRun(url: string, pids: Record<string, number | undefined>) {
  const options = { url, connections: S1_CONNECTIONS, headers: WEBHOOK_HEADERS, body: makeBody(1) };
  await waitForQuiet("an S1 floor");
  await autocannon({ ...options, duration: 2 });
  const cpu = new CpuWindow(pids);
  const result = await autocannon({ ...options, duration: 8 });
  const shares = cpu.stop();
  if (result.non2xx > 0 || result.errors > 0)
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  return { reqPerSec: reqPerSec(result), cpu: shares };
}

async function s1Floor(target: S1Target): Promise<{ reqPerSec: number; cpu: Record<string, number> }> {
  if (target === "Mitte") {
    const { mitte, dataDir, ingestUrl } = await startMitteWithEndpoint("bounds", "http://127.0.0.1:9/unused");
    try {
      return await autocannonRun(ingestUrl, { server: mitte.child.pid, bench: process.pid });
    } finally {
      await stopChild(mitte.child);
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
    return await autocannonRun(`${server.url}/api/v1/h/floor`, {
      server: server.child.pid,
      bench: process.pid,
    });
  } finally {
    await stopChild(server.child);
  }
}

interface S1Floor {
  reqPerSec: number;
  /** CPU shares, 100% = one core: the server process, autocannon. */
  serverCpu: number;
  loadCpu: number;
}

async function runS1Floors(): Promise<Map<S1Target, S1Floor>> {
  section(
    `S1 floors — autocannon, ${S1_CONNECTIONS} connections, 2 s warm-up + 8 s, ${ROUNDS} interleaved rounds`,
  );
  const targets: S1Target[] = [
    "node:http",
    "node:http + 10 µs",
    "node:http + 25 µs",
    "Fastify, no work",
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
        `${target.padEnd(18)} round ${round}: ${fmtInt(run.reqPerSec)} req/s; CPU server ${Math.round(
          run.cpu.server ?? 0,
        )}%, autocannon ${Math.round(run.cpu.bench ?? 0)}%`,
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
      `${target.padEnd(18)} median ${fmtInt(values.median)} req/s (${fmtInt(values.min)}–${fmtInt(values.max)}) = ${fmtRatio(
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
    for (const pragma of ["journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON"])
      target.pragma(pragma);
    const userId = (target.prepare("select id from users").get() as { id: string }).id;
    const now = Date.now();
    target
      .prepare(
        "insert into endpoints (id, user_id, name, slug, target_url, created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?)",
      )
      .run("ep_bounds", userId, "bounds", "mt_bounds000", "http://127.0.0.1:9/", now, now);
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
        const row = queuedLogRow({
          id: newId("log"),
          userId,
          endpointId: "ep_bounds",
          method: "POST",
          query: "",
          requestHeaders,
          body,
          source: "stripe",
          isTest: false,
          maxAttempts: 5,
          now: Date.now(),
        });
        for (const column of LOG_COLUMNS) parameters.push(row[column]);
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
  section("SQLite floor — S1's rows into Mitte's schema, on this thread alone (WAL, synchronous=NORMAL)");
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

/** S4's baseline loop, but each request is built and sent as a delivery sends it, minus claim and record. */
async function outboundLoop(url: string, bodies: readonly Buffer[]): Promise<void> {
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
      const result = await outbound.send({
        url,
        method: "POST",
        headers,
        body,
        timeoutMs: 30_000,
        maxResponseBytes: 64 * 1024,
      });
      if (result.kind !== "response" || result.status >= 300) failures += 1;
    }
  };
  await Promise.all(Array.from({ length: S4_CONCURRENCY }, worker));
  await outbound.close();
  if (failures > 0) throw new Error(`outbound loop: ${failures} failed sends`);
}

async function s4Floor(sink: Sink, bodies: readonly Buffer[], client: "undici" | "outbound") {
  sink.send({ type: "reset", expected: bodies.length });
  await waitForQuiet("an S4 floor");
  const cpu = new CpuWindow({ sink: sink.child.pid, bench: process.pid });
  const url = `${sink.url}/bounds-${client}`;
  if (client === "undici") {
    const result = await closedLoop({ url, bodies, concurrency: S4_CONCURRENCY, headers: WEBHOOK_HEADERS });
    if (result.errors > 0) throw new Error(`undici loop: ${result.errors} errors (${result.firstError})`);
  } else {
    await outboundLoop(url, bodies);
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
  const runs = new Map<string, number[]>([
    ["undici", []],
    ["outbound", []],
  ]);
  try {
    // Unmeasured: the first pass through a fresh sink and client runs cold.
    for (const client of ["undici", "outbound"] as const) await s4Floor(sink, bodies.slice(0, 5_000), client);
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const client of ["undici", "outbound"] as const) {
        const run = await s4Floor(sink, bodies, client);
        runs.get(client)!.push(run.ratePerSec);
        log(
          `${(client === "undici" ? "bare undici loop" : "Mitte's outbound client").padEnd(24)} round ${round}: ${fmtInt(
            run.ratePerSec,
          )} posts/s; CPU client ${Math.round(run.cpu.bench ?? 0)}%, sink ${Math.round(run.cpu.sink ?? 0)}%`,
        );
      }
    }
  } finally {
    await stopChild(sink.child);
  }
  const medians = new Map([...runs].map(([client, values]) => [client, median(values)]));
  log(
    `Mitte's outbound client: ${fmtInt(medians.get("outbound")!)} posts/s = ${fmtRatio(
      medians.get("outbound")! / medians.get("undici")!,
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
    )}%, autocannon ≈ ${Math.round(loadCpu)}%, SQLite's insert and commit alone (${sqliteUsPerRow.toFixed(
      1,
    )} µs per webhook) ≈ ${Math.round(sqlite)}%: ${Math.round(httpThread / 1e4 + loadCpu + sqlite)}% of the machine's 200%`,
  );
}

installCleanup();
const startedAt = performance.now();
const s1Floors = await runS1Floors();
const sqliteFloors = await runSqliteFloor();
await runS4Floors();
s1Budget(s1Floors, Math.min(...sqliteFloors.map((f) => f.user + f.system)));
console.log(`\nbench:bounds done in ${Math.round((performance.now() - startedAt) / 1000)} s`);
process.exit(0);
