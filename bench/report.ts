/** Markdown rendering of the benchmark results (printed and written to docs/benchmarks.md). */
import { execFileSync } from "node:child_process";
import { cpus, platform, release, totalmem } from "node:os";
import { LATENCY_RUN_IN_MAX_RATE, LATENCY_RUN_IN_S, type LatencyFigures } from "./latency.js";
import type { HeapFigures, ProcessMemory } from "./stats.js";
import { fmtInt, fmtMb, fmtMs, fmtOverhead, fmtRatio } from "./stats.js";

export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export interface S1Run {
  /** "mitte-api": one `mitte start --role api` process of a scale deployment (S1-scale). */
  target: "baseline" | "mitte" | "mitte-api";
  round: number;
  reqPerSec: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  statusCodes: Record<string, number>;
  latencyP50Ms: number;
  latencyP99Ms: number;
  cpu: Record<string, number>;
  serverLogLines: number;
  /** Repeated because other load on the machine disturbed it; not in the medians. */
  discarded?: boolean;
}

export interface S1Result {
  connections: number;
  warmupSeconds: number;
  measureSeconds: number;
  runs: S1Run[];
  discarded: S1Run[];
  baseline: Spread;
  mitte: Spread;
  ratio: number;
  mitteNon2xx: number;
  mitteErrors: number;
}

/** One S3 level: the open-loop latency run at `fraction` of the mode's ingest ceiling. */
export interface S3Level extends LatencyFigures {
  mode: "embedded" | "scale";
  fraction: number;
  serverLogLines: number;
  shutdown: string;
  /** Repeated because other load on the machine disturbed it. */
  discarded?: boolean;
}

export interface S3Result {
  mode: "embedded" | "scale";
  /** The ingest ceiling the levels are fractions of, and where it came from. */
  ceilingPerSec: number;
  ceilingSource: string;
  levels: S3Level[];
  discarded: S3Level[];
  /** The level the goal applies to (0.5). */
  goalFraction: number;
}

export interface S4BaselineRun {
  ratePerSec: number;
  windowMs: number;
  clientMs: number;
  ok: number;
  statuses: Record<string, number>;
  received: number;
  cpu: Record<string, number>;
}

/** What one Mitte delivery run (S4, S4m) measured, from start-up to the sink's last receipt. */
export interface DeliveryRunFigures {
  readyMs: number;
  ratePerSec: number;
  windowMs: number;
  readyToDoneMs: number;
  spawnToDoneMs: number;
  received: number;
  distinct: number;
  complete: boolean;
  cpu: Record<string, number>;
  serverLogLines: number;
}

export interface S4MitteRun extends DeliveryRunFigures {
  round: number;
  ingestOk: number;
  ingestStatuses: Record<string, number>;
  ingestMs: number;
  shutdown: string;
  discarded?: boolean;
}

export interface S4Result {
  n: number;
  /** Every baseline pass and Mitte run in the order measured (B, M, B, M, …). */
  baselineRuns: S4BaselineRun[];
  mitteRuns: S4MitteRun[];
  /** Mitte runs thrown away because other load disturbed them. */
  discardedMitte: S4MitteRun[];
  baseline: Spread;
  mitte: Spread;
  /** Ratio of the medians. */
  ratio: number;
}

/** One S4m delivery run: S4's Mitte delivery run with MITTE_DELIVERY_MONITORING set to `monitoring`. */
export interface S4mRun extends DeliveryRunFigures {
  monitoring: boolean;
  /** Pair (off, on) this run belongs to, and its position in the measured sequence (discarded runs count). */
  pair: number;
  order: number;
  /** Delivery attempts in the endpoint's stats once the sink had every webhook; null if they could not be read. */
  statsRequests: number | null;
  /** Repeated because other load on the machine disturbed it; not in the medians. */
  discarded?: boolean;
}

export interface S4mResult {
  n: number;
  ingestOk: number;
  ingestStatuses: Record<string, number>;
  ingestMs: number;
  shutdown: string;
  pairsPlanned: number;
  /** Kept runs in the order measured (off, on, off, on, …). */
  runs: S4mRun[];
  discarded: S4mRun[];
  off: Spread;
  on: Spread;
  /** 1 − median(on) / median(off). */
  overhead: number;
  /** 1 − on / off of each pair. */
  pairOverheads: number[];
  /** Every off run left 0 attempts in the stats and every on run at least its deliveries. */
  switchVerified: boolean;
}

/** Memory of the Mitte processes (and Redis in scale mode) at one moment of S7. */
export interface MemoryPoint {
  /** Webhooks accepted (202) since the load began. */
  queued: number;
  /** Seconds since the scenario's first request. */
  atS: number;
  rss: Record<string, ProcessMemory | null>;
  /** V8 heap of each process's main isolate from its --trace-gc output (null when not traced). */
  heap: Record<string, HeapFigures | null>;
  redisUsedMemory: number | null;
  /** 503s the target had answered by then (first attempts that failed). */
  refusedSoFar?: number;
}

export interface S7Result {
  mode: "embedded" | "scale";
  n: number;
  step: number;
  warmupN: number;
  holdS: number;
  retryAfter: string;
  concurrency: Record<string, string>;
  ingestConcurrency: number;
  /** Mitte process names (embedded `mitte`; scale `api`, `worker`). */
  processes: string[];
  before: MemoryPoint;
  /** After every `step` accepted. */
  points: MemoryPoint[];
  /** 3 s after the load ended (target still down). */
  settled: MemoryPoint;
  accepted: number;
  statuses: Record<string, number>;
  errors: number;
  loadMs: number;
  loadCpu: Record<string, number>;
  refusedWhileDown: number;
  receivedBeforeUp: number;
  /** How long before the target came back the load had ended (negative: it overran). */
  loadEndedBeforeUpMs: number;
  drain: {
    expected: number;
    distinct: number;
    total: number;
    complete: boolean;
    windowMs: number;
    ratePerSec: number;
    upToDoneMs: number;
    tToDoneMs: number;
    cpu: Record<string, number>;
  };
  /** Largest RSS during the drain per process, and that minus the pre-load RSS. */
  peak: Record<string, number>;
  peakDelta: Record<string, number>;
  peakRedisUsedMemory: number | null;
  after: MemoryPoint[];
  afterS: number[];
  /** (RSS at N − RSS before) / (N / step), per process. */
  growthPerStep: Record<string, number>;
  /** Least-squares slope of RSS per step over the `points`. */
  slope: Record<string, number>;
  /** RSS after the last post-drain sample − RSS before, per process. */
  afterDelta: Record<string, number>;
  shutdown: string;
}

export interface S8Run extends LatencyFigures {
  mode: "embedded" | "scale";
  hung: boolean;
  pair: number;
  order: number;
  hungAccepted: number;
  hungOpen: number;
  serverLogLines: number;
  shutdown: string;
  discarded?: boolean;
}

export interface S8Result {
  mode: "embedded" | "scale";
  healthyEndpoints: number;
  healthyRatePerSec: number;
  healthyFraction: number;
  ceilingPerSec: number;
  ceilingSource: string;
  env: Record<string, string>;
  pairsPlanned: number;
  runs: S8Run[];
  discarded: S8Run[];
  /** Healthy p99 of the runs without and with the hung target. */
  without: Spread;
  with: Spread;
  ratio: number;
  pairRatios: number[];
}

export interface S1ScaleResult extends S1Result {
  /** "interleaved": baseline runs alternate with Mitte runs here; "s1": time ran short, S1's median is reused. */
  baselineSource: "interleaved" | "s1";
}

