/** Markdown rendering of the benchmark results (printed and written to docs/benchmarks.md). */
import { execFileSync } from "node:child_process";
import { cpus, platform, release, totalmem } from "node:os";
import type { Distribution } from "./stats.js";
import { fmtInt, fmtMs, fmtOverhead, fmtRatio } from "./stats.js";

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

export interface S3Result {
  label: string;
  /** How the rate was chosen. */
  basis: string;
  ratePerSec: number;
  warmupSeconds: number;
  measureSeconds: number;
  connections: number;
  sent: number;
  accepted202: number;
  non202: Record<string, number>;
  errors: number;
  firstError: string | null;
  received: number;
  /** Accepted webhooks not received when the bench stopped waiting; their latency is a lower bound. */
  censored: number;
  /** Smallest of those lower bounds (Infinity when none). */
  censoredFloorMs: number;
  drainMaxMs: number;
  duplicates: number;
  unexpected: number;
  latency: Distribution;
  ingestLatency: Distribution;
  maxSendLagMs: number;
  achievedRatePerSec: number;
  cpu: Record<string, number>;
  serverLogLines: number;
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

export interface S4Result {
  n: number;
  /** The median pass (ratePerSec is the median of all passes; `runs` has them all). */
  baseline: S4BaselineRun & { runs: Spread };
  /** A Mitte run thrown away because other load disturbed it, or null. */
  discardedMitte: S4Result["mitte"] | null;
  mitte: DeliveryRunFigures & {
    ingestOk: number;
    ingestStatuses: Record<string, number>;
    ingestMs: number;
    shutdown: string;
  };
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

export interface S1ScaleResult {
  connections: number;
  warmupSeconds: number;
  measureSeconds: number;
  runs: S1Run[];
  discarded: S1Run[];
  /** "interleaved": baseline runs alternate with Mitte runs here; "s1": time ran short, S1's median is reused. */
  baselineSource: "interleaved" | "s1";
  baseline: Spread;
  mitte: Spread;
  ratio: number;
  mitteNon2xx: number;
  mitteErrors: number;
}

export interface S4ScaleRun {
  workers: number;
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
  /** The median pass (ratePerSec is the median of all passes; `runs` has them all). */
  baseline: S4BaselineRun & { runs: Spread };
  /** One run per worker count, in the order measured (1 then 2). */
  runs: S4ScaleRun[];
  /** Runs thrown away because other load disturbed them. */
  discarded: S4ScaleRun[];
  /** deliveries/s with 2 workers ÷ with 1 worker. */
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
  s1: S1ScaleResult;
  s4: S4ScaleResult;
}

export interface Verdict {
  goal: string;
  measured: string;
  met: boolean;
  note?: string;
}

export interface Report {
  startedAt: Date;
  durationS: number;
  s1: S1Result;
  s3: S3Result;
  /** Supplementary S3 at a rate the delivery side can sustain; no goal attached. */
  s3b: S3Result;
  s4: S4Result;
  s4m: S4mResult;
  scale: ScaleReport;
  verdicts: { s1: Verdict; s3: Verdict; s4: Verdict; s4m: Verdict; s1Scale: Verdict };
  /** S4-scale has no goal; this says whether the figures are complete measurements. */
  s4ScaleNote: string | null;
  observations: string[];
}

/** A latency percentile of S3; marked "≥" when it falls among the lower bounds of undelivered webhooks. */
export function fmtLatency(value: number, s3: Pick<S3Result, "censored" | "censoredFloorMs">): string {
  return s3.censored > 0 && value >= s3.censoredFloorMs ? `≥ ${fmtMs(value)}` : fmtMs(value);
}

const cpuText = (cpu: Record<string, number>) =>
  Object.entries(cpu)
    .map(([name, pct]) => `${name} ${Math.round(pct)}%`)
    .join(", ") || "n/a";

const statusText = (statuses: Record<string, number>) =>
  Object.entries(statuses)
    .map(([code, count]) => `${code}: ${fmtInt(count)}`)
    .join(", ") || "none";

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

/** How many measured windows had other load (not the bench's processes) above 25% of a core. */
export function runQuality(report: Report): string {
  const windows: [string, number | undefined][] = [
    ...report.s1.runs.map((r): [string, number | undefined] => [`S1 ${r.target} ${r.round}`, r.cpu.other]),
    ["S3", report.s3.cpu.other],
    ["S4 baseline", report.s4.baseline.cpu.other],
    ["S4 Mitte", report.s4.mitte.cpu.other],
    ...report.s4m.runs.map((r): [string, number | undefined] => [
      `S4m ${r.monitoring ? "on" : "off"} #${r.order}`,
      r.cpu.other,
    ]),
    ["S3b", report.s3b.cpu.other],
    ...report.scale.s1.runs.map((r): [string, number | undefined] => [
      `S1-scale ${r.target} ${r.round}`,
      r.cpu.other,
    ]),
    ["S4-scale baseline", report.scale.s4.baseline.cpu.other],
    ...report.scale.s4.runs.map((r): [string, number | undefined] => [
      `S4-scale ${workersText(r.workers)}`,
      r.cpu.other,
    ]),
  ];
  const known = windows.filter((w): w is [string, number] => w[1] !== undefined);
  if (known.length === 0) return "unknown (no /proc/stat)";
  const disturbed = known.filter(([, other]) => other > 25);
  if (disturbed.length === 0)
    return `clean — no other load above 25% of a core in any of ${known.length} measured windows.`;
  return `disturbed — other work on the machine used more than 25% of a core in ${disturbed.length} of ${
    known.length
  } measured windows (${disturbed.map(([name, other]) => `${name}: ${Math.round(other)}%`).join(", ")}); those figures are depressed.`;
}

const workersText = (workers: number) => `${workers} worker${workers === 1 ? "" : "s"}`;

export function renderSummaryTable(report: Report): string {
  const { s1, s3, s4, s4m, verdicts } = report;
  const scale = report.scale;
  const s4s = scale.s4;
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    row(["Scenario", "Baseline", "Mitte", "Ratio", "Goal", "Result"]),
    row(["---", "---:", "---:", "---:", "---", "---"]),
    row([
      "S1 ingest throughput (req/s, median of 3)",
      fmtInt(s1.baseline.median),
      fmtInt(s1.mitte.median),
      fmtRatio(s1.ratio),
      verdicts.s1.goal,
      `${verdicts.s1.met ? "met" : "missed"} (${verdicts.s1.measured})`,
    ]),
    row([
      `S3 ingest→receipt p99 at ${fmtInt(s3.ratePerSec)} req/s`,
      "—",
      fmtLatency(s3.latency.p99, s3),
      "—",
      verdicts.s3.goal,
      `${verdicts.s3.met ? "met" : "missed"} (${verdicts.s3.measured})`,
    ]),
    row([
      `S3b (supplementary) p99 at ${fmtInt(report.s3b.ratePerSec)} req/s`,
      "—",
      fmtLatency(report.s3b.latency.p99, report.s3b),
      "—",
      "none",
      "information only",
    ]),
    row([
      `S4 delivery throughput (deliveries/s, N=${fmtInt(s4.n)})`,
      fmtInt(s4.baseline.ratePerSec),
      fmtInt(s4.mitte.ratePerSec),
      fmtRatio(s4.ratio),
      verdicts.s4.goal,
      `${verdicts.s4.met ? "met" : "missed"} (${verdicts.s4.measured})`,
    ]),
    row([
      `S4m delivery monitoring overhead (deliveries/s, N=${fmtInt(s4m.n)}, median of ${s4m.off.values.length} off / ${
        s4m.on.values.length
      } on; Baseline = monitoring off, Mitte = on)`,
      fmtInt(s4m.off.median),
      fmtInt(s4m.on.median),
      fmtRatio(s4m.on.median / s4m.off.median),
      verdicts.s4m.goal,
      `${verdicts.s4m.met ? "met" : "missed"} (${verdicts.s4m.measured})`,
    ]),
    row([
      `S1-scale ingest throughput, 1 api process (req/s, median of ${scale.s1.mitte.values.length})`,
      `${fmtInt(scale.s1.baseline.median)}${scale.s1.baselineSource === "s1" ? " (S1's)" : ""}`,
      fmtInt(scale.s1.mitte.median),
      fmtRatio(scale.s1.ratio),
      verdicts.s1Scale.goal,
      `${verdicts.s1Scale.met ? "met" : "missed"} (${verdicts.s1Scale.measured})`,
    ]),
    ...s4s.runs.map((run) =>
      row([
        `S4-scale delivery throughput, ${workersText(run.workers)} (deliveries/s, N=${fmtInt(s4s.n)})`,
        fmtInt(s4s.baseline.ratePerSec),
        fmtInt(run.ratePerSec),
        fmtRatio(run.ratePerSec / s4s.baseline.ratePerSec),
        "none",
        run.workers === 1
          ? "information only"
          : `information only; 1 → ${run.workers} workers: ${fmtRatio(s4s.scaling)}`,
      ]),
    ),
  ].join("\n");
}

function renderS3(s3: S3Result, verdict: Verdict | null): string[] {
  const title = verdict
    ? `## ${s3.label} — ingest→receipt latency at half the measured Mitte ceiling`
    : `## ${s3.label} — supplementary: the same latency measurement at half the measured delivery rate`;
  return [
    title,
    "",
    ...(verdict
      ? [
          `Open-loop sender (own, on an undici Pool with ${s3.connections} connections — autocannon's \`overallRate\` is`,
          "closed-loop per connection and does not expose per-request send times). Request i is due at t0 + i/rate and is",
          "sent then, whatever happened to earlier requests. Latency = time the sink (in the same process, same",
          "`performance.now()` clock) had read the whole delivered body − the request's due time, so sender lag counts",
          `against Mitte, not for it. ${s3.warmupSeconds} s warm-up at the same rate excluded, then ${s3.measureSeconds} s measured.`,
          "Mitte runs with delivery enabled and MITTE_ENDPOINT_CONCURRENCY=64; deliveries are signed (generated secret).",
        ]
      : [
          "Not part of the goals. Same method as S3, at half of Mitte's S4 delivery rate, to help separate saturation",
          "(backlog queueing when ingest outpaces delivery) from the latency Mitte adds when it keeps up.",
        ]),
    "",
    `- Rate: ${fmtInt(s3.ratePerSec)} req/s (${s3.basis}); achieved send rate ${fmtInt(
      s3.achievedRatePerSec,
    )} req/s; max sender lag ${fmtMs(s3.maxSendLagMs)}`,
    `- Sent (measured window): ${fmtInt(s3.sent)}; answered 202: ${fmtInt(s3.accepted202)}; other statuses: ${statusText(
      s3.non202,
    )}; transport errors: ${fmtInt(s3.errors)}${s3.firstError ? ` (first: ${s3.firstError})` : ""}`,
    `- Received by the sink (of those 202s): ${fmtInt(s3.received)}; not received within ${fmtInt(
      s3.drainMaxMs / 1000,
    )} s of the last send: ${fmtInt(s3.censored)} (counted with their lower bound, percentiles marked ≥); duplicates: ${fmtInt(
      s3.duplicates,
    )}; unexpected bodies: ${fmtInt(s3.unexpected)}`,
    "",
    "| Measure | p50 | p90 | p99 | p99.9 | max |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
    `| ingest→receipt | ${fmtLatency(s3.latency.p50, s3)} | ${fmtLatency(s3.latency.p90, s3)} | ${fmtLatency(
      s3.latency.p99,
      s3,
    )} | ${fmtLatency(s3.latency.p999, s3)} | ${fmtLatency(s3.latency.max, s3)} |`,
    `| ingest → 202 response | ${fmtMs(s3.ingestLatency.p50)} | ${fmtMs(s3.ingestLatency.p90)} | ${fmtMs(
      s3.ingestLatency.p99,
    )} | ${fmtMs(s3.ingestLatency.p999)} | ${fmtMs(s3.ingestLatency.max)} |`,
    "",
    ...(verdict ? [`- Goal p99 ≤ 50 ms — ${verdict.met ? "met" : "missed"} (${verdict.measured})`] : []),
    `- CPU during the window (100% = 1 core; bench includes the sender and the sink): ${cpuText(s3.cpu)}`,
    "",
  ];
}

export function renderMarkdown(report: Report): string {
  const { s1, s3, s4, verdicts } = report;
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);

