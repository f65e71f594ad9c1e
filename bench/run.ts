/**
 * `npm run bench`: issue 6's benchmark list in both modes, each Mitte figure against a baseline measured in this
 * same run by the same load generator where the issue names one.
 *   embedded: S1 ingest throughput, S3 ingest→receipt latency at 25/50/75 % (and 10 %) of S1's ceiling, S4 delivery
 *     throughput, S4m (S4 with delivery monitoring off and on), S7 (100,000 queued while the target is down, then
 *     drained: RSS and drain rate), S8 (one hung target beside healthy endpoints);
 *   scale (PostgreSQL + a private Redis, separate api and worker processes): S1-scale, S3-scale, S4-scale (1 and
 *     2 workers), S7-scale, S8-scale.
 * `npm run bench -- --only=s7,s8` runs a subset (see `usage`). Prints markdown and writes it to
 * docs/benchmarks.md (a subset: to .bench-tmp/benchmarks-partial.md unless --out says otherwise). Exits non-zero
 * only when the run itself broke (not when a goal is missed).
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import {
  affordable,
  log,
  measureUndisturbed,
  noteDisturbedWindows,
  observations,
  planScenarios,
  RUNTIME_BUDGET_S,
  repeatBudget,
  type ScaleInfra,
  section,
  sleep,
  spread,
  startScenario,
  waitForQuiet,
} from "./common.js";
import { autocannon, closedLoop, reqPerSec } from "./load.js";
import { makeBody, WEBHOOK_HEADERS } from "./payload.js";
import {
  createEndpoint,
  createProUser,
  type ForkedHelper,
  forkHelper,
  installCleanup,
  type MitteProcess,
  makeTempDir,
  REPO_DIR,
  removeTempDir,
  startMitte,
  startMitteWithEndpoint,
  stopChild,
} from "./processes.js";
import {
  type Report,
  renderMarkdown,
  renderSummaryTable,
  runQuality,
  type S1Result,
  type S1Run,
  type S1ScaleResult,
  type S4BaselineRun,
  type S4MitteRun,
  type S4mResult,
  type S4mRun,
  type S4Result,
  type S4ScaleResult,
  type S4ScaleRun,
  type ScaleReport,
  type Spread,
  type Verdict,
} from "./report.js";
import { runS3, s3Verdict } from "./s3.js";
import { runS7, s7Verdicts } from "./s7.js";
import { runS8, s8Verdict } from "./s8.js";
import {
  createDeployment,
  PgAdmin,
  REDIS_FLAGS,
  type RedisServer,
  redisPersistence,
  startRedis,
} from "./scale.js";
import type { SinkChildMessage, SinkDone, SinkStats } from "./sink-child.js";
import {
  CpuWindow,
  describeCpu,
  fmtInt,
  fmtMs,
  fmtOverhead,
  fmtRatio,
  median,
  type PidSource,
} from "./stats.js";

const S1_CONNECTIONS = 50;
const S1_WARMUP_S = 2;
const S1_MEASURE_S = 8;
const S1_ROUNDS = 3;
/** An S1 run during which other load exceeded QUIET_PCT is repeated once, at most this many times a run. */
const S1_MAX_REPEATS = 3;
const S4_N = 20_000;
const S4_BASELINE_CONCURRENCY = 64;
const S4_INGEST_CONCURRENCY = 50;
/** S4 runs interleaved B, M, B, M, B, M. */
const S4_ROUNDS = 3;
const S4_MAX_REPEATS = 2;
// S4m: S4's delivery run with MITTE_DELIVERY_MONITORING=false and =true, same N and settings, interleaved.
/** Pairs (off, on) measured; pairs past S4M_MIN_PAIRS only while the time budget allows. */
const S4M_PAIRS = 5;
const S4M_MIN_PAIRS = 3;
/** Disturbed S4m runs are repeated, at most this many per bench and only while the time budget allows. */
const S4M_MAX_REPEATS = 2;
/** How long the bench waits, after the sink has everything, for the stats to count every delivery. */
const S4M_STATS_WAIT_MS = 3_000;
/** Issue 5: the stats and event path adds at most 10 % to the delivery throughput. */
const S4M_OVERHEAD_GOAL = 0.1;
const RATIO_GOAL = 0.5;

// Scale mode: PostgreSQL (shared server, fresh schema per deployment) + the bench's own redis-server.
const S1_SCALE_ROUNDS = 3;
const S1_SCALE_RATIO_GOAL = 0.2;
const S1_SCALE_MAX_REPEATS = 2;
const S4_SCALE_N = 20_000;
/** Used instead of S4_SCALE_N when the full N no longer fits the time budget. */
const S4_SCALE_N_SHORT = 10_000;
const S4_SCALE_WORKERS = [1, 2] as const;
/** S4-scale runs interleaved B, 1, 2, B, 1, 2, B, 1, 2, B; rounds past the first while the budget allows. */
const S4_SCALE_ROUNDS = 3;
const S4_SCALE_MAX_REPEATS = 1;
/** Seconds one S4-scale round (a baseline pass, a 1-worker and a 2-worker run) takes with the full N. */
const S4_SCALE_ROUND_S = 50;
const SCALE_WORKER_ENV = {
  MITTE_DELIVERY_ENABLED: "true",
  MITTE_DELIVERY_CONCURRENCY: "64",
  MITTE_ENDPOINT_CONCURRENCY: "64",
};

/** Delivery is disabled in S1, so the target is never called. */
const UNUSED_TARGET = "http://127.0.0.1:9/unused";

// ---------------------------------------------------------------- command line

const EMBEDDED = ["s1", "s3", "s4", "s4m", "s7", "s8"] as const;
const SCALE = ["s1-scale", "s3-scale", "s4-scale", "s7-scale", "s8-scale"] as const;
const ALL = [...EMBEDDED, ...SCALE] as const;
type Scenario = (typeof ALL)[number];

/** Rough durations (s) on the 2-core reference machine, for the time budget. */
const ESTIMATE_S: Record<Scenario, number> = {
  s1: 85,
  s3: 100,
  s4: 55,
  s4m: 70,
  s7: 95,
  s8: 95,
  "s1-scale": 95,
  "s3-scale": 120,
  "s4-scale": 160,
  "s7-scale": 220,
  "s8-scale": 140,
};

function usage(): string {
  return [
    "usage: npm run bench [-- options]",
    `  --only=LIST           comma-separated scenarios: ${ALL.join(", ")}; or embedded, scale`,
    "  --ceiling=N           embedded ingest ceiling (req/s) for S3/S8 when S1 is not run",
    "  --scale-ceiling=N     scale-mode ingest ceiling (req/s) for S3-scale/S8-scale when S1-scale is not run",
    "  --out=FILE            where the markdown goes (default: docs/benchmarks.md for a full run,",
    "                        .bench-tmp/benchmarks-partial.md for a subset)",
  ].join("\n");
}

interface Options {
  selected: Set<Scenario>;
  subset: boolean;
  ceiling: number | null;
  scaleCeiling: number | null;
  out: string;
}

