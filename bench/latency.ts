/**
 * Ingest→receipt latency under an open-loop load (S3 at 25/50/75 % of the ceiling, S8's healthy endpoints):
 * request i is due at t0 + i/rate and is sent then, whatever happened to earlier requests; latency is the time
 * the sink (in this process, same performance.now() clock) had read the whole delivered body − the due time.
 */
import { performance } from "node:perf_hooks";
import { log, sleep } from "./common.js";
import { openLoop } from "./load.js";
import { eventId, makeBody, WEBHOOK_HEADERS } from "./payload.js";
import { fmtLatency } from "./report.js";
import { type Sink, startSink } from "./sink.js";
import {
  CpuWindow,
  type Distribution,
  describeCpu,
  distribution,
  fmtInt,
  fmtMs,
  type PidSource,
} from "./stats.js";

export const LATENCY_WARMUP_S = 1;
export const LATENCY_MEASURE_S = 8;
export const LATENCY_CONNECTIONS = 64;
export const LATENCY_DRAIN_MAX_MS = 15_000;
/**
 * Before each measured run a fresh Mitte gets a run-in: this many seconds at min(rate, LATENCY_RUN_IN_MAX_RATE),
 * to the endpoints that deliver, all delivered before the run starts and none measured. A fresh process runs its
 * code cold (interpreted, then compiled as it gets hot): at 3,000 req/s the first 2–2.5 s queued requests up to
 * 0.5 s while the second run on the same process stayed under 60 ms, so without a run-in S3 measured start-up.
 */
export const LATENCY_RUN_IN_S = 3;
export const LATENCY_RUN_IN_MAX_RATE = 1_000;

/** Receipts of one open-loop run: when the sink had body i (NaN until then), duplicates and strays. */
export class ReceiptRecorder {
  readonly receivedAt: Float64Array;
  duplicates = 0;
  unexpected = 0;
  count = 0;
  /** Receipts of run-in webhooks (not measured). */
  runIn = 0;
  private readonly idPrefix = eventId(0).slice(0, -10);
  private readonly runInPrefix = eventId(0, "runin").slice(0, -10);

  constructor(readonly total: number) {
    this.receivedAt = new Float64Array(total).fill(Number.NaN);
  }

  readonly onReceipt = (id: string | null, atMs: number): void => {
    if (id?.startsWith(this.runInPrefix)) {
      this.runIn += 1;
      return;
    }
    const index = id?.startsWith(this.idPrefix) ? Number(id.slice(this.idPrefix.length)) : Number.NaN;
    if (!Number.isInteger(index) || index < 0 || index >= this.total) {
      this.unexpected += 1;
      return;
    }
    if (!Number.isNaN(this.receivedAt[index]!)) {
      this.duplicates += 1;
      return;
    }
    this.receivedAt[index] = atMs;
    this.count += 1;
  };
}

/** Requests (warm-up included) of a run at `ratePerSec`. */
export const latencyRunTotal = (ratePerSec: number) =>
  Math.round(ratePerSec * LATENCY_WARMUP_S) + Math.round(ratePerSec * LATENCY_MEASURE_S);

/** A sink in this process recording receipts of a run at `ratePerSec`. */
export async function startRecordingSink(
  ratePerSec: number,
): Promise<{ sink: Sink; recorder: ReceiptRecorder }> {
  const recorder = new ReceiptRecorder(latencyRunTotal(ratePerSec));
  const sink = await startSink(recorder.onReceipt);
  return { sink, recorder };
}