export interface S4ScaleRun {
  workers: number;
  round: number;
  ingestOk: number;
  ingestStatuses: Record<string, number>;
  ingestMs: number;
  apiShutdown: string;
  /** Length of BullMQ's wait list once the api process had stopped, before any worker started. */
  queuedBeforeWorkers: number;
  /** Spawn of the workers → every worker's /healthz answered 200; first → last worker healthy. */
  readyMs: number;
  readySpreadMs: number;
  ratePerSec: number;
  windowMs: number;
  readyToDoneMs: number;
  received: number;
  distinct: number;
  complete: boolean;
  cpu: Record<string, number>;
  serverLogLines: number;
  workerShutdown: string;
}

export interface S4ScaleResult {
  n: number;
  /** N was cut to the short size because the bench was already late. */
  shortened: boolean;
  baselineRuns: S4BaselineRun[];
  baseline: Spread;
  /** Kept runs in the order measured (B, 1, 2, B, 1, 2, …). */
  runs: S4ScaleRun[];
  /** Runs thrown away because other load disturbed them. */
  discarded: S4ScaleRun[];
  /** deliveries/s per worker count. */
  byWorkers: { workers: number; rates: Spread }[];
  /** median deliveries/s with 2 workers ÷ with 1 worker. */
  scaling: number;
}

export interface ScaleReport {
  redis: {
    version: string;
    flags: string;
    settings: Record<string, string>;
    /** `INFO persistence` at the end of the scale scenarios. */
    persistence: Record<string, string>;
    /** AOF rewrites the bench asked for (one after each deployment). */
    rewritesRequested: number;
    shutdown: string;
  };
  postgres: Record<string, string>;
  s1?: S1ScaleResult;
  s3?: S3Result;
  s4?: S4ScaleResult;
  s7?: S7Result;
  s8?: S8Result;
}

export interface Verdict {
  goal: string;
  measured: string;
  met: boolean;
  note?: string;
}

export type VerdictKey =
  | "s1"
  | "s3"
  | "s4"
  | "s4m"
  | "s7Growth"
  | "s7Back"
  | "s8"
  | "s1Scale"
  | "s3Scale"
  | "s7ScaleGrowth"
  | "s7ScaleBack"
  | "s8Scale";

export interface Report {
  startedAt: Date;
  durationS: number;
  /** The command that produced the report, and the scenarios it ran (null: all). */
  command: string;
  selection: string[] | null;
  s1?: S1Result;
  s3?: S3Result;
  s4?: S4Result;
  s4m?: S4mResult;
  s7?: S7Result;
  s8?: S8Result;
  scale?: ScaleReport;
  verdicts: Partial<Record<VerdictKey, Verdict>>;
  /** Notes for the summary (figures that are not complete measurements, information-only caveats). */
  notes: string[];
  observations: string[];
}

/** A latency percentile; marked "≥" when it falls among the lower bounds of undelivered webhooks. */
export function fmtLatency(value: number, run: Pick<LatencyFigures, "censored" | "censoredFloorMs">): string {
  return run.censored > 0 && value >= run.censoredFloorMs ? `≥ ${fmtMs(value)}` : fmtMs(value);
}

const cpuText = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([name, pct]) => `${name} ${Math.round(pct)}%`)
    .join(", ") || "n/a";

const statusText = (statuses: Record<string, number>) =>
  Object.entries(statuses)
    .map(([code, count]) => `${code}: ${fmtInt(count)}`)
    .join(", ") || "none";

const spreadText = (s: Spread, fmt: (n: number) => string = fmtInt) =>
  `median ${fmt(s.median)} (range ${fmt(s.min)}–${fmt(s.max)}, ${s.values.length} runs)`;

const pctText = (fraction: number) => `${Math.round(fraction * 100)} %`;

const metText = (v: Verdict | undefined) => (v ? `${v.met ? "met" : "missed"} (${v.measured})` : "—");

function codeVersion(): string {
  try {
    const run = (args: string[]) =>
      execFileSync("git", args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const commit = run(["rev-parse", "--short", "HEAD"]);
    const dirty = run(["status", "--porcelain", "--untracked-files=no"]).length > 0;
    return `commit ${commit}${dirty ? " with uncommitted changes in the working tree" : ""}`;
  } catch {
    return "unknown (git not available)";
  }
}

export function machineFacts(): string[] {
  const cpuList = cpus();
  return [
    `Code: ${codeVersion()}`,
    `CPUs (os.cpus().length): ${cpuList.length} × ${cpuList[0]?.model.trim() ?? "unknown"}`,
    `Memory (os.totalmem()): ${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `Node.js: ${process.version}`,
    `OS: ${platform()} ${release()}`,
  ];
}

const workersText = (workers: number) => `${workers} worker${workers === 1 ? "" : "s"}`;

/** Every measured window of the report with the other load during it. */
function measuredWindows(report: Report): [string, number | undefined][] {
  const windows: [string, number | undefined][] = [];
  const { s1, s3, s4, s4m, s7, s8, scale } = report;
  if (s1)
    windows.push(
      ...s1.runs.map((r): [string, number | undefined] => [`S1 ${r.target} ${r.round}`, r.cpu.other]),
    );
  const s3Windows = (s: S3Result, label: string) =>
    s.levels.map((l): [string, number | undefined] => [`${label} ${pctText(l.fraction)}`, l.cpu.other]);
  if (s3) windows.push(...s3Windows(s3, "S3"));
  if (s4) {
    windows.push(
      ...s4.baselineRuns.map((r, i): [string, number | undefined] => [`S4 baseline ${i + 1}`, r.cpu.other]),
    );
    windows.push(
      ...s4.mitteRuns.map((r): [string, number | undefined] => [`S4 Mitte ${r.round}`, r.cpu.other]),
    );
  }
  if (s4m) {
    windows.push(
      ...s4m.runs.map((r): [string, number | undefined] => [
        `S4m ${r.monitoring ? "on" : "off"} #${r.order}`,
        r.cpu.other,
      ]),
    );
  }
  const s7Windows = (s: S7Result, label: string): [string, number | undefined][] => [
    [`${label} load`, s.loadCpu.other],
    [`${label} drain`, s.drain.cpu.other],
  ];
  const s8Windows = (s: S8Result, label: string) =>
    s.runs.map((r): [string, number | undefined] => [
      `${label} #${r.order} ${r.hung ? "with" : "without"}`,
      r.cpu.other,
    ]);
  if (s7) windows.push(...s7Windows(s7, "S7"));
  if (s8) windows.push(...s8Windows(s8, "S8"));
  if (scale?.s1) {
    windows.push(
      ...scale.s1.runs.map((r): [string, number | undefined] => [
        `S1-scale ${r.target} ${r.round}`,
        r.cpu.other,
      ]),
    );
  }
  if (scale?.s3) windows.push(...s3Windows(scale.s3, "S3-scale"));
  if (scale?.s4) {
    windows.push(
      ...scale.s4.baselineRuns.map((r, i): [string, number | undefined] => [
        `S4-scale baseline ${i + 1}`,
        r.cpu.other,
      ]),
      ...scale.s4.runs.map((r): [string, number | undefined] => [
        `S4-scale ${workersText(r.workers)} ${r.round}`,
        r.cpu.other,
      ]),
    );
  }
  if (scale?.s7) windows.push(...s7Windows(scale.s7, "S7-scale"));
  if (scale?.s8) windows.push(...s8Windows(scale.s8, "S8-scale"));
  return windows;
}

/** How many measured windows had other load (not the bench's processes) above 25% of a core. */
export function runQuality(report: Report): string {
  const known = measuredWindows(report).filter((w): w is [string, number] => w[1] !== undefined);
  if (known.length === 0) return "unknown (no /proc/stat)";
  const disturbed = known.filter(([, other]) => other > 25);
  if (disturbed.length === 0)
    return `clean — no other load above 25% of a core in any of ${known.length} measured windows.`;
  return `disturbed — other work on the machine used more than 25% of a core in ${disturbed.length} of ${
    known.length
  } measured windows (${disturbed.map(([name, other]) => `${name}: ${Math.round(other)}%`).join(", ")}); those figures are depressed.`;
}