function parseArgs(argv: readonly string[]): Options {
  let only: string[] | null = null;
  let ceiling: number | null = null;
  let scaleCeiling: number | null = null;
  let out: string | null = null;
  const positive = (name: string, value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0)
      throw new Error(`${name} needs a positive number, got "${value}"\n${usage()}`);
    return n;
  };
  for (const arg of argv) {
    const [name, value = ""] = arg.split(/=(.*)/s, 2) as [string, string | undefined];
    if (name === "--only")
      only = value
        .split(",")
        .map((s) => s.trim().toLowerCase())
        .filter(Boolean);
    else if (name === "--ceiling") ceiling = positive(name, value);
    else if (name === "--scale-ceiling") scaleCeiling = positive(name, value);
    else if (name === "--out") out = resolve(value);
    else if (name === "--help" || name === "-h") {
      console.log(usage());
      process.exit(0);
    } else throw new Error(`unknown option ${arg}\n${usage()}`);
  }
  const selected = new Set<Scenario>();
  for (const name of only ?? ALL) {
    if (name === "embedded" || name === "scale") {
      for (const s of name === "embedded" ? EMBEDDED : SCALE) selected.add(s);
    } else if ((ALL as readonly string[]).includes(name)) selected.add(name as Scenario);
    else throw new Error(`unknown scenario "${name}"\n${usage()}`);
  }
  const subset = selected.size < ALL.length;
  return {
    selected,
    subset,
    ceiling,
    scaleCeiling,
    out: out ?? join(REPO_DIR, subset ? ".bench-tmp/benchmarks-partial.md" : "docs/benchmarks.md"),
  };
}

// ---------------------------------------------------------------- S1

async function measureS1(url: string, pids: Record<string, PidSource>, beforeWindow?: () => Promise<void>) {
  const options = { url, connections: S1_CONNECTIONS, headers: WEBHOOK_HEADERS, body: makeBody(1) };
  await waitForQuiet("this run");
  await autocannon({ ...options, duration: S1_WARMUP_S });
  await beforeWindow?.();
  const cpu = new CpuWindow(pids);
  const result = await autocannon({ ...options, duration: S1_MEASURE_S });
  return { result, cpu: cpu.stop() };
}

async function s1Baseline(round: number): Promise<S1Run> {
  const server = await forkHelper<{ type: string; port: number }>("baseline-server.ts");
  try {
    const { result, cpu } = await measureS1(`${server.url}/api/v1/h/baseline`, {
      server: server.child.pid,
      bench: process.pid,
    });
    return toS1Run("baseline", round, result, cpu, 0);
  } finally {
    await stopChild(server.child);
  }
}

async function s1Mitte(round: number): Promise<S1Run> {
  const { mitte, dataDir, ingestUrl } = await startMitteWithEndpoint("s1", UNUSED_TARGET);
  try {
    const { result, cpu } = await measureS1(ingestUrl, { mitte: mitte.child.pid, bench: process.pid });
    return toS1Run("mitte", round, result, cpu, mitte.output.total);
  } finally {
    const stopped = await stopChild(mitte.child);
    if (stopped.code !== 0)
      observations.push(`S1 round ${round}: Mitte exited with ${stopped.code ?? stopped.signal} on SIGTERM.`);
    if (mitte.output.total > 0) {
      observations.push(
        `S1 round ${round}: Mitte printed ${mitte.output.total} log line(s) at warn or above; last: ${mitte.output.lines.at(-1)}`,
      );
    }
    removeTempDir(dataDir);
  }
}

function toS1Run(
  target: S1Run["target"],
  round: number,
  result: Awaited<ReturnType<typeof autocannon>>,
  cpu: Record<string, number>,
  serverLogLines: number,
): S1Run {
  const statusCodes = Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]),
  );
  const run: S1Run = {
    target,
    round,
    reqPerSec: reqPerSec(result),
    ok2xx: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    cpu,
    serverLogLines,
  };
  log(
    `${target.padEnd(8)} round ${round}: ${fmtInt(run.reqPerSec)} req/s, 2xx ${fmtInt(run.ok2xx)}, non-2xx ${fmtInt(
      run.non2xx,
    )}, errors ${run.errors}, latency p50 ${run.latencyP50Ms} ms p99 ${run.latencyP99Ms} ms; CPU ${describeCpu(cpu)}`,
  );
  if (run.non2xx > 0) log(`  !! non-2xx responses: ${JSON.stringify(statusCodes)}`);
  return run;
}

/** S1's figures from its rounds: Mitte's spread over the runs of `target`, the ratio, Mitte's errors. */
function s1Figures(runs: S1Run[], discarded: S1Run[], baseline: Spread, target: S1Run["target"]): S1Result {
  const mitteRuns = runs.filter((r) => r.target === target);
  const mitte = spread(mitteRuns.map((r) => r.reqPerSec));
  return {
    connections: S1_CONNECTIONS,
    warmupSeconds: S1_WARMUP_S,
    measureSeconds: S1_MEASURE_S,
    runs,
    discarded,
    baseline,
    mitte,
    ratio: mitte.median / baseline.median,
    mitteNon2xx: mitteRuns.reduce((sum, r) => sum + r.non2xx, 0),
    mitteErrors: mitteRuns.reduce((sum, r) => sum + r.errors, 0),
  };
}

async function runS1(): Promise<S1Result> {
  section(
    `S1 ingest throughput — autocannon, ${S1_CONNECTIONS} connections, ${S1_WARMUP_S} s warm-up + ${S1_MEASURE_S} s`,
  );
  const runs: S1Run[] = [];
  const discarded: S1Run[] = [];
  const repeats = repeatBudget(S1_MAX_REPEATS, 15);
  for (let round = 1; round <= S1_ROUNDS; round += 1) {
    for (const measure of [s1Baseline, s1Mitte]) {
      const run = await measureUndisturbed(
        () => measure(round),
        repeats,
        discarded,
        () => sleep(300),
      );
      runs.push(run);
      await sleep(300);
    }
  }
  const baseline = spread(runs.filter((r) => r.target === "baseline").map((r) => r.reqPerSec));
  const result = s1Figures(runs, discarded, baseline, "mitte");
  const { mitte } = result;
  log(
    `baseline median ${fmtInt(baseline.median)} req/s (range ${fmtInt(baseline.min)}–${fmtInt(baseline.max)})`,
  );
  log(`mitte    median ${fmtInt(mitte.median)} req/s (range ${fmtInt(mitte.min)}–${fmtInt(mitte.max)})`);
  log(`ratio ${fmtRatio(result.ratio)} (goal ≥ ${RATIO_GOAL}×)`);
  return result;
}

/**
 * The ingest ceiling S3 and S8 take their rates from: the S1 (or S1-scale) median of this run, else the
 * command line's, else one S1 Mitte run (or one S1-scale api run) measured for the purpose.
 */
async function ceilingFor(
  mode: "embedded" | "scale",
  measured: { mitte: { median: number } } | undefined,
  given: number | null,
  infra?: ScaleInfra,
): Promise<{ ceiling: number; source: string }> {
  const s1Name = mode === "scale" ? "S1-scale" : "S1";
  if (measured) return { ceiling: measured.mitte.median, source: `${s1Name} median of this run` };
  if (given !== null) {
    return {
      ceiling: given,
      source: `given on the command line (--${mode === "scale" ? "scale-" : ""}ceiling)`,
    };
  }
  section(`${s1Name} ceiling for the latency scenarios — one Mitte run (${s1Name} itself was not selected)`);
  const run = mode === "scale" ? await s1ScaleMitte(1, infra!) : await s1Mitte(1);
  return {
    ceiling: run.reqPerSec,
    source: `one ${s1Name} Mitte run made for it (${s1Name} was not selected)`,
  };
}

// ---------------------------------------------------------------- S4

type DoneMessage = SinkDone;
type StatsMessage = SinkStats;
const isDone = (m: SinkChildMessage): m is DoneMessage => m.type === "done";
const isStats = (m: SinkChildMessage): m is StatsMessage => m.type === "stats";

type Sink = ForkedHelper<SinkChildMessage>;

/**
 * Waits until the sink has every expected webhook (up to 120 s). If it never does, asks for its counts so
 * far, records an observation naming `who` delivered too little, and reports the run incomplete.
 */
