/**
 * `npm run bench`: S1 ingest throughput, S3 ingest→receipt latency, S4 delivery throughput and S4m (S4 with
 * delivery monitoring off and on; monitoring off is its baseline) in embedded mode, then S1-scale (one `api`
 * process) and S4-scale (1 and 2 `worker` processes) in scale mode on PostgreSQL and a private Redis; each
 * Mitte figure against a baseline measured in this same run by the same load generator.
 * Prints markdown and writes it to docs/benchmarks.md. Exits non-zero only when the run itself broke (not when
 * a goal is missed).
 */
import { cpSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { autocannon, closedLoop, openLoop, reqPerSec } from "./load.js";
import { eventId, makeBody, WEBHOOK_HEADERS } from "./payload.js";
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
  fmtLatency,
  type Report,
  renderMarkdown,
  renderSummaryTable,
  runQuality,
  type S1Result,
  type S1Run,
  type S1ScaleResult,
  type S3Result,
  type S4BaselineRun,
  type S4mResult,
  type S4mRun,
  type S4Result,
  type S4ScaleResult,
  type S4ScaleRun,
  type ScaleReport,
  type Spread,
  type Verdict,
} from "./report.js";
import {
  createDeployment,
  PgAdmin,
  REDIS_FLAGS,
  type RedisServer,
  redisPersistence,
  startRedis,
} from "./scale.js";
import { startSink } from "./sink.js";
import type { SinkChildMessage, SinkDone, SinkStats } from "./sink-child.js";
import {
  CpuWindow,
  describeCpu,
  distribution,
  fmtInt,
  fmtMs,
  fmtOverhead,
  fmtRatio,
  machineBusyPct,
  median,
  type PidSource,
} from "./stats.js";

const S1_CONNECTIONS = 50;
const S1_WARMUP_S = 2;
const S1_MEASURE_S = 8;
const S1_ROUNDS = 3;
const S3_WARMUP_S = 1;
const S3_MEASURE_S = 8;
const S3_CONNECTIONS = 64;
const S3_DRAIN_MAX_MS = 15_000;
const S4_N = 20_000;
const S4_BASELINE_CONCURRENCY = 64;
const S4_INGEST_CONCURRENCY = 50;
const S4_BASELINE_RUNS = 3;
/** A disturbed S4 Mitte run is repeated once if the whole bench is still this young (seconds). */
const S4_REPEAT_DEADLINE_S = 160;
// S4m: S4's delivery run with MITTE_DELIVERY_MONITORING=false and =true, same N and settings, interleaved.
/** Pairs (off, on) measured; pairs past S4M_MIN_PAIRS only while the bench is younger than the deadline (s). */
const S4M_PAIRS = 5;
const S4M_MIN_PAIRS = 3;
const S4M_EXTRA_PAIR_DEADLINE_S = 200;
/** Disturbed S4m runs are repeated, at most this many per bench and only while the bench is this young (s). */
const S4M_MAX_REPEATS = 2;
const S4M_REPEAT_DEADLINE_S = 220;
/** How long the bench waits, after the sink has everything, for the stats to count every delivery. */
const S4M_STATS_WAIT_MS = 3_000;
/** Issue 5: the stats and event path adds at most 10 % to the delivery throughput. */
const S4M_OVERHEAD_GOAL = 0.1;
const RATIO_GOAL = 0.5;
const P99_GOAL_MS = 50;

// Scale mode: PostgreSQL (shared server, fresh schema per deployment) + the bench's own redis-server.
const S1_SCALE_ROUNDS = 2;
const S1_SCALE_RATIO_GOAL = 0.2;
/** Past this many seconds into the bench, S1-scale measures Mitte only and reuses S1's baseline median. */
const S1_SCALE_INTERLEAVE_DEADLINE_S = 230;
const S1_SCALE_MAX_REPEATS = 2;
/** A disturbed scale-mode run is repeated once only while the whole bench is this young (seconds). */
const SCALE_REPEAT_DEADLINE_S = 250;
const S4_SCALE_N = 20_000;
/** Used instead of S4_SCALE_N when S4-scale starts later than S4_SCALE_SHORT_AFTER_S into the bench. */
const S4_SCALE_N_SHORT = 10_000;
const S4_SCALE_SHORT_AFTER_S = 230;
const S4_SCALE_WORKERS = [1, 2] as const;
const SCALE_WORKER_ENV = {
  MITTE_DELIVERY_ENABLED: "true",
  MITTE_DELIVERY_CONCURRENCY: "64",
  MITTE_ENDPOINT_CONCURRENCY: "64",
};

/** Delivery is disabled in S1, so the target is never called. */
const UNUSED_TARGET = "http://127.0.0.1:9/unused";