/** The command that runs one scenario alone (its section of the report is the same). */
export const onlyCommand = (name: string) => `\`npm run bench -- --only=${name}\``;

export function renderSummaryTable(report: Report): string {
  const { s1, s3, s4, s4m, s7, s8, verdicts } = report;
  const scale = report.scale;
  const rows: string[][] = [];
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  if (s1) {
    rows.push([
      `S1 ingest throughput (req/s, median of ${s1.mitte.values.length})`,
      fmtInt(s1.baseline.median),
      fmtInt(s1.mitte.median),
      fmtRatio(s1.ratio),
      verdicts.s1?.goal ?? "—",
      metText(verdicts.s1),
      onlyCommand("s1"),
    ]);
  }
  const s3Rows = (s: S3Result, label: string, verdict: Verdict | undefined, name: string) => {
    for (const level of s.levels) {
      const isGoal = level.fraction === s.goalFraction;
      const l = level.latency;
      rows.push([
        `${label} ingest→receipt p50 / p99 / p99.9 at ${pctText(level.fraction)} (${fmtInt(level.ratePerSec)} req/s)`,
        "—",
        `${fmtLatency(l.p50, level)} / ${fmtLatency(l.p99, level)} / ${fmtLatency(l.p999, level)}`,
        "—",
        isGoal ? (verdict?.goal ?? "—") : "none",
        isGoal ? metText(verdict) : "information only",
        onlyCommand(name),
      ]);
    }
  };
  if (s3) s3Rows(s3, "S3", verdicts.s3, "s3");
  if (s4) {
    rows.push([
      `S4 delivery throughput (deliveries/s, N=${fmtInt(s4.n)}, median of ${s4.mitte.values.length})`,
      fmtInt(s4.baseline.median),
      fmtInt(s4.mitte.median),
      fmtRatio(s4.ratio),
      verdicts.s4?.goal ?? "—",
      metText(verdicts.s4),
      onlyCommand("s4"),
    ]);
  }
  if (s4m) {
    rows.push([
      `S4m delivery monitoring overhead (deliveries/s, N=${fmtInt(s4m.n)}, median of ${s4m.off.values.length} off / ${
        s4m.on.values.length
      } on; Baseline = monitoring off, Mitte = on)`,
      fmtInt(s4m.off.median),
      fmtInt(s4m.on.median),
      fmtRatio(s4m.on.median / s4m.off.median),
      verdicts.s4m?.goal ?? "—",
      metText(verdicts.s4m),
      onlyCommand("s4m"),
    ]);
  }
  const s7Rows = (s: S7Result, label: string, growth?: Verdict, back?: Verdict, name = "s7") => {
    rows.push(
      [
        `${label} RSS growth while ${fmtInt(s.n)} webhooks queue (target down)`,
        "—",
        growth?.measured ?? "—",
        "—",
        growth?.goal ?? "—",
        growth ? (growth.met ? "met" : "missed") : "—",
        onlyCommand(name),
      ],
      [
        `${label} RSS after draining`,
        "—",
        back?.measured ?? "—",
        "—",
        back?.goal ?? "—",
        back ? (back.met ? "met" : "missed") : "—",
        onlyCommand(name),
      ],
      [
        `${label} drain rate once the target is back (deliveries/s, ${fmtInt(s.drain.expected)} due at once)`,
        "—",
        fmtInt(s.drain.ratePerSec),
        "—",
        "none",
        `information only${
          s.peakRedisUsedMemory !== null && s.settled.redisUsedMemory !== null
            ? `; Redis used_memory ${fmtMb(s.before.redisUsedMemory ?? Number.NaN)} → ${fmtMb(
                s.settled.redisUsedMemory,
              )} queued → ${fmtMb(s.after.at(-1)?.redisUsedMemory ?? Number.NaN)} drained`
            : ""
        }`,
        onlyCommand(name),
      ],
    );
  };
  if (s7) s7Rows(s7, "S7", verdicts.s7Growth, verdicts.s7Back);
  const s8Row = (s: S8Result, label: string, verdict: Verdict | undefined, name: string) =>
    rows.push([
      `${label} healthy endpoints' p99 with one hung target (ms, ${fmtInt(s.healthyRatePerSec)} req/s over ${
        s.healthyEndpoints
      } endpoints, median of ${s.with.values.length}; Baseline = without it)`,
      fmtMs(s.without.median),
      fmtMs(s.with.median),
      fmtRatio(s.ratio),
      verdict?.goal ?? "—",
      verdict ? `${verdict.met ? "met" : "missed"} (${fmtRatio(s.ratio)})` : "—",
      onlyCommand(name),
    ]);
  if (s8) s8Row(s8, "S8", verdicts.s8, "s8");
  if (scale?.s1) {
    const s1s = scale.s1;
    rows.push([
      `S1-scale ingest throughput, 1 api process (req/s, median of ${s1s.mitte.values.length})`,
      `${fmtInt(s1s.baseline.median)}${s1s.baselineSource === "s1" ? " (S1's)" : ""}`,
      fmtInt(s1s.mitte.median),
      fmtRatio(s1s.ratio),
      verdicts.s1Scale?.goal ?? "—",
      metText(verdicts.s1Scale),
      onlyCommand("s1-scale"),
    ]);
  }
  if (scale?.s3) s3Rows(scale.s3, "S3-scale", verdicts.s3Scale, "s3-scale");
  if (scale?.s4) {
    const s4s = scale.s4;
    for (const { workers, rates } of s4s.byWorkers) {
      rows.push([
        `S4-scale delivery throughput, ${workersText(workers)} (deliveries/s, N=${fmtInt(s4s.n)}, median of ${
          rates.values.length
        })`,
        fmtInt(s4s.baseline.median),
        fmtInt(rates.median),
        fmtRatio(rates.median / s4s.baseline.median),
        "none",
        workers === 1
          ? "information only"
          : `information only; 1 → ${workers} workers: ${fmtRatio(s4s.scaling)}`,
        onlyCommand("s4-scale"),
      ]);
    }
  }
  if (scale?.s7) s7Rows(scale.s7, "S7-scale", verdicts.s7ScaleGrowth, verdicts.s7ScaleBack, "s7-scale");
  if (scale?.s8) s8Row(scale.s8, "S8-scale", verdicts.s8Scale, "s8-scale");
  return [
    row(["Scenario", "Baseline", "Mitte", "Ratio", "Goal", "Result", "Command"]),
    row(["---", "---:", "---:", "---:", "---", "---", "---"]),
    ...rows.map(row),
  ].join("\n");
}

// ---------------------------------------------------------------- S3

const LATENCY_METHOD = (connections: number, warmup: number, measure: number) => [
  `Each run starts with a run-in that is not measured: ${LATENCY_RUN_IN_S} s at the run's rate, at most ${fmtInt(
    LATENCY_RUN_IN_MAX_RATE,
  )} req/s, to the`,
  "endpoints that deliver, and the bench waits until all of it was delivered. A fresh process runs its code cold: at",
  "3,000 req/s its first 2–2.5 s queued requests up to 0.5 s, where a second run on the same process stayed under",
  "60 ms, so without the run-in the latency levels measured start-up rather than the rate.",
  `Open-loop sender (own, on an undici Pool with ${connections} connections — autocannon's \`overallRate\` is`,
  "closed-loop per connection and does not expose per-request send times). Request i is due at t0 + i/rate and is",
  "sent then, whatever happened to earlier requests. Latency = time the sink (in the bench process, same",
  "`performance.now()` clock) had read the whole delivered body − the request's due time, so sender lag counts",
  `against Mitte, not for it. ${warmup} s warm-up at the same rate excluded, then ${measure} s measured. A webhook`,
  "not delivered when the bench stops waiting (15 s after the last request was due, or 5 s without progress)",
  "counts with its lower bound (stop − due); a percentile reaching into those is marked ≥.",
];