async function awaitAllReceived(
  sink: Sink,
  expected: number,
  label: string,
  who: string,
): Promise<{ done: DoneMessage | StatsMessage; complete: boolean }> {
  try {
    return { done: await sink.next(isDone, 120_000), complete: true };
  } catch {
    sink.send({ type: "stats" });
    const done = await sink.next(isStats, 5_000);
    observations.push(
      `${label}: ${who} delivered only ${done.distinct} of ${expected} within 120 s of becoming healthy.`,
    );
    return { done, complete: false };
  }
}

/** One baseline pass: undici request loop, 64 in flight, straight to the sink. */
async function s4BaselineRun(sink: Sink, bodies: readonly Buffer[]): Promise<S4BaselineRun> {
  sink.send({ type: "reset", expected: bodies.length });
  await waitForQuiet("the S4 baseline");
  const cpu = new CpuWindow({ sink: sink.child.pid, bench: process.pid });
  const base = await closedLoop({
    url: `${sink.url}/s4-baseline`,
    bodies,
    concurrency: S4_BASELINE_CONCURRENCY,
    headers: WEBHOOK_HEADERS,
  });
  if (base.errors > 0) throw new Error(`S4 baseline had ${base.errors} transport errors: ${base.firstError}`);
  const done = await sink.next(isDone, 30_000);
  const cpuShares = cpu.stop();
  const windowMs = done.lastAt - done.firstAt;
  const run: S4BaselineRun = {
    ratePerSec: ((bodies.length - 1) * 1000) / windowMs,
    windowMs,
    clientMs: base.durationMs,
    ok: base.ok,
    statuses: base.statuses,
    received: done.distinct,
    cpu: cpuShares,
  };
  log(
    `baseline: ${fmtInt(run.ratePerSec)} deliveries/s (${fmtInt(bodies.length)} in ${fmtMs(
      windowMs,
    )} first→last receipt); client ${fmtMs(base.durationMs)}; statuses ${JSON.stringify(
      base.statuses,
    )}; CPU ${describeCpu(cpuShares)}`,
  );
  return run;
}

/** The delivery settings of S4 and S4m (S4m adds only MITTE_DELIVERY_MONITORING). */
const S4_DELIVERY_ENV = {
  MITTE_DELIVERY_ENABLED: "true",
  MITTE_DELIVERY_CONCURRENCY: "64",
  MITTE_ENDPOINT_CONCURRENCY: "64",
};

interface S4Ingested {
  dataDir: string;
  apiKey: string;
  endpointId: string;
  ingest: Awaited<ReturnType<typeof closedLoop>>;
  shutdown: string;
}

/** A fresh data dir, pro user and endpoint (target: the sink); N ingested with delivery off; Mitte stopped. */
async function s4Ingest(
  sink: Sink,
  bodies: readonly Buffer[],
  label: string,
  path: string,
): Promise<S4Ingested> {
  const dataDir = makeTempDir(label.toLowerCase());
  try {
    const { apiKey } = await createProUser(dataDir);
    const ingestOnly = await startMitte(dataDir);
    let endpoint: { id: string; slug: string };
    let ingest: Awaited<ReturnType<typeof closedLoop>>;
    try {
      endpoint = await createEndpoint(ingestOnly.baseUrl, apiKey, `${sink.url}${path}`);
      ingest = await closedLoop({
        url: `${ingestOnly.baseUrl}/api/v1/h/${endpoint.slug}`,
        bodies,
        concurrency: S4_INGEST_CONCURRENCY,
        headers: WEBHOOK_HEADERS,
      });
    } catch (error) {
      await stopChild(ingestOnly.child);
      throw error;
    }
    log(
      `mitte ingest (delivery off): ${fmtInt(ingest.ok)} × 2xx in ${fmtMs(ingest.durationMs)}; statuses ${JSON.stringify(
        ingest.statuses,
      )}`,
    );
    const stopped = await stopChild(ingestOnly.child);
    const shutdown = stopped.killed
      ? "did not exit within 15 s of SIGTERM, killed"
      : `exit code ${stopped.code ?? stopped.signal} after SIGTERM`;
    log(`mitte stopped: ${shutdown}`);
    if (ingest.ok !== bodies.length) {
      observations.push(
        `${label}: only ${ingest.ok} of ${bodies.length} ingests were 2xx (${JSON.stringify(ingest.statuses)}, errors ${ingest.errors}).`,
      );
    }
    if (ingestOnly.output.total > 0) {
      observations.push(
        `${label} ingest: Mitte printed ${ingestOnly.output.total} log line(s) at warn or above; last: ${ingestOnly.output.lines.at(-1)}`,
      );
    }
    return { dataDir, apiKey, endpointId: endpoint.id, ingest, shutdown };
  } catch (error) {
    removeTempDir(dataDir);
    throw error;
  }
}

type S4Delivery = Omit<
  S4MitteRun,
  "round" | "ingestOk" | "ingestStatuses" | "ingestMs" | "shutdown" | "discarded"
>;

/**
 * Starts Mitte on `dataDir` with delivery on (`env`); the sink times first→last receipt of `expected` webhooks.
 * `beforeStop` runs once the sink has them all (or gave up), while Mitte is still up, outside the measurement.
 */
async function s4Deliver(
  sink: Sink,
  dataDir: string,
  expected: number,
  env: Record<string, string>,
  label: string,
  beforeStop?: (mitte: MitteProcess, distinct: number) => Promise<void>,
): Promise<S4Delivery> {
  sink.send({ type: "reset", expected });
  await waitForQuiet(`the ${label} Mitte delivery run`);
  const delivering = await startMitte(dataDir, env);
  try {
    const cpu = new CpuWindow({ mitte: delivering.child.pid, sink: sink.child.pid, bench: process.pid });
    const { done, complete } = await awaitAllReceived(sink, expected, label, "Mitte");
    const doneAt = performance.now();
    const cpuShares = cpu.stop();
    const windowMs = done.lastAt - done.firstAt;
    if (done.total !== done.distinct) {
      observations.push(`${label}: the sink saw ${done.total - done.distinct} duplicate deliveries.`);
    }
    await beforeStop?.(delivering, done.distinct);
    if (delivering.output.total > 0) {
      observations.push(
        `${label} delivery: Mitte printed ${delivering.output.total} log line(s) at warn or above; last: ${delivering.output.lines.at(-1)}`,
      );
    }
    return {
      readyMs: delivering.readyAt - delivering.spawnedAt,
      ratePerSec: ((done.distinct - 1) * 1000) / windowMs,
      windowMs,
      readyToDoneMs: doneAt - delivering.readyAt,
      spawnToDoneMs: doneAt - delivering.spawnedAt,
      received: done.total,
      distinct: done.distinct,
      complete,
      cpu: cpuShares,
      serverLogLines: delivering.output.total,
    };
  } finally {
    await stopChild(delivering.child);
  }
}

/** Ingest N with delivery off, stop, restart with delivery on; the sink times first→last receipt. */
async function s4MitteRun(sink: Sink, bodies: readonly Buffer[], round: number): Promise<S4MitteRun> {
  const { dataDir, ingest, shutdown } = await s4Ingest(sink, bodies, "S4", "/s4");
  try {
    const delivered = await s4Deliver(sink, dataDir, ingest.ok, S4_DELIVERY_ENV, "S4");
    const result: S4MitteRun = {
      round,
      ingestOk: ingest.ok,
      ingestStatuses: ingest.statuses,
      ingestMs: ingest.durationMs,
      shutdown,
      ...delivered,
    };
    log(
      `mitte (round ${round}): ${fmtInt(result.ratePerSec)} deliveries/s (${fmtInt(result.distinct)} distinct, ${fmtInt(
        result.received,
      )} total in ${fmtMs(result.windowMs)} first→last receipt); spawn→healthz ${fmtMs(result.readyMs)}, healthz→done ${fmtMs(
        result.readyToDoneMs,
      )}; CPU ${describeCpu(result.cpu)}`,
    );
    return result;
  } finally {
    removeTempDir(dataDir);
  }
}