  push(
    "# Mitte benchmarks",
    "",
    "Generated by `npm run bench` (bench/run.ts). Every Mitte figure is set against a baseline measured in the same run",
    "by the same load generator, on the same machine, over loopback (127.0.0.1). Load generator, baselines and Mitte",
    "share the machine's cores, so absolute numbers are machine-bound; the ratios are the point. S1–S4m measure embedded",
    "mode (one process, SQLite); S1-scale and S4-scale measure scale mode (PostgreSQL + Redis, separate `api` and",
    "`worker` processes, [docs/deployment.md](deployment.md)).",
    "",
    `- Date: ${report.startedAt.toISOString()} (run took ${Math.round(report.durationS)} s)`,
    ...machineFacts().map((fact) => `- ${fact}`),
    "- Command: `npm run bench`",
    "",
    "## Summary",
    "",
    renderSummaryTable(report),
    "",
  );
  push(`- Run quality: ${runQuality(report)}`);
  for (const verdict of [verdicts.s1, verdicts.s3, verdicts.s4, verdicts.s4m, verdicts.s1Scale]) {
    if (verdict.note) push(`- ${verdict.note}`);
  }
  if (report.s4ScaleNote) push(`- ${report.s4ScaleNote}`);
  push("");

  push(
    "## S1 — ingest throughput",
    "",
    `autocannon, ${s1.connections} connections, POST of a 1024-byte Stripe-like JSON body with Stripe headers,`,
    `${s1.warmupSeconds} s warm-up (discarded) then ${s1.measureSeconds} s measured; req/s is autocannon's mean of`,
    "per-second samples. Runs interleaved B, M, B, M, B, M.",
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
    `- Ratio of medians: ${fmtRatio(s1.ratio)} (goal ≥ 0.5×) — ${verdicts.s1.met ? "met" : "missed"}`,
    `- Mitte non-2xx responses over all measured runs: ${fmtInt(s1.mitteNon2xx)}; transport errors: ${fmtInt(s1.mitteErrors)}`,
    "",
    ...renderS3(s3, verdicts.s3),
    ...renderS3(report.s3b, null),
    "## S4 — delivery throughput",
    "",
    `N = ${fmtInt(s4.n)} webhooks of 1024 bytes. The sink runs in its own child process, answers 200 and reports over IPC.`,
    "Rate = (N − 1) / (last receipt − first receipt), both timestamps taken in the sink, for baseline and Mitte alike:",
    "Mitte's start-up (and the time before its first delivery) is excluded by starting the clock at the first receipt.",
    "",
    "- Baseline: undici `request` loop in the bench process, 64 requests in flight on a keep-alive Agent, posting the",
    `  same N bodies to the same sink; ${s4.baseline.runs.values.length} passes (about a second each), median reported.`,
    "- Mitte: the N webhooks are ingested with delivery disabled, Mitte is stopped (SIGTERM, exit awaited), then started",
    "  again on the same data dir with delivery enabled, MITTE_DELIVERY_CONCURRENCY=64, MITTE_ENDPOINT_CONCURRENCY=64.",
    "",
    "| | Baseline (median pass) | Mitte |",
    "| --- | ---: | ---: |",
    `| deliveries/s | ${fmtInt(s4.baseline.ratePerSec)} (range ${fmtInt(s4.baseline.runs.min)}–${fmtInt(
      s4.baseline.runs.max,
    )}) | ${fmtInt(s4.mitte.ratePerSec)} |`,
    `| first→last receipt | ${fmtMs(s4.baseline.windowMs)} | ${fmtMs(s4.mitte.windowMs)} |`,
    `| received (distinct) | ${fmtInt(s4.baseline.received)} | ${fmtInt(s4.mitte.distinct)} (total ${fmtInt(s4.mitte.received)}) |`,
    `| CPU (100% = 1 core) | ${cpuText(s4.baseline.cpu)} | ${cpuText(s4.mitte.cpu)} |`,
    "",
    `- Ratio: ${fmtRatio(s4.ratio)} (goal ≥ 0.5×) — ${verdicts.s4.met ? "met" : "missed"}`,
    `- Mitte ingest of the N webhooks: ${fmtInt(s4.mitte.ingestOk)} × 2xx (${statusText(s4.mitte.ingestStatuses)}) in ${fmtMs(
      s4.mitte.ingestMs,
    )}; shutdown: ${s4.mitte.shutdown}`,
    `- Mitte restart: spawn → /healthz 200 in ${fmtMs(s4.mitte.readyMs)}; /healthz → all N received ${fmtMs(
      s4.mitte.readyToDoneMs,
    )}; spawn → all N received ${fmtMs(s4.mitte.spawnToDoneMs)}`,
    ...(s4.discardedMitte
      ? [
          `- A first Mitte run (${fmtInt(s4.discardedMitte.ratePerSec)} deliveries/s, CPU ${cpuText(
            s4.discardedMitte.cpu,
          )}) was discarded because other load exceeded 25% of a core, and measured again.`,
        ]
      : []),
    "",
  );
  push(...renderS4m(report));
  push(...renderScale(report));