/** What one open-loop latency run measured (its measured window; the warm-up is left out). */
export interface LatencyFigures {
  ratePerSec: number;
  /** The run-in before the run (see LATENCY_RUN_IN_S): its rate, length, 202s and receipts. */
  runIn: { ratePerSec: number; seconds: number; accepted202: number; received: number };
  warmupSeconds: number;
  measureSeconds: number;
  connections: number;
  /** Requests sent in the measured window (to every endpoint, hung ones included). */
  sent: number;
  accepted202: number;
  non202: Record<string, number>;
  errors: number;
  firstError: string | null;
  /** Of the 202s to endpoints expected to deliver: received, and not received when the bench stopped waiting. */
  expected: number;
  received: number;
  /** Accepted webhooks not received when the bench stopped waiting; their latency is a lower bound. */
  censored: number;
  /** Smallest of those lower bounds (Infinity when none). */
  censoredFloorMs: number;
  drainMaxMs: number;
  duplicates: number;
  unexpected: number;
  /** ingest→receipt of the webhooks to endpoints expected to deliver. */
  latency: Distribution;
  /** due time → 202 response, every endpoint. */
  ingestLatency: Distribution;
  maxSendLagMs: number;
  achievedRatePerSec: number;
  cpu: Record<string, number>;
}

/**
 * Sends rate × (warm-up + measure) webhooks to `origin`, request i to `slugs[i % slugs.length]`, and waits for
 * the deliveries of every 202 to an endpoint whose `delivers[i % slugs.length]` is true (at most
 * LATENCY_DRAIN_MAX_MS after the last request was due, or 5 s without progress).
 */
export async function measureLatency(options: {
  origin: string;
  slugs: readonly string[];
  /** Per endpoint: are its deliveries expected at the sink (false: a hung target)? Default: all true. */
  delivers?: readonly boolean[];
  ratePerSec: number;
  recorder: ReceiptRecorder;
  cpuPids: Record<string, PidSource>;
  /** Runs right before the CPU window opens (e.g. refresh a PostgreSQL backend list). */
  beforeWindow?: () => Promise<void>;
}): Promise<LatencyFigures> {
  const { origin, slugs, ratePerSec, recorder } = options;
  const delivers = options.delivers ?? slugs.map(() => true);
  const warmupCount = Math.round(ratePerSec * LATENCY_WARMUP_S);
  const total = recorder.total;
  if (total !== latencyRunTotal(ratePerSec)) throw new Error("recorder sized for another rate");
  const bodies = Array.from({ length: total }, (_, i) => Buffer.from(makeBody(i)));
  const paths = slugs.map((slug) => `/api/v1/h/${slug}`);
  const endpointOf = (i: number) => i % slugs.length;

  const runIn = await runInMitte(
    origin,
    paths.filter((_, i) => delivers[i]),
    ratePerSec,
    recorder,
  );

  await options.beforeWindow?.();
  const cpu = new CpuWindow(options.cpuPids);
  const sent = await openLoop({
    origin,
    path: (i) => paths[endpointOf(i)]!,
    ratePerSec,
    bodies,
    headers: WEBHOOK_HEADERS,
    connections: LATENCY_CONNECTIONS,
  });
  let waitFor = 0;
  for (let i = 0; i < total; i += 1) if (sent.status[i] === 202 && delivers[endpointOf(i)]) waitFor += 1;
  await awaitReceipts(() => recorder.count, waitFor, sent.scheduledAt[total - 1]! + LATENCY_DRAIN_MAX_MS);
  const stoppedWaitingAt = performance.now();
  const cpuShares = cpu.stop();

  // A delivery still missing when the bench stopped waiting counts with a lower bound (stop − due), so the
  // percentiles stay honest: any percentile reaching into those values is itself only a lower bound.
  const latencies: number[] = [];
  const ingestLatencies: number[] = [];
  const non202: Record<string, number> = {};
  let sentMeasured = 0;
  let accepted202 = 0;
  let expected = 0;
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
    if (!delivers[endpointOf(i)]) continue;
    expected += 1;
    const at = recorder.receivedAt[i]!;
    if (!Number.isNaN(at)) {
      received += 1;
      latencies.push(at - sent.scheduledAt[i]!);
    } else {
      censored += 1;
      const bound = stoppedWaitingAt - sent.scheduledAt[i]!;
      censoredFloorMs = Math.min(censoredFloorMs, bound);
      latencies.push(bound);
    }
  }
  return {
    ratePerSec,
    runIn,
    warmupSeconds: LATENCY_WARMUP_S,
    measureSeconds: LATENCY_MEASURE_S,
    connections: LATENCY_CONNECTIONS,
    sent: sentMeasured,
    accepted202,
    non202,
    errors: sent.errors,
    firstError: sent.firstError,
    expected,
    received,
    censored,
    censoredFloorMs,
    drainMaxMs: LATENCY_DRAIN_MAX_MS,
    duplicates: recorder.duplicates,
    unexpected: recorder.unexpected,
    latency: distribution(latencies),
    ingestLatency: distribution(ingestLatencies),
    maxSendLagMs: sent.maxSendLagMs,
    achievedRatePerSec: ((total - 1) * 1000) / Math.max(1, sent.sentAt[total - 1]! - sent.sentAt[0]!),
    cpu: cpuShares,
  };
}