/** B, M, B, M, B, M: a baseline pass (about a second) before each Mitte run; medians and ranges of both. */
async function runS4(sink: Sink, bodies: readonly Buffer[]): Promise<S4Result> {
  section(`S4 delivery throughput — N = ${fmtInt(bodies.length)}, ${S4_ROUNDS} rounds interleaved`);
  const baselineRuns: S4BaselineRun[] = [];
  const mitteRuns: S4MitteRun[] = [];
  const discardedMitte: S4MitteRun[] = [];
  const repeats = repeatBudget(S4_MAX_REPEATS, 15);
  for (let round = 1; round <= S4_ROUNDS; round += 1) {
    baselineRuns.push(await s4BaselineRun(sink, bodies));
    mitteRuns.push(
      await measureUndisturbed(
        () => s4MitteRun(sink, bodies, round),
        repeats,
        discardedMitte,
        () => {},
      ),
    );
  }
  const baseline = spread(baselineRuns.map((r) => r.ratePerSec));
  const mitte = spread(mitteRuns.map((r) => r.ratePerSec));
  const ratio = mitte.median / baseline.median;
  log(
    `baseline median ${fmtInt(baseline.median)} deliveries/s (range ${fmtInt(baseline.min)}–${fmtInt(baseline.max)})`,
  );
  log(
    `mitte    median ${fmtInt(mitte.median)} deliveries/s (range ${fmtInt(mitte.min)}–${fmtInt(mitte.max)})`,
  );
  log(`ratio ${fmtRatio(ratio)} (goal ≥ ${RATIO_GOAL}×)`);
  return { n: bodies.length, baselineRuns, mitteRuns, discardedMitte, baseline, mitte, ratio };
}