/** The machine may be shared: before each measured phase wait (bounded) until the rest of it is quiet. */
const QUIET_PCT = 25;
const QUIET_WAIT_MAX_MS = 8_000;
const QUIET_WAIT_BUDGET_MS = 30_000;
/** An S1 run during which other load exceeded QUIET_PCT is repeated once, at most this many times a run. */
const S1_MAX_REPEATS = 3;
const REPEAT_DEADLINE_S = 120;

const observations: string[] = [];
const benchStartedAt = performance.now();
let quietWaitSpentMs = 0;
const elapsedS = () => (performance.now() - benchStartedAt) / 1000;
/** Seconds S4m took; scale mode's lateness deadlines do not count them, so adding S4m does not shorten scale mode. */
let s4mSeconds = 0;
const scaleElapsedS = () => elapsedS() - s4mSeconds;

async function waitForQuiet(before: string): Promise<void> {
  const started = performance.now();
  const maxWait = Math.min(QUIET_WAIT_MAX_MS, QUIET_WAIT_BUDGET_MS - quietWaitSpentMs);
  let busy = await machineBusyPct(400);
  while (busy !== null && busy > QUIET_PCT && performance.now() - started < maxWait) {
    busy = await machineBusyPct(400);
  }
  const waited = performance.now() - started;
  quietWaitSpentMs += Math.max(0, waited - 400);
  if (busy !== null && busy > QUIET_PCT) {
    log(
      `(machine still ${Math.round(busy)}% busy with other work after waiting ${fmtMs(waited)}; measuring ${before} anyway)`,
    );
  } else if (waited > 1_000) {
    log(`(waited ${fmtMs(waited)} for other load to settle before ${before})`);
  }
}
const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const section = (title: string) => console.log(`\n=== ${title} ===`);
const log = (text: string) => console.log(`  ${text}`);

function spread(values: number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), values };
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

