/**
 * `npm run probe -- <s1|s3|s4> [options]`: where an embedded Mitte's CPU goes, per thread, for one scenario run.
 * Not a benchmark (no baseline, no verdict): a tool for judging a change by interleaved runs against another
 * checkout, which this machine's run-to-run noise (10–25 %) makes necessary. Per-thread CPU is read from
 * /proc/<pid>/task (Linux), so it shows how much each of the main thread, SQLite's thread and V8's helper
 * threads spends per webhook.
 *   s1: S1's load (autocannon, 50 connections, 2 s warm-up, 8 s measured), delivery off: µs per request.
 *   s4: S4's run (N webhooks ingested with delivery off, then delivered by a restarted Mitte, 64 in flight):
 *       deliveries/s (first→last receipt at the sink) and µs per delivery.
 *   s3: one S3 level (open loop at --rate with delivery on, run-in first): latency figures and CPU % per thread.
 * Options: --rounds=N (default 1), --rate=R (s3; default 3000), --n=N (s4; default 20000),
 * --node-args="…" (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"), --env='{"NAME":"value"}' (extra Mitte env).
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { startRunningMitte } from "./deploy.js";
import { logLatency, measureLatency, startRecordingSink } from "./latency.js";
import { autocannon, closedLoop, reqPerSec } from "./load.js";
import { makeBody, WEBHOOK_HEADERS } from "./payload.js";
import {
  createEndpoint,
  createProUser,
  forkHelper,
  installCleanup,
  makeTempDir,
  removeTempDir,
  startMitte,
  stopChild,
} from "./processes.js";
import type { SinkChildMessage, SinkDone } from "./sink-child.js";
import { fmtInt, ticksPerSecond } from "./stats.js";

const USAGE =
  "usage: npm run probe -- <s1|s3|s4> [--rounds=N] [--rate=R] [--n=N] [--node-args=…] [--env=JSON]";

function option(name: string): string | undefined {
  const prefix = `--${name}=`;
  return process.argv.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
}

const scenario = process.argv[2];
const rounds = Number(option("rounds") ?? 1);
const nodeArgs = (option("node-args") ?? "").split(" ").filter(Boolean);
const extraEnv = JSON.parse(option("env") ?? "{}") as Record<string, string>;

/** CPU time in ms of each thread of `pid`, keyed "tid name" (from /proc/<pid>/task/<tid>/stat). */
function threadCpuMs(pid: number): Map<string, number> {
  const msPerTick = 1000 / ticksPerSecond();
  const threads = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // The main thread's id is the process id; Node names every other thread "node" (or "v8"), so the worker
      // threads (SQLite's) and V8's helpers are told apart by their CPU, SQLite's being the largest of them.
      threads.set(
        `${tid} ${tid === String(pid) ? "main" : name}`,
        (Number(fields[11]) + Number(fields[12])) * msPerTick,
      );
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return threads;
}

/** Per thread that used CPU between `before` and `after`: µs per unit of work (`units`), largest first. */
function perUnit(before: Map<string, number>, after: Map<string, number>, units: number): string {
  const rows = [...after]
    .map(([thread, ms]) => ({ thread, ms: ms - (before.get(thread) ?? 0) }))
    .filter((row) => row.ms > 0)
    .sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((sum, row) => sum + row.ms, 0);
  const fmt = (ms: number) => ((ms * 1000) / units).toFixed(1);
  return `total ${fmt(total)} µs: ${rows.map((row) => `${row.thread.split(" ")[1]} ${fmt(row.ms)}`).join(", ")}`;
}

async function probeS1(round: number): Promise<void> {
  const dataDir = makeTempDir("probe-s1");
  try {
    const { apiKey } = await createProUser(dataDir);
    const mitte = await startMitte(dataDir, extraEnv, { nodeArgs });
    try {
      const endpoint = await createEndpoint(mitte.baseUrl, apiKey, "http://127.0.0.1:9/unused");
      const load = {
        url: `${mitte.baseUrl}/api/v1/h/${endpoint.slug}`,
        connections: 50,
        headers: WEBHOOK_HEADERS,
      };
      const body = makeBody(1);
      await autocannon({ ...load, duration: 2, body });
      const before = threadCpuMs(mitte.child.pid!);
      const result = await autocannon({ ...load, duration: 8, body });
      const after = threadCpuMs(mitte.child.pid!);
      console.log(
        `s1 round ${round}: ${fmtInt(reqPerSec(result))} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms; per request ${perUnit(before, after, result.requests.total)}`,
      );
    } finally {
      await stopChild(mitte.child);
    }
  } finally {
    removeTempDir(dataDir);
  }
}