function renderS3(s3: S3Result, verdict: Verdict | undefined): string[] {
  const scale = s3.mode === "scale";
  const label = scale ? "S3-scale" : "S3";
  const first = s3.levels[0];
  return [
    `## ${label} — ingest→receipt latency at 25, 50 and 75 % of the measured ${scale ? "scale-mode " : ""}ceiling`,
    "",
    `Command: ${onlyCommand(scale ? "s3-scale" : "s3")}. Goal (issue 6): p99 ≤ ${
      scale ? 100 : 50
    } ms at 50 % of the ceiling; the 25 % and 75 % levels are information. The 10 % level is supplementary (it`,
    "replaces the former S3b): a rate at which Mitte keeps up with ingest and delivery together, so its latency is",
    "what Mitte adds rather than backlog queueing; it has no goal.",
    "",
    ...LATENCY_METHOD(first?.connections ?? 64, first?.warmupSeconds ?? 1, first?.measureSeconds ?? 8),
    "",
    scale
      ? "Each level gets a fresh scale deployment (see Scale mode — set-up) with one `--role api` process that ingests and one `--role worker` process (MITTE_DELIVERY_CONCURRENCY=64, MITTE_ENDPOINT_CONCURRENCY=64, as in S4-scale) that delivers while the load runs; one endpoint; deliveries are signed."
      : "Each level gets a fresh Mitte (one process, delivery enabled, MITTE_ENDPOINT_CONCURRENCY=64, one endpoint, deliveries signed with a generated secret) that ingests and delivers at the same time.",
    `Ceiling: ${fmtInt(s3.ceilingPerSec)} req/s (${s3.ceilingSource}).`,
    "",
    "| Level | Rate (achieved) | Sent / 202 / other | Received (of 202s) | not in time | p50 | p90 | p99 | p99.9 | max | ingest→202 p99 | max sender lag | CPU (100% = 1 core) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...[...s3.levels, ...s3.discarded].map((l) => {
      const d = l.latency;
      return `| ${pctText(l.fraction)}${l.discarded ? " (discarded)" : ""} | ${fmtInt(l.ratePerSec)} (${fmtInt(
        l.achievedRatePerSec,
      )}) | ${fmtInt(l.sent)} / ${fmtInt(l.accepted202)} / ${statusText(l.non202)}${
        l.errors > 0 ? `, ${fmtInt(l.errors)} errors` : ""
      } | ${fmtInt(l.received)} | ${fmtInt(l.censored)} | ${fmtLatency(d.p50, l)} | ${fmtLatency(
        d.p90,
        l,
      )} | ${fmtLatency(d.p99, l)} | ${fmtLatency(d.p999, l)} | ${fmtLatency(d.max, l)} | ${fmtMs(
        l.ingestLatency.p99,
      )} | ${fmtMs(l.maxSendLagMs)} | ${cpuText(l.cpu)} |`;
    }),
    "",
    `- Goal p99 ≤ ${scale ? 100 : 50} ms at 50 % — ${verdict ? metText(verdict) : "not measured"}`,
    `- Duplicates at the sink: ${s3.levels.map((l) => `${pctText(l.fraction)} ${fmtInt(l.duplicates)}`).join(", ")}; first transport error: ${
      s3.levels.find((l) => l.firstError)?.firstError ?? "none"
    }`,
    "",
  ];
}

// ---------------------------------------------------------------- S7