/** Delivery attempts in the endpoint's stats (GET /api/v1/endpoints/:id/stats, totals.requests); null if unreadable. */
async function recordedAttempts(
  baseUrl: string,
  snapshot: S4Ingested,
  waitFor: number,
  label: string,
): Promise<number | null> {
  const deadline = performance.now() + S4M_STATS_WAIT_MS;
  let requests: number | null = null;
  for (;;) {
    try {
      const response = await fetch(`${baseUrl}/api/v1/endpoints/${snapshot.endpointId}/stats`, {
        headers: { authorization: `Bearer ${snapshot.apiKey}` },
        signal: AbortSignal.timeout(2_000),
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`answered ${response.status}: ${text.slice(0, 200)}`);
      const parsed = JSON.parse(text) as { totals?: { requests?: number } | null };
      requests = parsed.totals?.requests ?? 0;
    } catch (error) {
      observations.push(
        `${label}: could not read the endpoint's stats: ${error instanceof Error ? error.message : String(error)}`,
      );
      return null;
    }
    if (requests >= waitFor || performance.now() > deadline) return requests;
    await sleep(50);
  }
}

/** One S4m delivery run on a fresh copy of the ingested data dir, with monitoring off or on. */
async function s4mRun(
  sink: Sink,
  snapshot: S4Ingested,
  monitoring: boolean,
  pair: number,
  order: number,
): Promise<S4mRun> {
  const label = `S4m ${monitoring ? "on" : "off"} #${order}`;
  const dataDir = makeTempDir("s4m-run");
  try {
    cpSync(snapshot.dataDir, dataDir, { recursive: true });
    const stats = { requests: null as number | null };
    const delivered = await s4Deliver(
      sink,
      dataDir,
      snapshot.ingest.ok,
      { ...S4_DELIVERY_ENV, MITTE_DELIVERY_MONITORING: String(monitoring) },
      label,
      async (mitte, distinct) => {
        // Outside the measured window. With monitoring off nothing may appear: give a stray batched write a
        // moment to land, then read once. With it on, wait (bounded) until every delivery is counted.
        if (!monitoring) await sleep(300);
        stats.requests = await recordedAttempts(mitte.baseUrl, snapshot, monitoring ? distinct : 0, label);
      },
    );
    const run: S4mRun = { monitoring, pair, order, statsRequests: stats.requests, ...delivered };
    log(
      `monitoring ${monitoring ? "on " : "off"} (#${order}): ${fmtInt(run.ratePerSec)} deliveries/s (${fmtInt(
        run.distinct,
      )} distinct, ${fmtInt(run.received)} total in ${fmtMs(run.windowMs)} first→last receipt); attempts in stats ${
        run.statsRequests === null ? "n/a" : fmtInt(run.statsRequests)
      }; CPU ${describeCpu(run.cpu)}`,
    );
    return run;
  } finally {
    removeTempDir(dataDir);
  }
}

/**
 * S4 with MITTE_DELIVERY_MONITORING=false and =true, interleaved off, on, off, on, …: the N webhooks are
 * ingested once (delivery off), and every delivery run starts Mitte on a fresh copy of that stopped data dir.
 */
async function runS4m(sink: Sink, bodies: readonly Buffer[]): Promise<S4mResult> {
  section(
    `S4m delivery monitoring overhead — N = ${fmtInt(bodies.length)}, MITTE_DELIVERY_MONITORING=false vs true, interleaved`,
  );
  const snapshot = await s4Ingest(sink, bodies, "S4m", "/s4m");
  try {
    const runs: S4mRun[] = [];
    const discarded: S4mRun[] = [];
    const repeats = repeatBudget(S4M_MAX_REPEATS, 8);
    let order = 0;
    for (let pair = 1; pair <= S4M_PAIRS; pair += 1) {
      if (pair > S4M_MIN_PAIRS && !affordable(15)) {
        log(`(the run is late: ${pair - 1} pairs instead of ${S4M_PAIRS})`);
        break;
      }
      for (const monitoring of [false, true]) {
        order += 1;
        const run = await measureUndisturbed(
          () => s4mRun(sink, snapshot, monitoring, pair, order),
          repeats,
          discarded,
          () => {
            order += 1;
          },
        );
        runs.push(run);
      }
    }
    const off = spread(runs.filter((r) => !r.monitoring).map((r) => r.ratePerSec));
    const on = spread(runs.filter((r) => r.monitoring).map((r) => r.ratePerSec));
    const overhead = 1 - on.median / off.median;
    const pairOverheads: number[] = [];
    for (let pair = 1; pair <= S4M_PAIRS; pair += 1) {
      const offRun = runs.find((r) => r.pair === pair && !r.monitoring);
      const onRun = runs.find((r) => r.pair === pair && r.monitoring);
      if (offRun && onRun) pairOverheads.push(1 - onRun.ratePerSec / offRun.ratePerSec);
    }
    const switchVerified = runs.every((r) =>
      r.monitoring ? r.statsRequests !== null && r.statsRequests >= r.distinct : r.statsRequests === 0,
    );
    if (!switchVerified) {
      observations.push(
        `S4m: the endpoint's stats do not show the switch working (expected 0 attempts with monitoring off and every delivery with it on): ${runs
          .map(
            (r) => `#${r.order} ${r.monitoring ? "on" : "off"} ${r.statsRequests ?? "n/a"} of ${r.distinct}`,
          )
          .join(", ")}.`,
      );
    }
    log(
      `monitoring off: median ${fmtInt(off.median)} deliveries/s (range ${fmtInt(off.min)}–${fmtInt(off.max)})`,
    );
    log(
      `monitoring on:  median ${fmtInt(on.median)} deliveries/s (range ${fmtInt(on.min)}–${fmtInt(on.max)})`,
    );
    log(
      `overhead 1 − on/off = ${fmtOverhead(overhead)} (goal ≤ ${fmtOverhead(S4M_OVERHEAD_GOAL)}); per pair: ${pairOverheads
        .map(fmtOverhead)
        .join(", ")}`,
    );
    return {
      n: bodies.length,
      ingestOk: snapshot.ingest.ok,
      ingestStatuses: snapshot.ingest.statuses,
      ingestMs: snapshot.ingest.durationMs,
      shutdown: snapshot.shutdown,
      pairsPlanned: S4M_PAIRS,
      runs,
      discarded,
      off,
      on,
      overhead,
      pairOverheads,
      switchVerified,
    };
  } finally {
    removeTempDir(snapshot.dataDir);
  }
}

/** S4 and/or S4m (as selected) on one sink child and the same N bodies. */
async function runEmbeddedDelivery(want: {
  s4: boolean;
  s4m: boolean;
}): Promise<{ s4?: S4Result; s4m?: S4mResult }> {
  const bodies = Array.from({ length: S4_N }, (_, i) => Buffer.from(makeBody(i)));
  const sink = await forkHelper<SinkChildMessage>("sink-child.ts");
  try {
    let s4: S4Result | undefined;
    let s4m: S4mResult | undefined;
    if (want.s4) {
      startScenario("s4");
      s4 = await runS4(sink, bodies);
    }
    if (want.s4m) {
      startScenario("s4m");
      s4m = await runS4m(sink, bodies);
    }
    return { ...(s4 ? { s4 } : {}), ...(s4m ? { s4m } : {}) };
  } finally {
    await stopChild(sink.child);
  }
}

// ---------------------------------------------------------------- scale mode

async function s1ScaleMitte(round: number, infra: ScaleInfra): Promise<S1Run> {
  const deployment = await createDeployment("s1", infra.redis, infra.admin);
  try {
    const api = await startMitte(deployment.dataDir, deployment.env, { role: "api" });
    try {
      const endpoint = await createEndpoint(api.baseUrl, deployment.apiKey, UNUSED_TARGET);
      const { result, cpu } = await measureS1(
        `${api.baseUrl}/api/v1/h/${endpoint.slug}`,
        {
          api: api.child.pid,
          redis: infra.redis.child.pid,
          postgres: deployment.backends.pids,
          bench: process.pid,
        },
        () => deployment.backends.sync(),
      );
      return toS1Run("mitte-api", round, result, cpu, api.output.total);
    } finally {
      const stopped = await stopChild(api.child);
      if (stopped.code !== 0)
        observations.push(
          `S1-scale round ${round}: the api process exited with ${stopped.code ?? stopped.signal} on SIGTERM.`,
        );
      if (api.output.total > 0) {
        observations.push(
          `S1-scale round ${round}: the api process printed ${api.output.total} log line(s) at warn or above; last: ${api.output.lines.at(-1)}`,
        );
      }
    }
  } finally {
    await deployment.close();
  }
}

const workerLabel = (workers: number) => `${workers} worker${workers === 1 ? "" : "s"}`;

/**
 * A fresh deployment: one api process ingests N with no worker running and is stopped; then `workers` worker
 * processes start together and the sink times first→last receipt.
 */
async function s4ScaleRun(
  sink: Sink,
  bodies: readonly Buffer[],
  workers: number,
  round: number,
  infra: ScaleInfra,
): Promise<S4ScaleRun> {
  const label = `S4-scale ${workerLabel(workers)} round ${round}`;
  const deployment = await createDeployment(`s4w${workers}`, infra.redis, infra.admin);
  try {
    const api = await startMitte(deployment.dataDir, deployment.env, { role: "api" });
    let ingest: Awaited<ReturnType<typeof closedLoop>>;
    let apiShutdown: string;
    try {
      const endpoint = await createEndpoint(api.baseUrl, deployment.apiKey, `${sink.url}/s4-scale`);
      ingest = await closedLoop({
        url: `${api.baseUrl}/api/v1/h/${endpoint.slug}`,
        bodies,
        concurrency: S4_INGEST_CONCURRENCY,
        headers: WEBHOOK_HEADERS,
      });
    } finally {
      const stopped = await stopChild(api.child);
      apiShutdown = stopped.killed
        ? "did not exit within 15 s of SIGTERM, killed"
        : `exit code ${stopped.code ?? stopped.signal} after SIGTERM`;
      if (api.output.total > 0) {
        observations.push(
          `${label} ingest: the api process printed ${api.output.total} log line(s) at warn or above; last: ${api.output.lines.at(-1)}`,
        );
      }
    }
    const queuedBeforeWorkers = await deployment.waitingJobs();
    log(
      `api ingest (no worker running): ${fmtInt(ingest.ok)} × 2xx in ${fmtMs(ingest.durationMs)}; statuses ${JSON.stringify(
        ingest.statuses,
      )}; api stopped: ${apiShutdown}; jobs waiting in Redis: ${fmtInt(queuedBeforeWorkers)}`,
    );
    if (ingest.ok !== bodies.length) {
      observations.push(
        `${label}: only ${ingest.ok} of ${bodies.length} ingests were 2xx (${JSON.stringify(ingest.statuses)}, errors ${ingest.errors}).`,
      );
    }
    if (queuedBeforeWorkers !== ingest.ok) {
      observations.push(
        `${label}: ${fmtInt(queuedBeforeWorkers)} jobs waited in Redis for ${fmtInt(ingest.ok)} accepted webhooks before the workers started.`,
      );
    }

    sink.send({ type: "reset", expected: ingest.ok });
    await waitForQuiet(`the ${label} Mitte delivery run`);
    const spawnedAt = performance.now();
    const started = await Promise.allSettled(
      Array.from({ length: workers }, () =>
        startMitte(deployment.dataDir, { ...deployment.env, ...SCALE_WORKER_ENV }, { role: "worker" }),
      ),
    );
    const procs = started.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
    let run: S4ScaleRun | undefined;
    try {
      const failed = started.find((s): s is PromiseRejectedResult => s.status === "rejected");
      if (failed) throw failed.reason;
      await deployment.backends.sync();
      const pids: Record<string, PidSource> = {};
      procs.forEach((p, i) => {
        pids[`worker ${i + 1}`] = p.child.pid;
      });
      Object.assign(pids, {
        redis: infra.redis.child.pid,
        postgres: deployment.backends.pids,
        sink: sink.child.pid,
        bench: process.pid,
      });
      const cpu = new CpuWindow(pids);
      const readyAts = procs.map((p) => p.readyAt);
      const { done, complete } = await awaitAllReceived(sink, ingest.ok, label, "the workers");
      const doneAt = performance.now();
      const cpuShares = cpu.stop();
      const windowMs = done.lastAt - done.firstAt;
      run = {
        workers,
        round,
        ingestOk: ingest.ok,
        ingestStatuses: ingest.statuses,
        ingestMs: ingest.durationMs,
        apiShutdown,
        queuedBeforeWorkers,
        readyMs: Math.max(...readyAts) - spawnedAt,
        readySpreadMs: Math.max(...readyAts) - Math.min(...readyAts),
        ratePerSec: ((done.distinct - 1) * 1000) / windowMs,
        windowMs,
        readyToDoneMs: doneAt - Math.max(...readyAts),
        received: done.total,
        distinct: done.distinct,
        complete,
        cpu: cpuShares,
        serverLogLines: procs.reduce((sum, p) => sum + p.output.total, 0),
        workerShutdown: "",
      };
      log(
        `${workerLabel(workers)}: ${fmtInt(run.ratePerSec)} deliveries/s (${fmtInt(done.distinct)} distinct, ${fmtInt(
          done.total,
        )} total in ${fmtMs(windowMs)} first→last receipt); spawn→all healthy ${fmtMs(run.readyMs)} (spread ${fmtMs(
          run.readySpreadMs,
        )}), healthy→done ${fmtMs(run.readyToDoneMs)}; CPU ${describeCpu(cpuShares)}`,
      );
      if (done.total !== done.distinct) {
        observations.push(`${label}: the sink saw ${done.total - done.distinct} duplicate deliveries.`);
      }
      for (const [i, p] of procs.entries()) {
        if (p.output.total > 0) {
          observations.push(
            `${label}: worker ${i + 1} printed ${p.output.total} log line(s) at warn or above; last: ${p.output.lines.at(-1)}`,
          );
        }
      }
      return run;
    } finally {
      const stops = await Promise.all(procs.map((p: MitteProcess) => stopChild(p.child)));
      if (run) {
        run.workerShutdown = stops
          .map((s) =>
            s.killed ? "did not exit within 15 s of SIGTERM, killed" : `exit code ${s.code ?? s.signal}`,
          )
          .join(", ");
      }
      const odd = stops.filter((s) => s.killed || s.code !== 0);
      if (odd.length > 0) {
        observations.push(
          `${label}: ${odd.length} worker(s) did not exit 0 on SIGTERM (${odd
            .map((s) => (s.killed ? "killed after 15 s" : String(s.code ?? s.signal)))
            .join(", ")}).`,
        );
      }
    }
  } finally {
    await deployment.close();
  }
}
async function runS1Scale(s1: S1Result | undefined, infra: ScaleInfra): Promise<S1ScaleResult> {
  // Interleaved baselines cost S1_SCALE_ROUNDS × ~12 s; when they do not fit, S1's baseline median is reused.
  const interleaved = !s1 || affordable(S1_SCALE_ROUNDS * 12);
  section(
    `S1-scale ingest throughput, one api process — autocannon, ${S1_CONNECTIONS} connections, ${S1_WARMUP_S} s warm-up + ${S1_MEASURE_S} s${
      interleaved ? "" : " (late in the run: Mitte only, S1's baseline median reused)"
    }`,
  );
  const runs: S1Run[] = [];
  const discarded: S1Run[] = [];
  const repeats = repeatBudget(S1_SCALE_MAX_REPEATS, 15);
  const measures = interleaved ? [s1Baseline, s1ScaleMitte] : [s1ScaleMitte];
  for (let round = 1; round <= S1_SCALE_ROUNDS; round += 1) {
    for (const measure of measures) {
      const run = await measureUndisturbed(
        () => measure(round, infra),
        repeats,
        discarded,
        () => sleep(300),
      );
      runs.push(run);
      await sleep(300);
    }
  }
  const baseline =
    interleaved || !s1
      ? spread(runs.filter((r) => r.target === "baseline").map((r) => r.reqPerSec))
      : s1.baseline;
  const result: S1ScaleResult = {
    ...s1Figures(runs, discarded, baseline, "mitte-api"),
    baselineSource: interleaved ? "interleaved" : "s1",
  };
  const { mitte } = result;
  log(
    `baseline median ${fmtInt(baseline.median)} req/s (range ${fmtInt(baseline.min)}–${fmtInt(baseline.max)})${
      interleaved ? "" : ", from S1"
    }`,
  );
  log(`api      median ${fmtInt(mitte.median)} req/s (range ${fmtInt(mitte.min)}–${fmtInt(mitte.max)})`);
  log(`ratio ${fmtRatio(result.ratio)} (goal ≥ ${S1_SCALE_RATIO_GOAL}×)`);
  return result;
}

/** Rounds of B, 1 worker, 2 workers, then a closing B; medians and ranges per worker count. */
async function runS4Scale(infra: ScaleInfra): Promise<S4ScaleResult> {
  const shortened = !affordable(S4_SCALE_ROUNDS * S4_SCALE_ROUND_S);
  const n = shortened ? S4_SCALE_N_SHORT : S4_SCALE_N;
  section(
    `S4-scale delivery throughput — N = ${fmtInt(n)}, ${S4_SCALE_WORKERS.map(workerLabel).join(" and ")}, up to ${S4_SCALE_ROUNDS} rounds${
      shortened ? " (N shortened: the run is late)" : ""
    }`,
  );
  const bodies = Array.from({ length: n }, (_, i) => Buffer.from(makeBody(i)));
  const sink = await forkHelper<SinkChildMessage>("sink-child.ts");
  try {
    const baselineRuns: S4BaselineRun[] = [];
    const runs: S4ScaleRun[] = [];
    const discarded: S4ScaleRun[] = [];
    const repeats = repeatBudget(S4_SCALE_MAX_REPEATS, 25);
    for (let round = 1; round <= S4_SCALE_ROUNDS; round += 1) {
      // Rounds past the first only while the budget allows.
      if (round > 1 && !affordable(S4_SCALE_ROUND_S * (shortened ? 0.6 : 1))) {
        log(`(the run is late: ${round - 1} round(s) instead of ${S4_SCALE_ROUNDS})`);
        break;
      }
      baselineRuns.push(await s4BaselineRun(sink, bodies));
      for (const workers of S4_SCALE_WORKERS) {
        runs.push(
          await measureUndisturbed(
            () => s4ScaleRun(sink, bodies, workers, round, infra),
            repeats,
            discarded,
            () => {},
          ),
        );
      }
    }
    baselineRuns.push(await s4BaselineRun(sink, bodies));
    const baseline = spread(baselineRuns.map((r) => r.ratePerSec));
    const byWorkers = S4_SCALE_WORKERS.map((workers) => ({
      workers,
      rates: spread(runs.filter((r) => r.workers === workers).map((r) => r.ratePerSec)),
    }));
    const rateOf = (workers: number) =>
      byWorkers.find((b) => b.workers === workers)?.rates.median ?? Number.NaN;
    const scaling = rateOf(2) / rateOf(1);
    log(
      `baseline median ${fmtInt(baseline.median)} deliveries/s (range ${fmtInt(baseline.min)}–${fmtInt(baseline.max)})`,
    );
    for (const { workers, rates } of byWorkers) {
      log(
        `${workerLabel(workers)}: median ${fmtInt(rates.median)} deliveries/s (range ${fmtInt(rates.min)}–${fmtInt(
          rates.max,
        )}), ${fmtRatio(rates.median / baseline.median)} of the baseline`,
      );
    }
    log(`1 → 2 workers: ${fmtRatio(scaling)} (no goal; information)`);
    return { n, shortened, baselineRuns, baseline, runs, discarded, byWorkers, scaling };
  } finally {
    await stopChild(sink.child);
  }
}

interface ScaleResults {
  s1?: S1ScaleResult;
  s3?: ScaleReport["s3"];
  s4?: S4ScaleResult;
  s7?: ScaleReport["s7"];
  s8?: ScaleReport["s8"];
}

/** Starts the bench's own Redis, runs the selected scale scenarios, stops Redis (also when one throws). */
async function runScale(options: Options, s1: S1Result | undefined): Promise<ScaleReport> {
  section(
    `Scale mode — private redis-server (${REDIS_FLAGS.map((f) => f || '""').join(" ")}), PostgreSQL at 127.0.0.1:5432`,
  );
  const want = (name: Scenario) => options.selected.has(name);
  const redis = await startRedis();
  let admin: PgAdmin | undefined;
  let measured: {
    postgres: Record<string, string>;
    results: ScaleResults;
    persistence: Record<string, string>;
  };
  let stopped: Awaited<ReturnType<RedisServer["close"]>>;
  try {
    admin = await PgAdmin.open();
    const postgres = await admin.facts();
    log(
      `redis ${redis.version} on ${redis.url}: ${Object.entries(redis.settings)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(
          ", ",
        )}; PostgreSQL ${postgres.server_version}, synchronous_commit=${postgres.synchronous_commit}, fsync=${postgres.fsync}`,
    );
    const infra: ScaleInfra = { redis, admin };
    const results: ScaleResults = {};
    if (want("s1-scale")) {
      startScenario("s1-scale");
      results.s1 = await runS1Scale(s1, infra);
    }
    if (want("s4-scale")) {
      startScenario("s4-scale");
      results.s4 = await runS4Scale(infra);
    }
    if (want("s3-scale") || want("s8-scale")) {
      const { ceiling, source } = await ceilingFor("scale", results.s1, options.scaleCeiling, infra);
      if (want("s3-scale")) {
        startScenario("s3-scale");
        results.s3 = await runS3("scale", ceiling, source, infra);
      }
      if (want("s8-scale")) {
        startScenario("s8-scale");
        results.s8 = await runS8("scale", ceiling, source, infra);
      }
    }
    if (want("s7-scale")) {
      startScenario("s7-scale");
      results.s7 = await runS7("scale", infra);
    }
    measured = { postgres, results, persistence: await redisPersistence(redis) };
  } finally {
    await admin?.close().catch(() => {});
    stopped = await redis.close();
  }
  return {
    postgres: measured.postgres,
    ...measured.results,
    redis: {
      version: redis.version,
      flags: REDIS_FLAGS.map((f) => f || '""').join(" "),
      settings: redis.settings,
      persistence: measured.persistence,
      rewritesRequested: redis.rewritesRequested,
      shutdown: stopped.killed
        ? "did not exit within 15 s of SIGTERM, killed"
        : `exit code ${stopped.code ?? stopped.signal} after SIGTERM`,
    },
  };
}

// ---------------------------------------------------------------- verdicts and observations

function s1Verdict(s1: S1Result): Verdict {
  const valid = s1.mitteNon2xx === 0 && s1.mitteErrors === 0;
  return {
    goal: `≥ ${RATIO_GOAL}× baseline`,
    measured: fmtRatio(s1.ratio),
    met: valid && s1.ratio >= RATIO_GOAL,
    ...(valid
      ? {}
      : {
          note: `S1 is not a clean measurement: Mitte answered ${s1.mitteNon2xx} non-2xx and had ${s1.mitteErrors} errors; counted as missed.`,
        }),
  };
}

function s4Verdict(s4: S4Result): Verdict {
  const complete = s4.mitteRuns.every((r) => r.complete && r.ingestOk === s4.n);
  return {
    goal: `≥ ${RATIO_GOAL}× baseline`,
    measured: fmtRatio(s4.ratio),
    met: complete && s4.ratio >= RATIO_GOAL,
    ...(complete
      ? {}
      : { note: "S4: not every webhook was ingested and delivered in every run; counted as missed." }),
  };
}

function s4mVerdict(s4m: S4mResult): Verdict {
  const complete = s4m.ingestOk === s4m.n && s4m.runs.every((r) => r.complete);
  const notes = [
    ...(complete
      ? []
      : ["S4m: not every webhook was ingested and delivered in every run; counted as missed."]),
    ...(s4m.switchVerified
      ? []
      : [
          "S4m: the endpoint's stats did not confirm the switch (0 attempts recorded with monitoring off, every delivery with it on); counted as missed.",
        ]),
  ];
  return {
    goal: `≤ ${fmtOverhead(S4M_OVERHEAD_GOAL)} overhead`,
    measured: fmtOverhead(s4m.overhead),
    met: complete && s4m.switchVerified && s4m.overhead <= S4M_OVERHEAD_GOAL,
    ...(notes.length > 0 ? { note: notes.join(" ") } : {}),
  };
}

function s1ScaleVerdict(s1s: S1ScaleResult): Verdict {
  const valid = s1s.mitteNon2xx === 0 && s1s.mitteErrors === 0;
  const notes = [
    ...(s1s.baselineSource === "s1"
      ? [
          "S1-scale: the run was late, so no baseline runs were interleaved with the api runs; the ratio uses S1's baseline median from this same run.",
        ]
      : []),
    ...(valid
      ? []
      : [
          `S1-scale is not a clean measurement: the api process answered ${s1s.mitteNon2xx} non-2xx and had ${s1s.mitteErrors} errors; counted as missed.`,
        ]),
  ];
  return {
    goal: `≥ ${S1_SCALE_RATIO_GOAL}× baseline`,
    measured: fmtRatio(s1s.ratio),
    met: valid && s1s.ratio >= S1_SCALE_RATIO_GOAL,
    ...(notes.length > 0 ? { note: notes.join(" ") } : {}),
  };
}

function verdicts(
  results: Omit<
    Report,
    "verdicts" | "notes" | "observations" | "startedAt" | "durationS" | "command" | "selection"
  >,
): Report["verdicts"] {
  const v: Report["verdicts"] = {};
  const { s1, s3, s4, s4m, s7, s8, scale } = results;
  if (s1) v.s1 = s1Verdict(s1);
  if (s3) v.s3 = s3Verdict(s3);
  if (s4) v.s4 = s4Verdict(s4);
  if (s4m) v.s4m = s4mVerdict(s4m);
  if (s7) {
    const { growth, back } = s7Verdicts(s7);
    v.s7Growth = growth;
    v.s7Back = back;
  }
  if (s8) v.s8 = s8Verdict(s8);
  if (scale?.s1) v.s1Scale = s1ScaleVerdict(scale.s1);
  if (scale?.s3) v.s3Scale = s3Verdict(scale.s3);
  if (scale?.s7) {
    const { growth, back } = s7Verdicts(scale.s7);
    v.s7ScaleGrowth = growth;
    v.s7ScaleBack = back;
  }
  if (scale?.s8) v.s8Scale = s8Verdict(scale.s8);
  return v;
}

/** S4-scale has no goal; says when its figures are not complete measurements. */
function s4ScaleNote(s4s: S4ScaleResult): string | null {
  const incomplete = s4s.runs.filter((r) => !r.complete || r.ingestOk !== s4s.n);
  if (incomplete.length === 0) return null;
  return `S4-scale: not every webhook was ingested and delivered in the run(s) ${incomplete
    .map((r) => `${workerLabel(r.workers)} round ${r.round}`)
    .join(", ")}; those rates cover only what arrived.`;
}

function cpuObservations(report: Omit<Report, "verdicts" | "notes" | "observations">): void {
  const { s1, s3, s4, s4m, s7, s8 } = report;
  if (s1) {
    const avg = (runs: S1Run[], name: string) => median(runs.map((r) => r.cpu[name] ?? Number.NaN));
    const base = s1.runs.filter((r) => r.target === "baseline");
    const mitte = s1.runs.filter((r) => r.target === "mitte");
    observations.push(
      `S1 CPU (median over rounds, 100% = one core): baseline server ${Math.round(avg(base, "server"))}% with autocannon ${Math.round(
        avg(base, "bench"),
      )}%; Mitte ${Math.round(avg(mitte, "mitte"))}% with autocannon ${Math.round(avg(mitte, "bench"))}%. ` +
        "A server process near 100% of one core is most likely bound by its main JavaScript thread; the machine's 2 cores are shared with the load generator.",
    );
  }
  const windows: [string, number | undefined][] = [
    ...(s1?.runs.map((r): [string, number | undefined] => [`S1 ${r.target} ${r.round}`, r.cpu.other]) ?? []),
    ...(s3?.levels.map((l): [string, number | undefined] => [
      `S3 ${Math.round(l.fraction * 100)} %`,
      l.cpu.other,
    ]) ?? []),
    ...(s4?.baselineRuns.map((r, i): [string, number | undefined] => [`S4 baseline ${i + 1}`, r.cpu.other]) ??
      []),
    ...(s4?.mitteRuns.map((r): [string, number | undefined] => [`S4 Mitte ${r.round}`, r.cpu.other]) ?? []),
    ...(s4m?.runs.map((r): [string, number | undefined] => [
      `S4m ${r.monitoring ? "on" : "off"} #${r.order}`,
      r.cpu.other,
    ]) ?? []),
    ...(s7
      ? [
          ["S7 load", s7.loadCpu.other] as [string, number | undefined],
          ["S7 drain", s7.drain.cpu.other] as [string, number | undefined],
        ]
      : []),
    ...(s8?.runs.map((r): [string, number | undefined] => [`S8 #${r.order}`, r.cpu.other]) ?? []),
  ];
  noteDisturbedWindows(windows, "those embedded-mode figures");
  if (s3) {
    observations.push(
      `S3 CPU per level: ${s3.levels.map((l) => `${Math.round(l.fraction * 100)} %: ${describeCpu(l.cpu)}`).join("; ")}.`,
    );
  }
  if (s4) {
    observations.push(
      `S4 CPU (median runs): baseline ${describeCpu(
        [...s4.baselineRuns].sort((a, b) => a.ratePerSec - b.ratePerSec)[
          Math.floor(s4.baselineRuns.length / 2)
        ]?.cpu ?? {},
      )}; Mitte ${describeCpu(
        [...s4.mitteRuns].sort((a, b) => a.ratePerSec - b.ratePerSec)[Math.floor(s4.mitteRuns.length / 2)]
          ?.cpu ?? {},
      )}.`,
    );
  }
  if (s4m) {
    const s4mCpu = (monitoring: boolean) =>
      Math.round(
        median(s4m.runs.filter((r) => r.monitoring === monitoring).map((r) => r.cpu.mitte ?? Number.NaN)),
      );
    observations.push(
      `S4m CPU of the Mitte process (median over the runs, 100% = one core): ${s4mCpu(false)}% with monitoring off, ${s4mCpu(
        true,
      )}% with it on.`,
    );
  }
}

