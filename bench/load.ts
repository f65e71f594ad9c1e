/**
 * Load generators: autocannon (closed loop, S1), a fixed-rate open-loop sender on an undici Pool (S3) and a
 * bounded-concurrency undici `request` loop (S4 ingest and S4 baseline).
 */
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import { Agent, Pool, request } from "undici";

// ---- autocannon (CommonJS, no bundled types): a typed wrapper over the part of its API the bench uses ----

export interface AutocannonOptions {
  url: string;
  method?: "POST" | "GET";
  connections?: number;
  pipelining?: number;
  /** Seconds. */
  duration?: number;
  amount?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Seconds per request before counting a timeout. */
  timeout?: number;
}

interface Histogram {
  average: number;
  mean: number;
  stddev: number;
  min: number;
  max: number;
  total: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  resets: number;
  mismatches: number;
  "2xx": number;
  statusCodeStats: Record<string, { count: number }>;
  requests: Histogram & { sent: number };
  latency: Histogram;
  throughput: Histogram;
}

type AutocannonFn = (
  options: AutocannonOptions & { renderProgressBar?: boolean },
) => PromiseLike<AutocannonResult>;

const require = createRequire(import.meta.url);
const autocannonModule = require("autocannon") as AutocannonFn;

export async function autocannon(options: AutocannonOptions): Promise<AutocannonResult> {
  return await autocannonModule({ method: "POST", timeout: 10, ...options, renderProgressBar: false });
}

/** Requests per second over the measured window, from autocannon's per-second samples. */
export function reqPerSec(result: AutocannonResult): number {
  return result.requests.average;
}

// ---- bounded-concurrency request loop ----

export interface ClosedLoopResult {
  durationMs: number;
  statuses: Record<string, number>;
  errors: number;
  firstError: string | null;
  ok: number;
}

/** Posts `bodies` (in order) to `url` with at most `concurrency` requests in flight on a keep-alive Agent. */
export async function closedLoop(options: {
  url: string;
  bodies: readonly Buffer[];
  concurrency: number;
  headers: Record<string, string>;
}): Promise<ClosedLoopResult> {
  const { url, bodies, concurrency, headers } = options;
  const agent = new Agent({ connections: concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  const statuses: Record<string, number> = {};
  let errors = 0;
  let ok = 0;
  let firstError: string | null = null;
  let next = 0;
  const worker = async () => {
    while (next < bodies.length) {
      const body = bodies[next++]!;
      try {
        const response = await request(url, { dispatcher: agent, method: "POST", headers, body });
        await response.body.dump();
        statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1;
        if (response.statusCode >= 200 && response.statusCode < 300) ok += 1;
      } catch (error) {
        errors += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const durationMs = performance.now() - started;
  await agent.close();
  return { durationMs, statuses, errors, firstError, ok };
}

// ---- fixed-rate open-loop sender ----

export interface OpenLoopResult {
  /** performance.now() at which request i was due, was handed to the client, got its response headers. */
  scheduledAt: Float64Array;
  sentAt: Float64Array;
  respondedAt: Float64Array;
  /** HTTP status, or -1 for a transport error. */
  status: Int32Array;
  errors: number;
  firstError: string | null;
  /** Largest delay between a request's due time and its hand-off to the client (timer granularity). */
  maxSendLagMs: number;
  sendWindowMs: number;
}

/**
 * Sends request i at t0 + i/rate regardless of how earlier requests fare (open loop: no coordinated
 * omission). A 1 ms timer releases every request that has come due; the Pool has enough connections that
 * requests do not queue behind slow ones unless the server itself stalls.
 */
export async function openLoop(options: {
  origin: string;
  /** The request path, or the path of request i (several endpoints on one Mitte). */
  path: string | ((i: number) => string);
  ratePerSec: number;
  bodies: readonly Buffer[];
  headers: Record<string, string>;
  connections: number;
}): Promise<OpenLoopResult> {
  const { origin, ratePerSec, bodies, headers, connections } = options;
  const pathOf = typeof options.path === "function" ? options.path : () => options.path as string;
  const total = bodies.length;
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const scheduledAt = new Float64Array(total).fill(Number.NaN);
  const sentAt = new Float64Array(total).fill(Number.NaN);
  const respondedAt = new Float64Array(total).fill(Number.NaN);
  const status = new Int32Array(total);
  let errors = 0;
  let firstError: string | null = null;
  let maxSendLagMs = 0;
  const pending: Promise<void>[] = [];
  const intervalMs = 1000 / ratePerSec;

  const fire = (i: number, dueAt: number) => {
    const now = performance.now();
    scheduledAt[i] = dueAt;
    sentAt[i] = now;
    maxSendLagMs = Math.max(maxSendLagMs, now - dueAt);
    pending.push(
      pool.request({ path: pathOf(i), method: "POST", headers, body: bodies[i]! }).then(
        async (response) => {
          respondedAt[i] = performance.now();
          status[i] = response.statusCode;
          await response.body.dump();
        },
        (error: unknown) => {
          status[i] = -1;
          errors += 1;
          firstError ??= error instanceof Error ? error.message : String(error);
        },
      ),
    );
  };

  const t0 = performance.now() + 20;
  await new Promise<void>((allSent) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      while (i < total && t0 + i * intervalMs <= now) {
        fire(i, t0 + i * intervalMs);
        i += 1;
      }
      if (i < total) setTimeout(tick, 1);
      else allSent();
    };
    setTimeout(tick, 20);
  });
  const sendWindowMs = performance.now() - t0;
  await Promise.all(pending);
  await pool.close();
  return { scheduledAt, sentAt, respondedAt, status, errors, firstError, maxSendLagMs, sendWindowMs };
}