/**
 * The run-in: min(rate, LATENCY_RUN_IN_MAX_RATE) for LATENCY_RUN_IN_S seconds to `paths`, then waits until every
 * 202 of it has been delivered (at most LATENCY_DRAIN_MAX_MS, or 5 s without progress).
 */
async function runInMitte(
  origin: string,
  paths: readonly string[],
  ratePerSec: number,
  recorder: ReceiptRecorder,
): Promise<LatencyFigures["runIn"]> {
  const runInRate = Math.min(ratePerSec, LATENCY_RUN_IN_MAX_RATE);
  const count = Math.round(runInRate * LATENCY_RUN_IN_S);
  const bodies = Array.from({ length: count }, (_, i) => Buffer.from(makeBody(i, "runin")));
  const sent = await openLoop({
    origin,
    path: (i) => paths[i % paths.length]!,
    ratePerSec: runInRate,
    bodies,
    headers: WEBHOOK_HEADERS,
    connections: LATENCY_CONNECTIONS,
  });
  const accepted202 = sent.status.filter((status) => status === 202).length;
  await awaitReceipts(() => recorder.runIn, accepted202, performance.now() + LATENCY_DRAIN_MAX_MS);
  return { ratePerSec: runInRate, seconds: LATENCY_RUN_IN_S, accepted202, received: recorder.runIn };
}

/** Waits until `received()` reaches `expected`, `deadline` (performance.now()) passes, or 5 s pass without progress. */
async function awaitReceipts(received: () => number, expected: number, deadline: number): Promise<void> {
  let last = -1;
  let lastProgressAt = performance.now();
  while (
    received() < expected &&
    performance.now() < deadline &&
    performance.now() - lastProgressAt < 5_000
  ) {
    if (received() !== last) {
      last = received();
      lastProgressAt = performance.now();
    }
    await sleep(20);
  }
}

/** Console lines for one latency run. */
export function logLatency(figures: LatencyFigures): void {
  const l = figures.latency;
  log(
    `run-in: ${fmtInt(figures.runIn.ratePerSec)} req/s for ${figures.runIn.seconds} s, ${fmtInt(
      figures.runIn.accepted202,
    )} × 202, ${fmtInt(figures.runIn.received)} delivered before the run`,
  );
  log(
    `sent ${fmtInt(figures.sent)} (measured), 202 ${fmtInt(figures.accepted202)}, other ${JSON.stringify(
      figures.non202,
    )}, errors ${figures.errors}; received ${fmtInt(figures.received)} of ${fmtInt(figures.expected)} expected, ${fmtInt(
      figures.censored,
    )} not within ${figures.drainMaxMs / 1000} s (lower bounds); duplicates ${figures.duplicates}; unexpected ${figures.unexpected}`,
  );
  log(
    `ingest→receipt p50 ${fmtLatency(l.p50, figures)}, p99 ${fmtLatency(l.p99, figures)}, p99.9 ${fmtLatency(
      l.p999,
      figures,
    )}, max ${fmtLatency(l.max, figures)}; ingest→202 p99 ${fmtMs(figures.ingestLatency.p99)}`,
  );
  log(
    `achieved send rate ${fmtInt(figures.achievedRatePerSec)} req/s, max sender lag ${fmtMs(
      figures.maxSendLagMs,
    )}; CPU ${describeCpu(figures.cpu)}`,
  );
}