function renderS7(s7: S7Result, growth: Verdict | undefined, back: Verdict | undefined): string[] {
  const scale = s7.mode === "scale";
  const label = scale ? "S7-scale" : "S7";
  const names = s7.processes;
  const heapCell = (h: HeapFigures | null | undefined) =>
    h
      ? `${fmtMb(h.liveAfterFullGc ?? Number.NaN)} (${
          h.fullGcAtMs === null ? "no full GC yet" : `full GC at ${Math.round(h.fullGcAtMs / 1000)} s`
        }) / ${fmtMb(h.committed ?? Number.NaN)}`
      : "n/a";
  const memCells = (p: MemoryPoint) => [
    ...names.flatMap((n) => {
      const m = p.rss[n];
      return [m ? `${fmtMb(m.rss)} (anon ${fmtMb(m.anon)})` : "n/a", heapCell(p.heap?.[n])];
    }),
    ...(scale ? [fmtMb(p.redisUsedMemory ?? Number.NaN)] : []),
  ];
  const header = [
    "Moment",
    "Queued",
    ...names.flatMap((n) => [`${n} RSS (anon)`, `${n} V8 heap: live after the latest full GC / committed`]),
    ...(scale ? ["Redis used_memory"] : []),
    "503s so far",
  ];
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const memRow = (moment: string, p: MemoryPoint) =>
    row([
      moment,
      fmtInt(p.queued),
      ...memCells(p),
      p.refusedSoFar === undefined ? "—" : fmtInt(p.refusedSoFar),
    ]);
  return [
    `## ${label} — ${fmtInt(s7.n)} webhooks queued while the target is down, then drained`,
    "",
    `Command: ${onlyCommand(scale ? "s7-scale" : "s7")}. Goal (issue 6): RSS ≤ +5 MB per 10 k queued and back to baseline after draining.`,
    "",
    "How the target is down: the sink (a child process) answers **503 with `Retry-After: <HTTP date T>`**, T being",
    `${s7.holdS} s after the target goes down, right before the load (this run: \`${s7.retryAfter}\`). Every webhook's first attempt fails at once and`,
    "Mitte schedules the next one at T (a target's longer Retry-After wins over the 5 s backoff), so each webhook",
    "spends one of the Pro plan's five attempts and all of them become due at the same instant. A refused port was not",
    "chosen: its retries follow the 5/10/20/40 s backoff from each webhook's own ingest time, so the receipts after the",
    "target comes back would trace the backoff schedule instead of Mitte's drain rate, and the last attempts would run",
    "out if the load took longer than about a minute. The target answers 200 again 1 s before T (nothing is due",
    "earlier), and Mitte drains a queue of every accepted webhook at once.",
    "",
    scale
      ? `One scale deployment for the whole scenario: one \`--role api\` and one \`--role worker\` process (worker: ${Object.entries(
          s7.concurrency,
        )
          .map(([k, v]) => `${k}=${v}`)
          .join(
            ", ",
          )}), never restarted; the jobs wait in the bench's redis-server (BullMQ delayed set), the webhooks in PostgreSQL.`
      : `One Mitte process for the whole scenario (delivery enabled, ${Object.entries(s7.concurrency)
          .map(([k, v]) => `${k}=${v}`)
          .join(", ")}, as in S4), never restarted; the jobs wait in its SQLite queue table.`,
    `Sequence: ${fmtInt(s7.warmupN)} webhooks ingested and delivered with the target up (warm-up), 2 s idle, RSS`,
    `"before"; target down; ${fmtInt(s7.n)} webhooks ingested in batches of ${fmtInt(s7.step)} (undici loop, ${s7.ingestConcurrency} in flight),`,
    "RSS read right after each batch; 3 s idle; at T the target is up and the sink times first→last receipt; RSS",
    `${s7.afterS.map((s) => `${s} s`).join(", ")} after the last receipt. RSS is VmRSS from /proc/<pid>/status (anon = RssAnon,`,
    "the heap and stacks; the rest is file-backed: code and mapped files). Every Mitte process runs with",
    "`node --trace-gc` (not otherwise changed); the V8 columns come from that output: the main isolate's live heap",
    "right after its latest full GC (Mark-Compact; when it ran, in seconds since the process started) and the heap",
    "V8 has committed. RSS also holds garbage not yet collected and the heap V8 keeps committed after a burst; the",
    "live heap after a full GC is what the process actually retains.",
    "",
    row(header),
    row(header.map((_, i) => (i === 0 ? "---" : "---:"))),
    memRow("before loading", s7.before),
    ...s7.points.map((p) => memRow(`after ${fmtInt(p.queued)}`, p)),
    memRow("3 s after the load", s7.settled),
    row([
      "peak during the drain",
      "—",
      ...names.flatMap((n) => [fmtMb(s7.peak[n] ?? Number.NaN), "—"]),
      ...(scale ? [fmtMb(s7.peakRedisUsedMemory ?? Number.NaN)] : []),
      "—",
    ]),
    ...s7.after.map((p, i) => memRow(`${s7.afterS[i]} s after draining`, p)),
    "",
    `- Growth per 10 k queued, (RSS after ${fmtInt(s7.accepted)} − RSS before) / ${fmtInt(s7.accepted / s7.step)}: ${names
      .map((n) => `${n} ${fmtMb(s7.growthPerStep[n] ?? Number.NaN, true)}`)
      .join(", ")} — goal ≤ +5 MB — ${growth ? (growth.met ? "met" : "missed") : "—"}`,
    `- Least-squares slope over the ${s7.points.length} points after each batch (leaves out the step from idle to loaded): ${names
      .map((n) => `${n} ${fmtMb(s7.slope[n] ?? Number.NaN, true)}`)
      .join(", ")} per 10 k`,
    `- After draining (${s7.afterS.at(-1)} s): ${names
      .map((n) => `${n} ${fmtMb(s7.afterDelta[n] ?? Number.NaN, true)}`)
      .join(", ")} vs before loading — goal: back to baseline, read as within +5 MB — ${
      back ? (back.met ? "met" : "missed") : "—"
    }; peak during the drain ${names.map((n) => `${n} ${fmtMb(s7.peakDelta[n] ?? Number.NaN, true)}`).join(", ")}`,
    `- V8 live heap after a full GC (information): ${names
      .map((n) => {
        const live = (p: MemoryPoint) => p.heap?.[n]?.liveAfterFullGc ?? Number.NaN;
        const atLoadEnd = live(s7.settled);
        return `${n} ${fmtMb(live(s7.before))} before loading, ${fmtMb(atLoadEnd)} after the load (${fmtMb(
          (atLoadEnd - live(s7.before)) / (s7.accepted / s7.step),
          true,
        )} per 10 k), ${fmtMb(live(s7.after.at(-1)!))} after draining`;
      })
      .join("; ")}`,
    `- Load: ${fmtInt(s7.accepted)} × 202 (${statusText(s7.statuses)}; transport errors ${fmtInt(s7.errors)}) in ${fmtMs(
      s7.loadMs,
    )} = ${fmtInt((s7.accepted * 1000) / s7.loadMs)}/s while the first attempts ran; 503s answered while down: ${fmtInt(
      s7.refusedWhileDown,
    )}; delivered before the target was back: ${fmtInt(s7.receivedBeforeUp)}; the load ended ${fmtMs(
      s7.loadEndedBeforeUpMs,
    )} before T. CPU during the load: ${cpuText(s7.loadCpu)}`,
    `- Drain: ${fmtInt(s7.drain.distinct)} of ${fmtInt(s7.drain.expected)} distinct (${fmtInt(s7.drain.total)} total) in ${fmtMs(
      s7.drain.windowMs,
    )} first→last receipt = **${fmtInt(s7.drain.ratePerSec)} deliveries/s**; target up → all received ${fmtMs(
      s7.drain.upToDoneMs,
    )}. CPU during the drain: ${cpuText(s7.drain.cpu)}`,
    `- Shutdown: ${s7.shutdown}`,
    "",
  ];
}

// ---------------------------------------------------------------- S8

function renderS8(s8: S8Result, verdict: Verdict | undefined): string[] {
  const scale = s8.mode === "scale";
  const label = scale ? "S8-scale" : "S8";
  const first = s8.runs[0];
  const sorted = [...s8.runs, ...s8.discarded].sort((a, b) => a.order - b.order);
  return [
    `## ${label} — one hung target beside ${s8.healthyEndpoints} healthy endpoints`,
    "",
    `Command: ${onlyCommand(scale ? "s8-scale" : "s8")}. Goal (issue 6, faults): healthy endpoints' p99 within 1.2× while one target hangs.`,
    "",
    ...LATENCY_METHOD(first?.connections ?? 64, first?.warmupSeconds ?? 1, first?.measureSeconds ?? 8),
    "",
    `${s8.healthyEndpoints} healthy endpoints (targets: the bench's sink) share ${fmtInt(s8.healthyRatePerSec)} req/s (${
      s8.healthyFraction
    } × ${fmtInt(s8.ceilingPerSec)} req/s, ${s8.ceilingSource}), request i to endpoint i mod ${s8.healthyEndpoints}. In the runs`,
    `"with", a ${s8.healthyEndpoints + 1}th endpoint points at a target that accepts TCP connections, reads, and never answers; it gets`,
    `its equal share on top (request i to endpoint i mod ${s8.healthyEndpoints + 1}, total ${fmtInt(
      (s8.healthyRatePerSec * (s8.healthyEndpoints + 1)) / s8.healthyEndpoints,
    )} req/s), so each healthy endpoint gets`,
    "the same traffic in both. Latency is measured on the healthy endpoints' webhooks only. One fresh",
    `${scale ? "scale deployment (one api, one worker process)" : "Mitte process"} per run, with Mitte's default delivery settings written out: ${Object.entries(
      s8.env,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(", ")}`,
    "(so within the measured window the hung attempts never time out: they hold their endpoint's slots).",
    `Runs alternate without/with, with/without, … (${s8.pairsPlanned} pairs planned); the hung target's connections are`,
    "destroyed after each run's measurement, before Mitte is stopped.",
    "",
    "| # | Hung target | Rate (achieved) | Healthy received / expected | not in time | p50 | p99 | p99.9 | max | ingest→202 p99 | hung connections | CPU (100% = 1 core) |",
    "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ...sorted.map((r) => {
      const d = r.latency;
      return `| ${r.order}${r.discarded ? " (discarded)" : ""} | ${r.hung ? "with" : "without"} | ${fmtInt(
        r.ratePerSec,
      )} (${fmtInt(r.achievedRatePerSec)}) | ${fmtInt(r.received)} / ${fmtInt(r.expected)}${
        r.errors > 0 || Object.keys(r.non202).length > 0
          ? ` (non-202: ${statusText(r.non202)}, errors ${fmtInt(r.errors)})`
          : ""
      } | ${fmtInt(r.censored)} | ${fmtLatency(d.p50, r)} | ${fmtLatency(d.p99, r)} | ${fmtLatency(
        d.p999,
        r,
      )} | ${fmtLatency(d.max, r)} | ${fmtMs(r.ingestLatency.p99)} | ${r.hung ? fmtInt(r.hungAccepted) : "—"} | ${cpuText(
        r.cpu,
      )} |`;
    }),
    "",
    `- Healthy p99 without the hung target: ${spreadText(s8.without, fmtMs)}`,
    `- Healthy p99 with the hung target: ${spreadText(s8.with, fmtMs)}`,
    `- Ratio of the medians: ${fmtRatio(s8.ratio)} (goal ≤ 1.2×) — ${verdict ? (verdict.met ? "met" : "missed") : "—"}; per pair (with ÷ without): ${
      s8.pairRatios.map(fmtRatio).join(", ") || "n/a"
    }`,
    "",
  ];
}

