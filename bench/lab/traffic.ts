/**
 * The lab's load generator and sink, in one process so latency needs one clock. The sender is open loop:
 * request i is due at t0 + i/rate whether or not earlier ones were answered, and latency counts from that due
 * time, so a stalled server shows up as latency instead of as fewer requests (no coordinated omission).
 * Every request carries a unique id in its JSON body; the sink books receipts in the ledger.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { Pool } from "undici";
import type { Ledger } from "./ledger.js";

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

// ---------------------------------------------------------------- bodies

/** A Stripe-shaped JSON event of about `bytes` bytes carrying `id`, with multi-byte UTF-8 to catch re-encoding. */
export function labBody(id: string, bytes = 512): Buffer {
  const head = { id, object: "event", type: "invoice.paid", note: "grüße — 東京 ✓", created: 1_717_171_717 };
  const bare = Buffer.byteLength(JSON.stringify({ ...head, pad: "" }));
  return Buffer.from(JSON.stringify({ ...head, pad: "x".repeat(Math.max(0, bytes - bare)) }));
}

const ID_PATTERN = /^\{"id":"([^"]+)"/;

export function idOfLabBody(body: Buffer): string | null {
  return ID_PATTERN.exec(body.subarray(0, 120).toString("latin1"))?.[1] ?? null;
}

export const LAB_HEADERS = {
  "content-type": "application/json",
  "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
};

// ---------------------------------------------------------------- sink

export type SinkBehaviour =
  | { kind: "ok"; delayMs?: () => number }
  /** Answers 503 to everything (a target that is down but reachable). */
  | { kind: "unavailable" };

export interface LabSink {
  url: string;
  port: number;
  /**
   * Receipts go to this ledger from now on; with `path`, only receipts for that path (one endpoint per
   * repetition), so a late redelivery of an earlier repetition's webhook is booked in that repetition's ledger
   * instead of counting as a stranger in the current one.
   */
  use(ledger: Ledger, path?: string): void;
  behave(behaviour: SinkBehaviour): void;
  /** Receipts by path prefix, e.g. for several endpoints on one sink. */
  receiptsByPath: Map<string, number>;
  close(): Promise<void>;
}

const OK = Buffer.from('{"ok":true}');

export async function startLabSink(port = 0): Promise<LabSink> {
  let ledger: Ledger | null = null;
  const ledgersByPath = new Map<string, Ledger>();
  let behaviour: SinkBehaviour = { kind: "ok" };
  const receiptsByPath = new Map<string, number>();
  const answer = (response: ServerResponse, status: number) => {
    response.writeHead(status, { "content-type": "application/json", "content-length": OK.length });
    response.end(OK);
  };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const at = performance.now();
      const current = behaviour;
      if (current.kind === "unavailable") return answer(response, 503);
      const body = Buffer.concat(chunks);
      const path = request.url ?? "/";
      receiptsByPath.set(path, (receiptsByPath.get(path) ?? 0) + 1);
      const book = () => {
        (ledgersByPath.get(path) ?? ledger)?.received(
          idOfLabBody(body),
          body,
          request.headers["x-mitte-signature"] as string | undefined,
          at,
        );
        answer(response, 200);
      };
      const delay = current.delayMs?.() ?? 0;
      if (delay > 0) setTimeout(book, delay);
      else book();
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((ready, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => ready());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${bound}`,
    port: bound,
    receiptsByPath,
    use(next, path) {
      if (path === undefined) ledger = next;
      else ledgersByPath.set(path, next);
    },
    behave(next) {
      behaviour = next;
    },
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

// ---------------------------------------------------------------- sender

export interface SendOptions {
  /** Ingest URLs; request i goes to targets[i % targets.length] (several api processes). */
  targets: readonly string[];
  ratePerSec: number;
  count: number;
  ledger: Ledger;
  idPrefix: string;
  bodyBytes?: number;
  /** Per-request limit before the outcome is booked unknown. */
  timeoutMs?: number;
  connections?: number;
}

export interface SendSummary {
  sent: number;
  windowMs: number;
  maxSendLagMs: number;
}

/** Sends `count` webhooks at `ratePerSec`, open loop; resolves when every request has an outcome. */
export async function sendOpenLoop(options: SendOptions): Promise<SendSummary> {
  const { targets, ratePerSec, count, ledger, idPrefix } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pools = new Map<string, Pool>();
  const routes = targets.map((target) => {
    const url = new URL(target);
    let pool = pools.get(url.origin);
    if (!pool) {
      pool = new Pool(url.origin, {
        connections: options.connections ?? 64,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        connect: { timeout: 2_000 },
      });
      pools.set(url.origin, pool);
    }
    return { pool, path: url.pathname + url.search };
  });
  const pending: Promise<void>[] = [];
  const interval = 1000 / ratePerSec;
  let maxSendLagMs = 0;
  const fire = (i: number, dueAt: number) => {
    const id = `${idPrefix}_${String(i).padStart(7, "0")}`;
    const body = labBody(id, options.bodyBytes);
    const route = routes[i % routes.length]!;
    ledger.sent(id, body, dueAt);
    pending.push(
      route.pool
        .request({
          path: route.path,
          method: "POST",
          headers: LAB_HEADERS,
          body,
          signal: AbortSignal.timeout(timeoutMs),
        })
        .then(
          async (response) => {
            ledger.answered(id, response.statusCode, performance.now());
            await response.body.dump().catch(() => {});
          },
          () => ledger.noAnswer(id),
        ),
    );
  };
  const t0 = performance.now() + 5;
  await new Promise<void>((allSent) => {
    let i = 0;
    const tick = () => {
      const now = performance.now();
      while (i < count && t0 + i * interval <= now) {
        const due = t0 + i * interval;
        maxSendLagMs = Math.max(maxSendLagMs, now - due);
        fire(i, due);
        i += 1;
      }
      if (i < count) setTimeout(tick, 1);
      else allSent();
    };
    setTimeout(tick, 5);
  });
  const windowMs = performance.now() - t0;
  await Promise.all(pending);
  await Promise.all([...pools.values()].map((pool) => pool.destroy()));
  return { sent: count, windowMs, maxSendLagMs };
}

/** Waits until every accepted id was received or `timeoutMs` passed; true when the books can close. */
export async function waitForDrain(ledger: Ledger, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (ledger.outstanding() === 0) return true;
    await sleep(50);
  }
  return ledger.outstanding() === 0;
}