  if (report.observations.length > 0) {
    push("## Observations", "", ...report.observations.map((o) => `- ${o}`), "");
  }
  return lines.join("\n");
}

function renderS4m(report: Report): string[] {
  const { s4, s4m, verdicts } = report;
  const onOff = (r: S4mRun) => (r.monitoring ? "on" : "off");
  return [
    "## S4m — cost of delivery monitoring (stats, live events, endpoint-down checks)",
    "",
    "Issue 5: the stats and event path adds at most 10 % to the delivery throughput. `MITTE_DELIVERY_MONITORING=false`",
    "turns off what Mitte does after every delivery attempt (the stats recording, the live `webhook:delivered` event and",
    "the endpoint-down check); S4m measures S4's delivery throughput with it `false` and `true`.",
    "",
    `- Same measurement as S4: N = ${fmtInt(s4m.n)} (the same bodies), the same sink child, the same rate definition`,
    "  (N − 1) / (last receipt − first receipt) taken in the sink, MITTE_DELIVERY_CONCURRENCY=64 and",
    "  MITTE_ENDPOINT_CONCURRENCY=64; the only difference between the two settings is MITTE_DELIVERY_MONITORING.",
    "- The N webhooks are ingested once (delivery off, as in S4) into a fresh data dir, Mitte is stopped (SIGTERM, exit",
    "  awaited), and every delivery run starts Mitte on its own byte-for-byte copy of that stopped data dir, so all runs",
    "  begin from the same state. These runs do not include S4's Mitte run: all are dedicated, measured right after S4,",
    `  interleaved off, on, off, on, … (${s4m.pairsPlanned} pairs planned; fewer only when the bench is late); each`,
    "  setting's median is reported, overhead = 1 − median(on) / median(off).",
    "- After each run, once the sink has every webhook and outside the measured window, the bench reads the endpoint's",
    "  stats (`GET /api/v1/endpoints/:id/stats`, totals.requests) to check that the switch took effect: 0 attempts with",
    "  monitoring off, every delivery with it on.",
    "- A run during which other load exceeded 25% of a core is discarded and measured again (at most twice, and only",
    "  while the bench is young enough); discarded runs are listed but excluded from the medians.",
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
    `- Overhead 1 − on/off: ${fmtOverhead(s4m.overhead)} (goal ≤ 10 %) — ${verdicts.s4m.met ? "met" : "missed"}; per pair: ${
      s4m.pairOverheads.map(fmtOverhead).join(", ") || "n/a"
    }`,
    `- Switch confirmed by the stats: ${s4m.switchVerified ? "yes" : "no"}`,
    `- Ingest of the N webhooks: ${fmtInt(s4m.ingestOk)} × 2xx (${statusText(s4m.ingestStatuses)}) in ${fmtMs(
      s4m.ingestMs,
    )}; shutdown: ${s4m.shutdown}`,
    `- For comparison, not part of the medians: S4's Mitte run (monitoring at its default, on; measured before S4m in this`,
    `  run, with its own ingest) delivered ${fmtInt(s4.mitte.ratePerSec)}/s.`,
    "",
  ];
}