export function renderMarkdown(report: Report): string {
  const { s1, s3, s4, s4m, s7, s8, verdicts } = report;
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);

  push(
    "# Mitte benchmarks",
    "",
    "Generated by `npm run bench` (bench/run.ts). Every Mitte throughput figure is set against a baseline measured in",
    "the same run by the same load generator, on the same machine, over loopback (127.0.0.1). Load generator,",
    "baselines and Mitte share the machine's cores, so absolute numbers are machine-bound; the ratios are the point.",
    "S1, S3, S4, S4m, S7 and S8 measure embedded mode (one process, SQLite); the `-scale` scenarios measure scale mode",
    "(PostgreSQL + Redis, separate `api` and `worker` processes, [docs/deployment.md](deployment.md)).",
    "",
    `- Date: ${report.startedAt.toISOString()} (run took ${Math.round(report.durationS)} s)`,
    ...machineFacts().map((fact) => `- ${fact}`),
    `- Command: \`${report.command}\`${
      report.selection ? ` (only ${report.selection.join(", ")}; the other scenarios were not run)` : ""
    }`,
    "- Subsets: `npm run bench -- --only=s1,s3,s4,s4m,s7,s8,s1-scale,s3-scale,s4-scale,s7-scale,s8-scale` (any of them;",
    "  `embedded` and `scale` name each half); S3 and S8 without S1 in the same run take their ceiling from",
    "  `--ceiling=<req/s>` (`--scale-ceiling=` for scale mode) or else from one S1 Mitte run made for it.",
    "",
    "## Summary",
    "",
    renderSummaryTable(report),
    "",
  );
  push(`- Run quality: ${runQuality(report)}`);
  for (const verdict of Object.values(verdicts)) {
    if (verdict?.note) push(`- ${verdict.note}`);
  }
  for (const note of report.notes) push(`- ${note}`);
  push("");

  if (s1) {
    push(
      "## S1 — ingest throughput",
      "",
      `Command: ${onlyCommand("s1")}. Goal (issue 6): ≥ 0.5× the baseline.`,
      "",
      `autocannon, ${s1.connections} connections, POST of a 1024-byte Stripe-like JSON body with Stripe headers,`,
      `${s1.warmupSeconds} s warm-up (discarded) then ${s1.measureSeconds} s measured; req/s is autocannon's mean of`,
      `per-second samples. Runs interleaved ${s1.runs.map((r) => (r.target === "baseline" ? "B" : "M")).join(", ")}.`,
      "",
      "- Baseline: bare `node:http` server (child process) that reads the whole body and answers 202 with a small JSON body.",
      "- Mitte: `node apps/cli/bin/mitte.js start`, delivery disabled, rate limits off, fresh data dir and pro user per run,",
      "  one endpoint created through the REST API.",
      "",
      "CPU columns: share of one core used by each process during the measured window (`bench` is autocannon);",
      "`other` is everything else busy on the machine (other people's work on a shared box). Before each run the bench",
      `waits (bounded) for the machine to be quiet; a run during which \`other\` exceeded 25% is discarded and measured`,
      "again (at most 3 repeats per `npm run bench`); discarded runs are listed but excluded from the medians.",
      "",
      "| Round | Target | req/s | 2xx | non-2xx | errors | latency p50 / p99 | CPU (100% = 1 core) |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
      ...[...s1.runs, ...s1.discarded]
        .sort((a, b) => a.round - b.round)
        .map(
          (run) =>
            `| ${run.round}${run.discarded ? " (discarded)" : ""} | ${run.target} | ${fmtInt(run.reqPerSec)} | ${fmtInt(
              run.ok2xx,
            )} | ${fmtInt(run.non2xx)} | ${fmtInt(run.errors)} | ${run.latencyP50Ms} / ${run.latencyP99Ms} ms | ${cpuText(
              run.cpu,
            )} |`,
        ),
      "",
      `- Baseline: median ${fmtInt(s1.baseline.median)} req/s (range ${fmtInt(s1.baseline.min)}–${fmtInt(s1.baseline.max)})`,
      `- Mitte: median ${fmtInt(s1.mitte.median)} req/s (range ${fmtInt(s1.mitte.min)}–${fmtInt(s1.mitte.max)})`,
      `- Ratio of medians: ${fmtRatio(s1.ratio)} (goal ≥ 0.5×) — ${verdicts.s1?.met ? "met" : "missed"}`,
      `- Mitte non-2xx responses over all measured runs: ${fmtInt(s1.mitteNon2xx)}; transport errors: ${fmtInt(s1.mitteErrors)}`,
      "",
    );
  }
  if (s3) push(...renderS3(s3, verdicts.s3));
  if (s4) push(...renderS4(s4, verdicts.s4));
  if (s4m) push(...renderS4m(s4m, s4, verdicts.s4m));
  if (s7) push(...renderS7(s7, verdicts.s7Growth, verdicts.s7Back));
  if (s8) push(...renderS8(s8, verdicts.s8));
  if (report.scale) push(...renderScale(report.scale, verdicts));

  if (report.observations.length > 0) {
    push("## Observations", "", ...report.observations.map((o) => `- ${o}`), "");
  }
  return lines.join("\n");
}

function renderS4(s4: S4Result, verdict: Verdict | undefined): string[] {
  const medianRun = [...s4.mitteRuns].sort((a, b) => a.ratePerSec - b.ratePerSec)[
    Math.floor(s4.mitteRuns.length / 2)
  ];
  const order: string[] = [];
  for (let i = 0; i < Math.max(s4.baselineRuns.length, s4.mitteRuns.length); i += 1) {
    if (s4.baselineRuns[i]) order.push("B");
    if (s4.mitteRuns[i]) order.push("M");
  }
  return [
    "## S4 — delivery throughput",
    "",
    `Command: ${onlyCommand("s4")}. Goal (issue 6): ≥ 0.5× the baseline.`,
    "",
    `N = ${fmtInt(s4.n)} webhooks of 1024 bytes. The sink runs in its own child process, answers 200 and reports over IPC.`,
    "Rate = (N − 1) / (last receipt − first receipt), both timestamps taken in the sink, for baseline and Mitte alike:",
    "Mitte's start-up (and the time before its first delivery) is excluded by starting the clock at the first receipt.",
    "",
    "- Baseline: undici `request` loop in the bench process, 64 requests in flight on a keep-alive Agent, posting the",
    "  same N bodies to the same sink.",
    "- Mitte: the N webhooks are ingested with delivery disabled into a fresh data dir, Mitte is stopped (SIGTERM, exit",
    "  awaited), then started again on the same data dir with delivery enabled, MITTE_DELIVERY_CONCURRENCY=64,",
    "  MITTE_ENDPOINT_CONCURRENCY=64.",
    `- Interleaved ${order.join(", ")} (B = baseline pass, M = Mitte run); medians and ranges reported. A Mitte run during`,
    "  which other load exceeded 25% of a core is discarded and measured again while the time budget allows.",
    "",
    "| Round | Baseline deliveries/s | Mitte deliveries/s | Mitte first→last receipt | Mitte received (distinct) | Mitte ingest (delivery off) | spawn → /healthz | CPU baseline | CPU Mitte |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ...[...s4.mitteRuns, ...s4.discardedMitte]
      .sort((a, b) => a.round - b.round)
      .map((m) => {
        const b = m.discarded ? undefined : s4.baselineRuns[m.round - 1];
        return `| ${m.round}${m.discarded ? " (discarded)" : ""} | ${b ? fmtInt(b.ratePerSec) : "—"} | ${fmtInt(
          m.ratePerSec,
        )} | ${fmtMs(m.windowMs)} | ${fmtInt(m.distinct)} (total ${fmtInt(m.received)})${
          m.complete ? "" : ", incomplete"
        } | ${fmtInt(m.ingestOk)} × 2xx in ${fmtMs(m.ingestMs)} | ${fmtMs(m.readyMs)} | ${b ? cpuText(b.cpu) : "—"} | ${cpuText(
          m.cpu,
        )} |`;
      }),
    "",
    `- Baseline: ${spreadText(s4.baseline)} deliveries/s`,
    `- Mitte: ${spreadText(s4.mitte)} deliveries/s`,
    `- Ratio of medians: ${fmtRatio(s4.ratio)} (goal ≥ 0.5×) — ${verdict?.met ? "met" : "missed"}`,
    ...(medianRun
      ? [
          `- Median Mitte run: /healthz → all N received ${fmtMs(medianRun.readyToDoneMs)}; spawn → all N received ${fmtMs(
            medianRun.spawnToDoneMs,
          )}; ingest shutdown: ${medianRun.shutdown}`,
        ]
      : []),
    "",
  ];
}