function scaleCpuObservations(scale: ScaleReport): void {
  const windows: [string, number | undefined][] = [];
  if (scale.s1) {
    const apiRuns = scale.s1.runs.filter((r) => r.target === "mitte-api");
    const med = (name: string) => Math.round(median(apiRuns.map((r) => r.cpu[name] ?? Number.NaN)));
    observations.push(
      `S1-scale CPU (median over the api runs, 100% = one core): api process ${med("api")}%, its PostgreSQL backends ${med(
        "postgres",
      )}%, redis-server ${med("redis")}%, autocannon ${med("bench")}%. ` +
        "An api process well below 100% of a core is not bound by its own JavaScript thread but waits on its stores (commit and enqueue round trips).",
    );
    windows.push(
      ...apiRuns.map((r): [string, number | undefined] => [`S1-scale api ${r.round}`, r.cpu.other]),
    );
  }
  if (scale.s3) {
    windows.push(
      ...scale.s3.levels.map((l): [string, number | undefined] => [
        `S3-scale ${Math.round(l.fraction * 100)} %`,
        l.cpu.other,
      ]),
    );
  }
  if (scale.s4) {
    windows.push(
      ...scale.s4.baselineRuns.map((r, i): [string, number | undefined] => [
        `S4-scale baseline ${i + 1}`,
        r.cpu.other,
      ]),
      ...scale.s4.runs.map((r): [string, number | undefined] => [
        `S4-scale ${workerLabel(r.workers)} ${r.round}`,
        r.cpu.other,
      ]),
    );
    const capacity = cpus().length * 100;
    for (const workers of S4_SCALE_WORKERS) {
      const runs = scale.s4.runs.filter((r) => r.workers === workers);
      if (runs.length === 0) continue;
      const ours = median(
        runs.map((run) =>
          Object.entries(run.cpu)
            .filter(([name]) => name !== "other")
            .reduce((sum, [, pct]) => sum + pct, 0),
        ),
      );
      const other = median(runs.map((run) => run.cpu.other ?? 0));
      observations.push(
        `S4-scale CPU with ${workerLabel(workers)} (median over the runs): the bench's own processes (workers, redis, their PostgreSQL backends, sink) used ${Math.round(
          ours,
        )}% of the machine's ${capacity}%${
          ours > capacity * 0.9
            ? ": they nearly filled the machine, so this figure is bound by its cores rather than by the worker count"
            : ours + other > capacity * 0.9
              ? "; with the other load the machine was saturated, so this figure is depressed by other work"
              : ""
        }; last run: ${describeCpu(runs.at(-1)!.cpu)}.`,
      );
    }
  }
  if (scale.s7) {
    windows.push(["S7-scale load", scale.s7.loadCpu.other], ["S7-scale drain", scale.s7.drain.cpu.other]);
  }
  if (scale.s8) {
    windows.push(
      ...scale.s8.runs.map((r): [string, number | undefined] => [`S8-scale #${r.order}`, r.cpu.other]),
    );
  }
  noteDisturbedWindows(windows, "those scale-mode figures");
  const p = scale.redis.persistence;
  if (p.aof_last_write_status !== "ok" || p.aof_last_bgrewrite_status !== "ok") {
    observations.push(
      `Redis reported AOF trouble: aof_last_write_status=${p.aof_last_write_status}, aof_last_bgrewrite_status=${p.aof_last_bgrewrite_status}.`,
    );
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  installCleanup();
  const want = (name: Scenario) => options.selected.has(name);
  const selection = options.subset ? ALL.filter(want) : null;
  planScenarios(Object.fromEntries(ALL.filter(want).map((name) => [name, ESTIMATE_S[name]])));
  const startedAt = new Date();
  const t0 = performance.now();
  console.log(
    `Mitte benchmarks — ${startedAt.toISOString()}, node ${process.version}; scenarios: ${ALL.filter(
      want,
    ).join(", ")}; time budget ${RUNTIME_BUDGET_S / 60} min`,
  );
  let s1: S1Result | undefined;
  if (want("s1")) {
    startScenario("s1");
    s1 = await runS1();
  }
  const { s4, s4m } =
    want("s4") || want("s4m") ? await runEmbeddedDelivery({ s4: want("s4"), s4m: want("s4m") }) : {};
  let s3: Report["s3"];
  let s8: Report["s8"];
  if (want("s3") || want("s8")) {
    const { ceiling, source } = await ceilingFor("embedded", s1, options.ceiling);
    if (want("s3")) {
      startScenario("s3");
      s3 = await runS3("embedded", ceiling, source);
    }
    if (want("s8")) {
      startScenario("s8");
      s8 = await runS8("embedded", ceiling, source);
    }
  }
  let s7: Report["s7"];
  if (want("s7")) {
    startScenario("s7");
    s7 = await runS7("embedded");
  }
  const scale = SCALE.some(want) ? await runScale(options, s1) : undefined;
  const results = {
    ...(s1 ? { s1 } : {}),
    ...(s3 ? { s3 } : {}),
    ...(s4 ? { s4 } : {}),
    ...(s4m ? { s4m } : {}),
    ...(s7 ? { s7 } : {}),
    ...(s8 ? { s8 } : {}),
    ...(scale ? { scale } : {}),
  };
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
  const durationS = (performance.now() - t0) / 1000;
  cpuObservations({ startedAt, durationS, command, selection, ...results });
  if (scale) scaleCpuObservations(scale);
  const notes = [scale?.s4 ? s4ScaleNote(scale.s4) : null].filter((n): n is string => n !== null);
  const report: Report = {
    startedAt,
    durationS,
    command,
    selection,
    ...results,
    verdicts: verdicts(results),
    notes,
    observations,
  };
  const markdown = renderMarkdown(report);
  section("Summary");
  console.log(renderSummaryTable(report));
  console.log(`\nRun quality: ${runQuality(report)}`);
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, markdown);
  console.log(`\nFull report written to ${options.out} (run took ${Math.round(durationS)} s)`);
  if (observations.length > 0) {
    section("Observations");
    for (const o of observations) log(o);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error("\nbench: the run broke:", error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
