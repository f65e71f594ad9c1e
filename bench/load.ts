/**
 * Load generators: autocannon (closed loop, S1), a fixed-rate open-loop sender on an undici Pool (S3) and a
 * bounded-concurrency undici `request` loop (S4 ingest and S4 baseline).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

// ---- wrk (optional: Debian's `wrk` package, not an npm dependency) ----

export interface WrkResult {
  reqPerSec: number;
  requests: number;
  non2xx: number;
  /** Socket errors of every kind (connect, read, write, timeout). */
  errors: number;
}

/**
 * One closed-loop wrk run on one thread (`wrk -t1`), POSTing `body` with `headers` through a Lua script.
 * `onStart` gets wrk's pid, for measuring its CPU. wrk spends about half of autocannon's CPU per request,
 * which matters on a 2-core machine where the load generator shares the cores with the server.
 */
export async function wrk(options: {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  headers: Record<string, string>;
  body: string;
  onStart?: (pid: number) => void;
}): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), "mitte-bench-wrk-"));
  try {
    const script = join(dir, "post.lua");
    const lines = [`wrk.method = "POST"`, `wrk.body = ${JSON.stringify(options.body)}`];
    for (const [name, value] of Object.entries(options.headers))
      lines.push(`wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}`);
    writeFileSync(script, `${lines.join("\n")}\n`);
    const args = ["-t1", `-c${options.connections}`, `-d${options.duration}s`, "-s", script, options.url];
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn("wrk", args, { stdio: ["ignore", "pipe", "pipe"] });
      let text = "";
      child.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        text += chunk.toString();
      });
      child.once("error", (error) =>
        reject(new Error(`wrk could not start (apt-get install wrk): ${error.message}`)),
      );
      child.once("spawn", () => options.onStart?.(child.pid!));
      child.once("close", (code) =>
        code === 0 ? resolve(text) : reject(new Error(`wrk exited ${code}: ${text}`)),
      );
    });
    const number = (pattern: RegExp) => Number(pattern.exec(output)?.[1] ?? 0);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output);
    return {
      reqPerSec: number(/Requests\/sec:\s+([\d.]+)/),
      requests: number(/(\d+) requests in/),
      non2xx: number(/Non-2xx or 3xx responses: (\d+)/),
      errors: socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