function renderS4m(s4m: S4mResult, s4: S4Result | undefined, verdict: Verdict | undefined): string[] {
  const onOff = (r: S4mRun) => (r.monitoring ? "on" : "off");
  return [
    "## S4m — cost of delivery monitoring (stats, live events, endpoint-down checks)",
    "",
    `Command: ${onlyCommand("s4m")}. Goal (issue 5): the stats and event path adds at most 10 % to the delivery throughput.`,
    "`MITTE_DELIVERY_MONITORING=false` turns off what Mitte does after every delivery attempt (the stats recording, the",
    "live `webhook:delivered` event and the endpoint-down check); S4m measures S4's delivery throughput with it `false`",
    "and `true`.",
    "",
    `- Same measurement as S4: N = ${fmtInt(s4m.n)} (the same bodies), the same sink child, the same rate definition`,
    "  (N − 1) / (last receipt − first receipt) taken in the sink, MITTE_DELIVERY_CONCURRENCY=64 and",
    "  MITTE_ENDPOINT_CONCURRENCY=64; the only difference between the two settings is MITTE_DELIVERY_MONITORING.",
    "- The N webhooks are ingested once (delivery off, as in S4) into a fresh data dir, Mitte is stopped (SIGTERM, exit",
    "  awaited), and every delivery run starts Mitte on its own byte-for-byte copy of that stopped data dir, so all runs",
    "  begin from the same state. These runs do not include S4's Mitte runs: all are dedicated, measured right after S4,",
    `  interleaved off, on, off, on, … (${s4m.pairsPlanned} pairs planned; fewer only when the bench is late); each`,
    "  setting's median is reported, overhead = 1 − median(on) / median(off).",
    "- After each run, once the sink has every webhook and outside the measured window, the bench reads the endpoint's",
    "  stats (`GET /api/v1/endpoints/:id/stats`, totals.requests) to check that the switch took effect: 0 attempts with",
    "  monitoring off, every delivery with it on.",
    "- A run during which other load exceeded 25% of a core is discarded and measured again (at most twice, and only",
    "  while the time budget allows); discarded runs are listed but excluded from the medians.",
    "",
    "| # | Monitoring | deliveries/s | first→last receipt | received (distinct) | attempts in stats | CPU (100% = 1 core) |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ...[...s4m.runs, ...s4m.discarded]
      .sort((a, b) => a.order - b.order)
      .map(
        (r) =>
          `| ${r.order}${r.discarded ? " (discarded)" : ""} | ${onOff(r)} | ${fmtInt(r.ratePerSec)} | ${fmtMs(
            r.windowMs,
          )} | ${fmtInt(r.distinct)} (total ${fmtInt(r.received)})${r.complete ? "" : ", incomplete"} | ${
            r.statsRequests === null ? "n/a" : fmtInt(r.statsRequests)
          } | ${cpuText(r.cpu)} |`,
      ),
    "",
    `- Monitoring off: median ${fmtInt(s4m.off.median)} deliveries/s (range ${fmtInt(s4m.off.min)}–${fmtInt(s4m.off.max)})`,
    `- Monitoring on: median ${fmtInt(s4m.on.median)} deliveries/s (range ${fmtInt(s4m.on.min)}–${fmtInt(s4m.on.max)})`,
    `- Overhead 1 − on/off: ${fmtOverhead(s4m.overhead)} (goal ≤ 10 %) — ${verdict?.met ? "met" : "missed"}; per pair: ${
      s4m.pairOverheads.map(fmtOverhead).join(", ") || "n/a"
    }`,
    `- Switch confirmed by the stats: ${s4m.switchVerified ? "yes" : "no"}`,
    `- Ingest of the N webhooks: ${fmtInt(s4m.ingestOk)} × 2xx (${statusText(s4m.ingestStatuses)}) in ${fmtMs(
      s4m.ingestMs,
    )}; shutdown: ${s4m.shutdown}`,
    ...(s4
      ? [
          "- For comparison, not part of the medians: S4's Mitte runs (monitoring at its default, on; measured before S4m",
          `  in this run, each with its own ingest) delivered a median of ${fmtInt(s4.mitte.median)}/s.`,
        ]
      : []),
    "",
  ];
}