async function runS1(): Promise<S1Result> {
  section(
    `S1 ingest throughput — autocannon, ${S1_CONNECTIONS} connections, ${S1_WARMUP_S} s warm-up + ${S1_MEASURE_S} s`,
  );
  const runs: S1Run[] = [];
  const discarded: S1Run[] = [];
  const repeats: RepeatBudget = { left: S1_MAX_REPEATS, stillEarly: () => elapsedS() < REPEAT_DEADLINE_S };
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
  const mitte = spread(runs.filter((r) => r.target === "mitte").map((r) => r.reqPerSec));
  const mitteRuns = runs.filter((r) => r.target === "mitte");
  const result: S1Result = {
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
  log(
    `baseline median ${fmtInt(baseline.median)} req/s (range ${fmtInt(baseline.min)}–${fmtInt(baseline.max)})`,
  );
  log(`mitte    median ${fmtInt(mitte.median)} req/s (range ${fmtInt(mitte.min)}–${fmtInt(mitte.max)})`);
  log(`ratio ${fmtRatio(result.ratio)} (goal ≥ ${RATIO_GOAL}×)`);
  return result;
}

// ---------------------------------------------------------------- S3

async function runS3(label: string, ratePerSec: number, basis: string): Promise<S3Result> {
  section(`${label} ingest→receipt latency — open loop at ${fmtInt(ratePerSec)} req/s (${basis})`);
  const warmupCount = Math.round(ratePerSec * S3_WARMUP_S);
  const total = warmupCount + Math.round(ratePerSec * S3_MEASURE_S);
  const bodies = Array.from({ length: total }, (_, i) => Buffer.from(makeBody(i)));
  const idPrefix = eventId(0).slice(0, -10);

  const receivedAt = new Float64Array(total).fill(Number.NaN);
  let duplicates = 0;
  let unexpected = 0;
  let receivedCount = 0;
  const sink = await startSink((id, atMs) => {
    const index = id?.startsWith(idPrefix) ? Number(id.slice(idPrefix.length)) : Number.NaN;
    if (!Number.isInteger(index) || index < 0 || index >= total) {
      unexpected += 1;
      return;
    }
    if (!Number.isNaN(receivedAt[index]!)) {
      duplicates += 1;
      return;
    }
    receivedAt[index] = atMs;
    receivedCount += 1;
  });
  const { mitte, dataDir, slug } = await startMitteWithEndpoint("s3", `${sink.url}/s3`, {
    MITTE_DELIVERY_ENABLED: "true",
    MITTE_ENDPOINT_CONCURRENCY: "64",
  });
  try {
    await waitForQuiet(label);
    const cpu = new CpuWindow({ mitte: mitte.child.pid, bench: process.pid });
    const sent = await openLoop({
      origin: mitte.baseUrl,
      path: `/api/v1/h/${slug}`,
      ratePerSec,
      bodies,
      headers: WEBHOOK_HEADERS,
      connections: S3_CONNECTIONS,
    });
    // Wait for the deliveries of every accepted webhook, but at most S3_DRAIN_MAX_MS after the last request was
    // due (or 5 s without progress): a saturated Mitte could otherwise take minutes to drain its backlog.
    let accepted = 0;
    for (let i = 0; i < total; i += 1) if (sent.status[i] === 202) accepted += 1;
    const drainDeadline = sent.scheduledAt[total - 1]! + S3_DRAIN_MAX_MS;
    let lastCount = -1;
    let lastProgressAt = performance.now();
    while (
      receivedCount < accepted &&
      performance.now() < drainDeadline &&
      performance.now() - lastProgressAt < 5_000
    ) {
      if (receivedCount !== lastCount) {
        lastCount = receivedCount;
        lastProgressAt = performance.now();
      }
      await sleep(20);
    }
    const stoppedWaitingAt = performance.now();
    const cpuShares = cpu.stop();

    // A delivery still missing when the bench stopped waiting counts with a lower bound (stop − due), so the
    // percentiles stay honest: any percentile reaching into those values is itself only a lower bound.
    const latencies: number[] = [];
    const ingestLatencies: number[] = [];
    const non202: Record<string, number> = {};
    let sentMeasured = 0;
    let accepted202 = 0;
    let received = 0;
    let censored = 0;
    let censoredFloorMs = Number.POSITIVE_INFINITY;
    for (let i = warmupCount; i < total; i += 1) {
      sentMeasured += 1;
      const status = sent.status[i]!;
      if (status !== 202) {
        const key = status === -1 ? "error" : String(status);
        non202[key] = (non202[key] ?? 0) + 1;
        continue;
      }
      accepted202 += 1;
      ingestLatencies.push(sent.respondedAt[i]! - sent.scheduledAt[i]!);
      if (!Number.isNaN(receivedAt[i]!)) {
        received += 1;
        latencies.push(receivedAt[i]! - sent.scheduledAt[i]!);
      } else {
        censored += 1;
        const bound = stoppedWaitingAt - sent.scheduledAt[i]!;
        censoredFloorMs = Math.min(censoredFloorMs, bound);
        latencies.push(bound);
      }
    }
    const result: S3Result = {
      label,
      basis,
      ratePerSec,
      warmupSeconds: S3_WARMUP_S,
      measureSeconds: S3_MEASURE_S,
      connections: S3_CONNECTIONS,
      sent: sentMeasured,
      accepted202,
      non202,
      errors: sent.errors,
      firstError: sent.firstError,
      received,
      censored,
      censoredFloorMs,
      drainMaxMs: S3_DRAIN_MAX_MS,
      duplicates,
      unexpected,
      latency: distribution(latencies),
      ingestLatency: distribution(ingestLatencies),
      maxSendLagMs: sent.maxSendLagMs,
      achievedRatePerSec: ((total - 1) * 1000) / Math.max(1, sent.sentAt[total - 1]! - sent.sentAt[0]!),
      cpu: cpuShares,
      serverLogLines: mitte.output.total,
    };
    log(
      `sent ${fmtInt(sentMeasured)} (measured), 202 ${fmtInt(accepted202)}, other ${JSON.stringify(non202)}, errors ${sent.errors}`,
    );
    log(
      `received ${fmtInt(received)} of the 202s; ${fmtInt(censored)} not received within ${S3_DRAIN_MAX_MS / 1000} s of the last send (counted as lower bounds); duplicates ${duplicates}; unexpected ${unexpected}`,
    );
    const l = result.latency;
    log(
      `ingest→receipt p50 ${fmtLatency(l.p50, result)}, p99 ${fmtLatency(l.p99, result)}, p99.9 ${fmtLatency(
        l.p999,
        result,
      )}, max ${fmtLatency(l.max, result)}`,
    );
    const il = result.ingestLatency;
    log(
      `ingest→202     p50 ${fmtMs(il.p50)}, p99 ${fmtMs(il.p99)}, p99.9 ${fmtMs(il.p999)}, max ${fmtMs(il.max)}`,
    );
    log(
      `achieved send rate ${fmtInt(result.achievedRatePerSec)} req/s, max sender lag ${fmtMs(sent.maxSendLagMs)}; CPU ${describeCpu(cpuShares)}`,
    );
    if (mitte.output.total > 0) {
      observations.push(
        `${label}: Mitte printed ${mitte.output.total} log line(s) at warn or above; last: ${mitte.output.lines.at(-1)}`,
      );
    }
    return result;
  } finally {
    await stopChild(mitte.child);
    await sink.close();
    removeTempDir(dataDir);
  }
}

interface RepeatBudget {
  left: number;
  /** Repeats only while the bench is young enough to afford them. */
  stillEarly: () => boolean;
}

/**
 * Runs `measure`. If other load on the machine disturbed it (more than QUIET_PCT of a core) and
 * the scenario's repeat budget allows, the run is kept as discarded, `beforeRepeat` runs, and it is measured
 * again once.
 */
async function measureUndisturbed<R extends { cpu: Record<string, number> }>(
  measure: () => Promise<R>,
  repeats: RepeatBudget,
  discarded: R[],
  beforeRepeat: () => Promise<void> | void,
): Promise<R> {
  const run = await measure();
  const other = run.cpu.other ?? 0;
  if (other <= QUIET_PCT || repeats.left <= 0 || !repeats.stillEarly()) return run;
  repeats.left -= 1;
  log(`  other load was ${Math.round(other)}% of a core during this run: discarding it and measuring again`);
  discarded.push({ ...run, discarded: true });
  await beforeRepeat();
  return measure();
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

type S4Delivery = Omit<S4Result["mitte"], "ingestOk" | "ingestStatuses" | "ingestMs" | "shutdown">;

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
async function s4MitteRun(sink: Sink, bodies: readonly Buffer[]): Promise<S4Result["mitte"]> {
  const { dataDir, ingest, shutdown } = await s4Ingest(sink, bodies, "S4", "/s4");
  try {
    const delivered = await s4Deliver(sink, dataDir, ingest.ok, S4_DELIVERY_ENV, "S4");
    const result: S4Result["mitte"] = {
      ingestOk: ingest.ok,
      ingestStatuses: ingest.statuses,
      ingestMs: ingest.durationMs,
      shutdown,
      ...delivered,
    };
    log(
      `mitte: ${fmtInt(result.ratePerSec)} deliveries/s (${fmtInt(result.distinct)} distinct, ${fmtInt(
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

async function runS4(sink: Sink, bodies: readonly Buffer[]): Promise<S4Result> {
  section(`S4 delivery throughput — N = ${fmtInt(bodies.length)}`);
  // The baseline pass takes about a second, so it runs S4_BASELINE_RUNS times and the median counts.
  const baselineRuns: S4BaselineRun[] = [];
  for (let i = 0; i < S4_BASELINE_RUNS; i += 1) baselineRuns.push(await s4BaselineRun(sink, bodies));
  const baselineRates = spread(baselineRuns.map((r) => r.ratePerSec));
  const medianRun = [...baselineRuns].sort((a, b) => a.ratePerSec - b.ratePerSec)[
    Math.floor(baselineRuns.length / 2)
  ]!;
  log(
    `baseline median ${fmtInt(baselineRates.median)} deliveries/s (range ${fmtInt(baselineRates.min)}–${fmtInt(
      baselineRates.max,
    )})`,
  );

  let mitte = await s4MitteRun(sink, bodies);
  let discardedMitte: S4Result["discardedMitte"] = null;
  const other = mitte.cpu.other ?? 0;
  if (other > QUIET_PCT && elapsedS() < S4_REPEAT_DEADLINE_S) {
    log(
      `  other load was ${Math.round(other)}% of a core during the Mitte delivery run: discarding it and measuring again`,
    );
    discardedMitte = mitte;
    mitte = await s4MitteRun(sink, bodies);
  }
  const ratio = mitte.ratePerSec / baselineRates.median;
  log(`ratio ${fmtRatio(ratio)} (goal ≥ ${RATIO_GOAL}×)`);
  return {
    n: S4_N,
    baseline: { ...medianRun, ratePerSec: baselineRates.median, runs: baselineRates },
    mitte,
    discardedMitte,
    ratio,
  };
}

// ---------------------------------------------------------------- S4m

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
  const startedS = elapsedS();
  const snapshot = await s4Ingest(sink, bodies, "S4m", "/s4m");
  try {
    const runs: S4mRun[] = [];
    const discarded: S4mRun[] = [];
    const repeats: RepeatBudget = {
      left: S4M_MAX_REPEATS,
      stillEarly: () => elapsedS() < S4M_REPEAT_DEADLINE_S,
    };
    let order = 0;
    for (let pair = 1; pair <= S4M_PAIRS; pair += 1) {
      if (pair > S4M_MIN_PAIRS && elapsedS() > S4M_EXTRA_PAIR_DEADLINE_S) {
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
    s4mSeconds = elapsedS() - startedS;
  }
}

/** S4 then S4m on one sink child and the same N bodies. */
async function runEmbeddedDelivery(): Promise<{ s4: S4Result; s4m: S4mResult }> {
  const bodies = Array.from({ length: S4_N }, (_, i) => Buffer.from(makeBody(i)));
  const sink = await forkHelper<SinkChildMessage>("sink-child.ts");
  try {
    const s4 = await runS4(sink, bodies);
    const s4m = await runS4m(sink, bodies);
    return { s4, s4m };
  } finally {
    await stopChild(sink.child);
  }
}

// ---------------------------------------------------------------- scale mode

interface ScaleInfra {
  redis: RedisServer;
  admin: PgAdmin;
}

/** One `mitte start --role api` of a fresh scale deployment (schema, Redis prefix, pro user), delivery off. */
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

async function runS1Scale(s1: S1Result, infra: ScaleInfra): Promise<S1ScaleResult> {
  const interleaved = scaleElapsedS() < S1_SCALE_INTERLEAVE_DEADLINE_S;
  section(
    `S1-scale ingest throughput, one api process — autocannon, ${S1_CONNECTIONS} connections, ${S1_WARMUP_S} s warm-up + ${S1_MEASURE_S} s${
      interleaved ? "" : " (late in the run: Mitte only, S1's baseline median reused)"
    }`,
  );
  const runs: S1Run[] = [];
  const discarded: S1Run[] = [];
  const repeats: RepeatBudget = {
    left: S1_SCALE_MAX_REPEATS,
    stillEarly: () => scaleElapsedS() < SCALE_REPEAT_DEADLINE_S,
  };
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
  const baseline = interleaved
    ? spread(runs.filter((r) => r.target === "baseline").map((r) => r.reqPerSec))
    : s1.baseline;
  const mitteRuns = runs.filter((r) => r.target === "mitte-api");
  const mitte = spread(mitteRuns.map((r) => r.reqPerSec));
  const result: S1ScaleResult = {
    connections: S1_CONNECTIONS,
    warmupSeconds: S1_WARMUP_S,
    measureSeconds: S1_MEASURE_S,
    runs,
    discarded,
    baselineSource: interleaved ? "interleaved" : "s1",
    baseline,
    mitte,
    ratio: mitte.median / baseline.median,
    mitteNon2xx: mitteRuns.reduce((sum, r) => sum + r.non2xx, 0),
    mitteErrors: mitteRuns.reduce((sum, r) => sum + r.errors, 0),
  };
  log(
    `baseline median ${fmtInt(baseline.median)} req/s (range ${fmtInt(baseline.min)}–${fmtInt(baseline.max)})${
      interleaved ? "" : ", from S1"
    }`,
  );
  log(`api      median ${fmtInt(mitte.median)} req/s (range ${fmtInt(mitte.min)}–${fmtInt(mitte.max)})`);
  log(`ratio ${fmtRatio(result.ratio)} (goal ≥ ${S1_SCALE_RATIO_GOAL}×)`);
  return result;
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
  infra: ScaleInfra,
): Promise<S4ScaleRun> {
  const label = `S4-scale ${workerLabel(workers)}`;
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

async function runS4Scale(infra: ScaleInfra): Promise<S4ScaleResult> {
  const shortened = scaleElapsedS() > S4_SCALE_SHORT_AFTER_S;
  const n = shortened ? S4_SCALE_N_SHORT : S4_SCALE_N;
  section(
    `S4-scale delivery throughput — N = ${fmtInt(n)}, ${S4_SCALE_WORKERS.map(workerLabel).join(" and ")}${
      shortened ? " (N shortened: the run is late)" : ""
    }`,
  );
  const bodies = Array.from({ length: n }, (_, i) => Buffer.from(makeBody(i)));
  const sink = await forkHelper<SinkChildMessage>("sink-child.ts");
  try {
    // Baseline passes (about a second each) before, between and after the Mitte runs: B, M1, B, M2, B.
    const baselineRuns: S4BaselineRun[] = [await s4BaselineRun(sink, bodies)];
    const runs: S4ScaleRun[] = [];
    const discarded: S4ScaleRun[] = [];
    for (const workers of S4_SCALE_WORKERS) {
      let run = await s4ScaleRun(sink, bodies, workers, infra);
      const other = run.cpu.other ?? 0;
      if (other > QUIET_PCT && scaleElapsedS() < SCALE_REPEAT_DEADLINE_S) {
        log(
          `  other load was ${Math.round(other)}% of a core during the ${workerLabel(workers)} run: discarding it and measuring again`,
        );
        discarded.push(run);
        run = await s4ScaleRun(sink, bodies, workers, infra);
      }
      runs.push(run);
      baselineRuns.push(await s4BaselineRun(sink, bodies));
    }
    const baselineRates = spread(baselineRuns.map((r) => r.ratePerSec));
    const medianRun = [...baselineRuns].sort((a, b) => a.ratePerSec - b.ratePerSec)[
      Math.floor(baselineRuns.length / 2)
    ]!;
    const rateOf = (workers: number) => runs.find((r) => r.workers === workers)?.ratePerSec ?? Number.NaN;
    const scaling = rateOf(2) / rateOf(1);
    log(
      `baseline median ${fmtInt(baselineRates.median)} deliveries/s (range ${fmtInt(baselineRates.min)}–${fmtInt(
        baselineRates.max,
      )})`,
    );
    for (const run of runs) {
      log(
        `${workerLabel(run.workers)}: ${fmtInt(run.ratePerSec)} deliveries/s, ${fmtRatio(
          run.ratePerSec / baselineRates.median,
        )} of the baseline`,
      );
    }
    log(`1 → 2 workers: ${fmtRatio(scaling)} (no goal; information)`);
    return {
      n,
      shortened,
      baseline: { ...medianRun, ratePerSec: baselineRates.median, runs: baselineRates },
      runs,
      discarded,
      scaling,
    };
  } finally {
    await stopChild(sink.child);
  }
}

/** Starts the bench's own Redis, runs S1-scale and S4-scale, stops Redis (also when a scenario throws). */
async function runScale(s1: S1Result): Promise<ScaleReport> {
  section(
    `Scale mode — private redis-server (${REDIS_FLAGS.map((f) => f || '""').join(" ")}), PostgreSQL at 127.0.0.1:5432`,
  );
  const redis = await startRedis();
  let admin: PgAdmin | undefined;
  let measured: Omit<ScaleReport, "redis"> & { persistence: Record<string, string> };
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
    const infra = { redis, admin };
    const s1Scale = await runS1Scale(s1, infra);
    const s4Scale = await runS4Scale(infra);
    measured = { postgres, s1: s1Scale, s4: s4Scale, persistence: await redisPersistence(redis) };
  } finally {
    await admin?.close().catch(() => {});
    stopped = await redis.close();
  }
  const { persistence, ...rest } = measured;
  return {
    ...rest,
    redis: {
      version: redis.version,
      flags: REDIS_FLAGS.map((f) => f || '""').join(" "),
      settings: redis.settings,
      persistence,
      rewritesRequested: redis.rewritesRequested,
      shutdown: stopped.killed
        ? "did not exit within 15 s of SIGTERM, killed"
        : `exit code ${stopped.code ?? stopped.signal} after SIGTERM`,
    },
  };
}

// ---------------------------------------------------------------- main

function verdicts(
  s1: S1Result,
  s3: S3Result,
  s4: S4Result,
  s4m: S4mResult,
  scale: ScaleReport,
): Report["verdicts"] {
  const s1Valid = s1.mitteNon2xx === 0 && s1.mitteErrors === 0;
  const s1Verdict: Verdict = {
    goal: `≥ ${RATIO_GOAL}× baseline`,
    measured: fmtRatio(s1.ratio),
    met: s1Valid && s1.ratio >= RATIO_GOAL,
    ...(s1Valid
      ? {}
      : {
          note: `S1 is not a clean measurement: Mitte answered ${s1.mitteNon2xx} non-2xx and had ${s1.mitteErrors} errors; counted as missed.`,
        }),
  };
  const s3Clean = s3.errors === 0 && Object.keys(s3.non202).length === 0;
  const s3Notes = [
    ...(s3.censored > 0
      ? [
          `S3: ${fmtInt(s3.censored)} of ${fmtInt(s3.accepted202)} accepted webhooks had not reached the sink ${
            s3.drainMaxMs / 1000
          } s after the last send; they count with a lower-bound latency.`,
        ]
      : []),
    ...(s3Clean
      ? []
      : [`S3: ${s3.errors} transport errors, non-202: ${JSON.stringify(s3.non202)}; counted as missed.`]),
  ];
  const s3Verdict: Verdict = {
    goal: `p99 ≤ ${P99_GOAL_MS} ms`,
    measured: `p99 ${fmtLatency(s3.latency.p99, s3)}`,
    met: s3Clean && s3.latency.p99 <= P99_GOAL_MS,
    ...(s3Notes.length > 0 ? { note: s3Notes.join(" ") } : {}),
  };
  const s4Verdict: Verdict = {
    goal: `≥ ${RATIO_GOAL}× baseline`,
    measured: fmtRatio(s4.ratio),
    met: s4.mitte.complete && s4.mitte.ingestOk === s4.n && s4.ratio >= RATIO_GOAL,
    ...(s4.mitte.complete && s4.mitte.ingestOk === s4.n
      ? {}
      : { note: "S4: not every webhook was ingested and delivered; counted as missed." }),
  };
  const s1s = scale.s1;
  const s1sValid = s1s.mitteNon2xx === 0 && s1s.mitteErrors === 0;
  const s1sNotes = [
    ...(s1s.baselineSource === "s1"
      ? [
          "S1-scale: the run was late, so no baseline runs were interleaved with the api runs; the ratio uses S1's baseline median from this same run.",
        ]
      : []),
    ...(s1sValid
      ? []
      : [
          `S1-scale is not a clean measurement: the api process answered ${s1s.mitteNon2xx} non-2xx and had ${s1s.mitteErrors} errors; counted as missed.`,
        ]),
  ];
  const s1ScaleVerdict: Verdict = {
    goal: `≥ ${S1_SCALE_RATIO_GOAL}× baseline`,
    measured: fmtRatio(s1s.ratio),
    met: s1sValid && s1s.ratio >= S1_SCALE_RATIO_GOAL,
    ...(s1sNotes.length > 0 ? { note: s1sNotes.join(" ") } : {}),
  };
  const s4mComplete = s4m.ingestOk === s4m.n && s4m.runs.every((r) => r.complete);
  const s4mNotes = [
    ...(s4mComplete
      ? []
      : ["S4m: not every webhook was ingested and delivered in every run; counted as missed."]),
    ...(s4m.switchVerified
      ? []
      : [
          "S4m: the endpoint's stats did not confirm the switch (0 attempts recorded with monitoring off, every delivery with it on); counted as missed.",
        ]),
  ];
  const s4mVerdict: Verdict = {
    goal: `≤ ${fmtOverhead(S4M_OVERHEAD_GOAL)} overhead`,
    measured: fmtOverhead(s4m.overhead),
    met: s4mComplete && s4m.switchVerified && s4m.overhead <= S4M_OVERHEAD_GOAL,
    ...(s4mNotes.length > 0 ? { note: s4mNotes.join(" ") } : {}),
  };
  return { s1: s1Verdict, s3: s3Verdict, s4: s4Verdict, s4m: s4mVerdict, s1Scale: s1ScaleVerdict };
}

/** S4-scale has no goal; says when its figures are not complete measurements. */
function s4ScaleNote(s4s: S4ScaleResult): string | null {
  const incomplete = s4s.runs.filter((r) => !r.complete || r.ingestOk !== s4s.n);
  if (incomplete.length === 0) return null;
  return `S4-scale: not every webhook was ingested and delivered in the run(s) with ${incomplete
    .map((r) => workerLabel(r.workers))
    .join(", ")}; those rates cover only what arrived.`;
}

function cpuObservations(s1: S1Result, s3: S3Result, s4: S4Result, s4m: S4mResult): void {
  const avg = (runs: S1Run[], name: string) => median(runs.map((r) => r.cpu[name] ?? Number.NaN));
  const base = s1.runs.filter((r) => r.target === "baseline");
  const mitte = s1.runs.filter((r) => r.target === "mitte");
  observations.push(
    `S1 CPU (median over rounds, 100% = one core): baseline server ${Math.round(avg(base, "server"))}% with autocannon ${Math.round(
      avg(base, "bench"),
    )}%; Mitte ${Math.round(avg(mitte, "mitte"))}% with autocannon ${Math.round(avg(mitte, "bench"))}%. ` +
      "A server process near 100% of one core is most likely bound by its main JavaScript thread; the machine's 2 cores are shared with the load generator.",
  );
  const noisy = s1.runs.filter((r) => (r.cpu.other ?? 0) > 25);
  if (noisy.length > 0) {
    observations.push(
      `Other load on the machine (CPU not used by the bench's own processes) exceeded 25% of a core during kept S1 run(s) ${noisy
        .map((r) => `${r.target} ${r.round} (${Math.round(r.cpu.other ?? 0)}%)`)
        .join(", ")}; those figures are depressed, which is why medians of interleaved runs are reported.`,
    );
  }
  const windows: [string, number | undefined][] = [
    ["S3", s3.cpu.other],
    ["S4 baseline", s4.baseline.cpu.other],
    ["S4 Mitte", s4.mitte.cpu.other],
    ...s4m.runs.map((r): [string, number | undefined] => [
      `S4m ${r.monitoring ? "on" : "off"} #${r.order}`,
      r.cpu.other,
    ]),
  ];
  noteDisturbedWindows(windows, "those single-shot figures");
  observations.push(
    `S3 CPU: ${describeCpu(s3.cpu)}. S4 CPU: baseline ${describeCpu(s4.baseline.cpu)}; Mitte ${describeCpu(s4.mitte.cpu)}.`,
  );
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

/** Records which measured windows had other load above the quiet threshold. */
function noteDisturbedWindows(windows: [string, number | undefined][], which: string): void {
  const disturbed = windows.filter((w): w is [string, number] => w[1] !== undefined && w[1] > QUIET_PCT);
  if (disturbed.length === 0) return;
  observations.push(
    `Other load exceeded 25% of a core during ${disturbed
      .map(([name, other]) => `${name} (${Math.round(other)}%)`)
      .join(", ")}; ${which} are likely depressed.`,
  );
}

function scaleCpuObservations(scale: ScaleReport): void {
  const apiRuns = scale.s1.runs.filter((r) => r.target === "mitte-api");
  const med = (name: string) => Math.round(median(apiRuns.map((r) => r.cpu[name] ?? Number.NaN)));
  observations.push(
    `S1-scale CPU (median over the api runs, 100% = one core): api process ${med("api")}%, its PostgreSQL backends ${med(
      "postgres",
    )}%, redis-server ${med("redis")}%, autocannon ${med("bench")}%. ` +
      "An api process well below 100% of a core is not bound by its own JavaScript thread but waits on its stores (commit and enqueue round trips).",
  );
  const windows: [string, number | undefined][] = [
    ...apiRuns.map((r): [string, number | undefined] => [`S1-scale api ${r.round}`, r.cpu.other]),
    ["S4-scale baseline", scale.s4.baseline.cpu.other],
    ...scale.s4.runs.map((r): [string, number | undefined] => [
      `S4-scale ${workerLabel(r.workers)}`,
      r.cpu.other,
    ]),
  ];
  noteDisturbedWindows(windows, "those scale-mode figures");
  const capacity = cpus().length * 100;
  for (const run of scale.s4.runs) {
    const ours = Object.entries(run.cpu)
      .filter(([name]) => name !== "other")
      .reduce((sum, [, pct]) => sum + pct, 0);
    observations.push(
      `S4-scale CPU with ${workerLabel(run.workers)}: ${describeCpu(run.cpu)}; the bench's own processes (workers, redis, their PostgreSQL backends, sink) used ${Math.round(
        ours,
      )}% of the machine's ${capacity}%${
        ours > capacity * 0.9
          ? ": they nearly filled the machine, so this figure is bound by its cores rather than by the worker count"
          : ours + (run.cpu.other ?? 0) > capacity * 0.9
            ? "; with the other load the machine was saturated, so this figure is depressed by other work"
            : ""
      }.`,
    );
  }
  const p = scale.redis.persistence;
  if (p.aof_last_write_status !== "ok" || p.aof_last_bgrewrite_status !== "ok") {
    observations.push(
      `Redis reported AOF trouble: aof_last_write_status=${p.aof_last_write_status}, aof_last_bgrewrite_status=${p.aof_last_bgrewrite_status}.`,
    );
  }
}

async function main(): Promise<void> {
  installCleanup();
  const startedAt = new Date();
  const t0 = performance.now();
  console.log(`Mitte benchmarks — ${startedAt.toISOString()}, node ${process.version}`);
  const s1 = await runS1();
  const s3 = await runS3(
    "S3",
    Math.max(1, Math.round(s1.mitte.median * 0.5)),
    `0.5 × Mitte's S1 median ${fmtInt(s1.mitte.median)} req/s`,
  );
  const { s4, s4m } = await runEmbeddedDelivery();
  // Supplementary, no goal: the same measurement at a rate the delivery side can sustain (half of S4's Mitte rate).
  const s3b = await runS3(
    "S3b",
    Math.max(1, Math.round(s4.mitte.ratePerSec * 0.5)),
    `0.5 × Mitte's S4 delivery rate ${fmtInt(s4.mitte.ratePerSec)}/s; supplementary, no goal`,
  );
  const scale = await runScale(s1);
  cpuObservations(s1, s3, s4, s4m);
  observations.push(`S3b CPU: ${describeCpu(s3b.cpu)}.`);
  scaleCpuObservations(scale);
  const report: Report = {
    startedAt,
    durationS: (performance.now() - t0) / 1000,
    s1,
    s3,
    s3b,
    s4,
    s4m,
    scale,
    verdicts: verdicts(s1, s3, s4, s4m, scale),
    s4ScaleNote: s4ScaleNote(scale.s4),
    observations,
  };
  const markdown = renderMarkdown(report);
  section("Summary");
  console.log(renderSummaryTable(report));
  console.log(`\nRun quality: ${runQuality(report)}`);
  const target = join(REPO_DIR, "docs", "benchmarks.md");
  writeFileSync(target, markdown);
  console.log(`\nFull report written to ${target}`);
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