async function probeS4(round: number, sink: Awaited<ReturnType<typeof forkHelper<SinkChildMessage>>>) {
  const n = Number(option("n") ?? 20_000);
  const bodies = Array.from({ length: n }, (_, i) => Buffer.from(makeBody(i)));
  const dataDir = makeTempDir("probe-s4");
  try {
    const { apiKey } = await createProUser(dataDir);
    const ingestOnly = await startMitte(dataDir);
    try {
      const endpoint = await createEndpoint(ingestOnly.baseUrl, apiKey, `${sink.url}/probe`);
      await closedLoop({
        url: `${ingestOnly.baseUrl}/api/v1/h/${endpoint.slug}`,
        bodies,
        concurrency: 50,
        headers: WEBHOOK_HEADERS,
      });
    } finally {
      await stopChild(ingestOnly.child);
    }
    sink.send({ type: "reset", expected: n });
    const env = {
      MITTE_DELIVERY_ENABLED: "true",
      MITTE_DELIVERY_CONCURRENCY: "64",
      MITTE_ENDPOINT_CONCURRENCY: "64",
      ...extraEnv,
    };
    const mitte = await startMitte(dataDir, env, { nodeArgs });
    try {
      const before = threadCpuMs(mitte.child.pid!);
      const done = await sink.next((m): m is SinkDone => m.type === "done", 120_000);
      const after = threadCpuMs(mitte.child.pid!);
      const rate = ((n - 1) * 1000) / (done.lastAt - done.firstAt);
      console.log(
        `s4 round ${round}: ${fmtInt(rate)} deliveries/s; per delivery ${perUnit(before, after, n)}`,
      );
    } finally {
      await stopChild(mitte.child);
    }
  } finally {
    removeTempDir(dataDir);
  }
}

async function probeS3(round: number): Promise<void> {
  const rate = Number(option("rate") ?? 3_000);
  const { sink, recorder } = await startRecordingSink(rate);
  try {
    const mitte = await startRunningMitte("embedded", "probe-s3", {
      MITTE_ENDPOINT_CONCURRENCY: "64",
      ...extraEnv,
    });
    try {
      const endpoint = await mitte.createEndpoint(`${sink.url}/s3`);
      const pid = mitte.processes[0]!.proc.child.pid!;
      const before = threadCpuMs(pid);
      const startedAt = performance.now();
      const figures = await measureLatency({
        origin: mitte.origin,
        slugs: [endpoint.slug],
        ratePerSec: rate,
        recorder,
        cpuPids: mitte.cpuPids(),
      });
      const wallMs = performance.now() - startedAt;
      const after = threadCpuMs(pid);
      console.log(`s3 round ${round} at ${fmtInt(rate)} req/s:`);
      logLatency(figures);
      const shares = [...after]
        .map(
          ([thread, ms]) =>
            [thread.split(" ")[1], (100 * (ms - (before.get(thread) ?? 0))) / wallMs] as const,
        )
        .filter(([, pct]) => pct >= 1)
        .map(([name, pct]) => `${name} ${Math.round(pct)}%`);
      console.log(`  threads over the run-in, the run and its drain: ${shares.join(", ")}`);
    } finally {
      await mitte.close();
    }
  } finally {
    await sink.close();
  }
}

installCleanup();
if (scenario !== "s1" && scenario !== "s3" && scenario !== "s4") {
  console.error(USAGE);
  process.exit(2);
}
const sink = scenario === "s4" ? await forkHelper<SinkChildMessage>("sink-child.ts") : undefined;
try {
  for (let round = 1; round <= rounds; round += 1) {
    if (scenario === "s1") await probeS1(round);
    else if (scenario === "s4") await probeS4(round, sink!);
    else await probeS3(round);
  }
} finally {
  sink?.child.kill();
}
process.exit(0);