function renderScale(report: Report): string[] {
  const { scale, verdicts } = report;
  const { s1: s1s, s4: s4s, redis, postgres } = scale;
  const p = redis.persistence;
  const settingsText = Object.entries(redis.settings)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
  const baselineText =
    s1s.baselineSource === "interleaved"
      ? `Runs interleaved ${s1s.runs.map((r) => (r.target === "baseline" ? "B" : "A")).join(", ")} (B = baseline, A = api process).`
      : "The run was late, so only api runs were made; the baseline is S1's median from this same run (not interleaved).";
  const runCell = (run: S4ScaleRun | undefined, cell: (r: S4ScaleRun) => string) => (run ? cell(run) : "—");
  const byWorkers = (workers: number) => s4s.runs.find((r) => r.workers === workers);
  const one = byWorkers(1);
  const two = byWorkers(2);
  const s4Row = (label: string, baseline: string, cell: (r: S4ScaleRun) => string) =>
    `| ${label} | ${baseline} | ${runCell(one, cell)} | ${runCell(two, cell)} |`;
  return [
    "## Scale mode — set-up",
    "",
    "S1-scale and S4-scale run Mitte as docs/deployment.md describes it: separate `node apps/cli/bin/mitte.js start --role api`",
    "and `--role worker` processes on PostgreSQL and Redis. Each Mitte run gets a fresh deployment: its own PostgreSQL",
    "schema (`create schema` through the `pg` client before, `drop schema … cascade` after), its own Redis key prefix, a pro",
    "user made by `mitte user create --plan pro --json` with the same environment, and one endpoint created through the api",
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
    "## S1-scale — ingest throughput of one api process",
    "",
    `Same load as S1: autocannon, ${s1s.connections} connections, the same 1024-byte body and Stripe headers, ${s1s.warmupSeconds} s warm-up`,
    `(discarded) then ${s1s.measureSeconds} s measured. ${baselineText} No worker runs, so delivery is off and the jobs stay`,
    "in Redis: the api process commits each group of webhooks in PostgreSQL, answers 202 after the commit and adds the",
    "BullMQ jobs to Redis. The baseline is the same bare `node:http` server as S1. A run during which other load exceeded",
    "25% of a core is discarded and measured again (at most twice, and only while the bench is young enough).",
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
      verdicts.s1Scale.met ? "met" : "missed"
    } (measured ${verdicts.s1Scale.measured})`,
    `- api non-2xx responses over all measured runs: ${fmtInt(s1s.mitteNon2xx)}; transport errors: ${fmtInt(s1s.mitteErrors)}`,
    "",
    "## S4-scale — delivery throughput with 1 and 2 worker processes",
    "",
    `N = ${fmtInt(s4s.n)} webhooks of 1024 bytes${
      s4s.shortened ? " (shortened from 20,000 because the bench was already late)" : ""
    }, the same sink child and rate definition as S4: (N − 1) / (last receipt −`,
    "first receipt), both taken in the sink, so start-up is excluded. For each worker count a fresh deployment is made;",
    "one api process ingests the N webhooks (undici loop, 50 in flight) with no worker running, so every job waits in",
    "Redis; the api process is stopped (SIGTERM, exit awaited); then the worker processes are spawned together with",
    "MITTE_DELIVERY_CONCURRENCY=64 and MITTE_ENDPOINT_CONCURRENCY=64 (per process) and deliver to the sink. Baseline: the",
    `same bare undici loop as S4 (64 in flight, straight to the sink), ${s4s.baseline.runs.values.length} passes interleaved`,
    "before, between and after the Mitte runs, median reported. No goal in the issue: the ratio to the baseline and the",
    "change from 1 to 2 workers are information.",
    "",
    "| | Baseline (median pass) | 1 worker | 2 workers |",
    "| --- | ---: | ---: | ---: |",
    s4Row(
      "deliveries/s",
      `${fmtInt(s4s.baseline.ratePerSec)} (range ${fmtInt(s4s.baseline.runs.min)}–${fmtInt(s4s.baseline.runs.max)})`,
      (r) => fmtInt(r.ratePerSec),
    ),
    s4Row("ratio to the baseline", "—", (r) => fmtRatio(r.ratePerSec / s4s.baseline.ratePerSec)),
    s4Row("first→last receipt", fmtMs(s4s.baseline.windowMs), (r) => fmtMs(r.windowMs)),
    s4Row(
      "received (distinct)",
      fmtInt(s4s.baseline.received),
      (r) => `${fmtInt(r.distinct)} (total ${fmtInt(r.received)})`,
    ),
    s4Row(
      "api ingest of the N (no worker running)",
      "—",
      (r) => `${fmtInt(r.ingestOk)} × 2xx in ${fmtMs(r.ingestMs)}`,
    ),
    s4Row("jobs waiting in Redis before the workers", "—", (r) => fmtInt(r.queuedBeforeWorkers)),
    s4Row(
      "spawn → every worker healthy (spread)",
      "—",
      (r) => `${fmtMs(r.readyMs)} (${fmtMs(r.readySpreadMs)})`,
    ),
    s4Row("healthy → all N received", "—", (r) => fmtMs(r.readyToDoneMs)),
    s4Row("CPU (100% = 1 core)", cpuText(s4s.baseline.cpu), (r) => cpuText(r.cpu)),
    "",
    `- 1 → 2 worker processes: ${fmtInt(one?.ratePerSec ?? Number.NaN)} → ${fmtInt(
      two?.ratePerSec ?? Number.NaN,
    )} deliveries/s, ${fmtRatio(s4s.scaling)} (no goal; information)`,
    `- Shutdowns (SIGTERM): ${s4s.runs
      .map((r) => `${workersText(r.workers)} run: api ${r.apiShutdown}; workers ${r.workerShutdown}`)
      .join("; ")}`,
    ...s4s.discarded.map(
      (run) =>
        `- A first ${workersText(run.workers)} run (${fmtInt(run.ratePerSec)} deliveries/s, CPU ${cpuText(
          run.cpu,
        )}) was discarded because other load exceeded 25% of a core, and measured again.`,
    ),
    "",
  ];
}