function renderScale(scale: ScaleReport, verdicts: Report["verdicts"]): string[] {
  const { s1: s1s, s4: s4s, redis, postgres } = scale;
  const p = redis.persistence;
  const settingsText = Object.entries(redis.settings)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
  const out: string[] = [
    "## Scale mode — set-up",
    "",
    "The scale scenarios run Mitte as docs/deployment.md describes it: separate `node apps/cli/bin/mitte.js start --role api`",
    "and `--role worker` processes on PostgreSQL and Redis. Each Mitte run gets a fresh deployment: its own PostgreSQL",
    "schema (`create schema` through the `pg` client before, `drop schema … cascade` after), its own Redis key prefix, a pro",
    "user made by `mitte user create --plan pro --json` with the same environment, and its endpoints created through the api",
    "process's REST API. Environment of every process: `DATABASE_URL`, `MITTE_PG_SCHEMA`, `REDIS_URL`, `MITTE_REDIS_PREFIX`,",
    "`MITTE_SECRET_KEY` (random, one per bench run), rate limits off, `MITTE_ALLOW_PRIVATE_TARGETS=127.0.0.1/32`,",
    "`LOG_LEVEL=warn`, default pool size (`MITTE_PG_POOL_SIZE` 10 per process), default reconciler timings.",
    "",
    `- PostgreSQL: the server already running at 127.0.0.1:5432 (database \`test\`, shared with other people's tests), version ${
      postgres.server_version
    }, synchronous_commit=${postgres.synchronous_commit}, fsync=${postgres.fsync}: every 202 waits for a WAL flush.`,
    `- Redis: the bench's own \`redis-server\` ${redis.version} child on a free loopback port with`,
    `  \`${redis.flags}\`, its AOF in a temp dir (the shared Redis on 6379 is not used).`,
    `  Read back with CONFIG GET: ${settingsText}. After each deployment the bench runs FLUSHALL and then`,
    "  BGREWRITEAOF (awaited) on it, so every run starts from an empty Redis and a tiny AOF, and Redis's automatic",
    "  AOF rewrite (a fork, once the AOF exceeds 64 MB and has doubled since the last rewrite) does not fire inside a",
    "  measured window.",
    `- AOF at the end of the scale scenarios: aof_enabled=${p.aof_enabled ?? "?"}, aof_last_write_status=${
      p.aof_last_write_status ?? "?"
    }, aof_rewrites=${p.aof_rewrites ?? "?"} (${redis.rewritesRequested} of them requested by the bench between`,
    `  deployments), aof_delayed_fsync=${p.aof_delayed_fsync ?? "?"}; Redis stopped with ${redis.shutdown}.`,
    "- CPU columns: `postgres` is the deployment's own PostgreSQL backends (found in pg_stat_activity by the",
    "  `<prefix>-<role>` application_name Mitte sets, polled every 250 ms); PostgreSQL's shared background processes",
    "  (WAL writer, checkpointer) and anyone else's backends count as `other`.",
    "",
  ];
  if (s1s) {
    const baselineText =
      s1s.baselineSource === "interleaved"
        ? `Runs interleaved ${s1s.runs.map((r) => (r.target === "baseline" ? "B" : "A")).join(", ")} (B = baseline, A = api process).`
        : "The run was late (or S1-scale ran without its baseline), so only api runs were made; the baseline is S1's median from this same run (not interleaved).";
    out.push(
      "## S1-scale — ingest throughput of one api process",
      "",
      `Command: ${onlyCommand("s1-scale")}. Goal (issue 6): ≥ 0.2× the baseline.`,
      "",
      `Same load as S1: autocannon, ${s1s.connections} connections, the same 1024-byte body and Stripe headers, ${s1s.warmupSeconds} s warm-up`,
      `(discarded) then ${s1s.measureSeconds} s measured. ${baselineText} No worker runs, so delivery is off and the jobs stay`,
      "in Redis: the api process commits each group of webhooks in PostgreSQL, answers 202 after the commit and adds one",
      "BullMQ hand-over job per commit to Redis (a worker would add the delivery jobs). The baseline is the same bare `node:http` server as S1. A run during which other load exceeded",
      "25% of a core is discarded and measured again (at most twice, and only while the time budget allows).",
      "",
      "| Round | Target | req/s | 2xx | non-2xx | errors | latency p50 / p99 | CPU (100% = 1 core) |",
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
      ...[...s1s.runs, ...s1s.discarded]
        .sort((a, b) => a.round - b.round)
        .map(
          (run) =>
            `| ${run.round}${run.discarded ? " (discarded)" : ""} | ${run.target === "baseline" ? "baseline" : "api process"} | ${fmtInt(
              run.reqPerSec,
            )} | ${fmtInt(run.ok2xx)} | ${fmtInt(run.non2xx)} | ${fmtInt(run.errors)} | ${run.latencyP50Ms} / ${
              run.latencyP99Ms
            } ms | ${cpuText(run.cpu)} |`,
        ),
      "",
      `- Baseline: median ${fmtInt(s1s.baseline.median)} req/s (range ${fmtInt(s1s.baseline.min)}–${fmtInt(s1s.baseline.max)})${
        s1s.baselineSource === "s1" ? ", S1's runs" : ""
      }`,
      `- One api process: median ${fmtInt(s1s.mitte.median)} req/s (range ${fmtInt(s1s.mitte.min)}–${fmtInt(s1s.mitte.max)})`,
      `- Ratio of medians: ${fmtRatio(s1s.ratio)} (goal ≥ 0.2× with Redis AOF everysec) — ${
        verdicts.s1Scale?.met ? "met" : "missed"
      } (measured ${verdicts.s1Scale?.measured ?? "n/a"})`,
      `- api non-2xx responses over all measured runs: ${fmtInt(s1s.mitteNon2xx)}; transport errors: ${fmtInt(s1s.mitteErrors)}`,
      "",
    );
  }
  if (scale.s3) out.push(...renderS3(scale.s3, verdicts.s3Scale));
  if (s4s) {
    const order: string[] = [];
    const rounds = Math.max(...s4s.runs.map((r) => r.round), 0);
    for (let round = 1; round <= rounds; round += 1) {
      if (s4s.baselineRuns[round - 1]) order.push("B");
      for (const r of s4s.runs.filter((x) => x.round === round)) order.push(String(r.workers));
    }
    if (s4s.baselineRuns.length > rounds) order.push("B");
    out.push(
      "## S4-scale — delivery throughput with 1 and 2 worker processes",
      "",
      `Command: ${onlyCommand("s4-scale")}. No goal in the issue: the ratio to the baseline and the change from 1 to 2 workers are information.`,
      "",
      `N = ${fmtInt(s4s.n)} webhooks of 1024 bytes${
        s4s.shortened ? " (shortened from 20,000 because the bench was already late)" : ""
      }, the same sink child and rate definition as S4: (N − 1) / (last receipt −`,
      "first receipt), both taken in the sink, so start-up is excluded. For each run a fresh deployment is made; one api",
      "process ingests the N webhooks (undici loop, 50 in flight) with no worker running, so every job waits in Redis;",
      "the api process is stopped (SIGTERM, exit awaited); then the worker processes are spawned together with",
      "MITTE_DELIVERY_CONCURRENCY=64 and MITTE_ENDPOINT_CONCURRENCY=64 (per process) and deliver to the sink. Baseline: the",
      `same bare undici loop as S4 (64 in flight, straight to the sink). Interleaved ${order.join(", ")} (B = baseline`,
      "pass, 1/2 = a run with that many workers); medians and ranges reported.",
      "",
      "| Round | Workers | deliveries/s | first→last receipt | received (distinct) | api ingest (no worker running) | jobs waiting in Redis | spawn → every worker healthy (spread) | healthy → all N received | CPU (100% = 1 core) |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
      ...s4s.baselineRuns.map(
        (b, i) =>
          `| ${i + 1} | baseline | ${fmtInt(b.ratePerSec)} | ${fmtMs(b.windowMs)} | ${fmtInt(b.received)} | — | — | — | — | ${cpuText(
            b.cpu,
          )} |`,
      ),
      ...[...s4s.runs, ...s4s.discarded.map((r) => ({ ...r, discarded: true }))]
        .sort((a, b) => a.round - b.round || a.workers - b.workers)
        .map(
          (r) =>
            `| ${r.round}${"discarded" in r ? " (discarded)" : ""} | ${r.workers} | ${fmtInt(r.ratePerSec)} | ${fmtMs(
              r.windowMs,
            )} | ${fmtInt(r.distinct)} (total ${fmtInt(r.received)})${r.complete ? "" : ", incomplete"} | ${fmtInt(
              r.ingestOk,
            )} × 2xx in ${fmtMs(r.ingestMs)} | ${fmtInt(r.queuedBeforeWorkers)} | ${fmtMs(r.readyMs)} (${fmtMs(
              r.readySpreadMs,
            )}) | ${fmtMs(r.readyToDoneMs)} | ${cpuText(r.cpu)} |`,
        ),
      "",
      `- Baseline: ${spreadText(s4s.baseline)} deliveries/s`,
      ...s4s.byWorkers.map(
        ({ workers, rates }) =>
          `- ${workersText(workers)}: ${spreadText(rates)} deliveries/s, ${fmtRatio(
            rates.median / s4s.baseline.median,
          )} of the baseline`,
      ),
      `- 1 → 2 worker processes: ${fmtRatio(s4s.scaling)} (ratio of the medians; no goal; information)`,
      `- Shutdowns (SIGTERM): ${s4s.runs
        .map(
          (r) =>
            `${workersText(r.workers)} round ${r.round}: api ${r.apiShutdown}; workers ${r.workerShutdown}`,
        )
        .join("; ")}`,
      "",
    );
  }
  if (scale.s7) out.push(...renderS7(scale.s7, verdicts.s7ScaleGrowth, verdicts.s7ScaleBack));
  if (scale.s8) out.push(...renderS8(scale.s8, verdicts.s8Scale));
  return out;
}
