import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../test-support/harness.js";
import { httpServerTimeouts, LINGER_MS } from "./http-guard.js";

/**
 * Hostile clients over raw sockets (an HTTP client library would refuse to send most of this): the answers
 * Node's parser gives before any route runs, and how an early error answer ends an upload still in progress.
 */

let h: Harness;
afterEach(async () => h.close());

interface RawAnswer {
  /** Everything the server sent, as latin1. */
  text: string;
  status: number;
  json: unknown;
  /** Body bytes the client managed to write before the connection ended. */
  written: number;
  elapsedMs: number;
}

type Feed = (socket: Socket, count: (bytes: number) => void) => void;

function rawRequest(
  port: number,
  head: string,
  feed: Feed = () => {},
  timeoutMs = 10_000,
  { readLate = false } = {},
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, "127.0.0.1");
    // A client that only reads once it cannot write any more (the feed resumes it): an answer followed by an
    // immediate close of a socket with unread input (a TCP reset) would be lost to it.
    if (readLate) socket.pause();
    let text = "";
    let written = 0;
    let settled = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const [, status = "0"] = /^HTTP\/1\.1 (\d{3})/.exec(text) ?? [];
      const bodyStart = text.indexOf("\r\n\r\n");
      let json: unknown = null;
      try {
        json = JSON.parse(Buffer.from(text.slice(bodyStart + 4), "latin1").toString("utf8"));
      } catch {
        json = null;
      }
      resolve({ text, status: Number(status), json, written, elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(finish, timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
    });
    socket.on("close", finish);
    socket.on("error", () => {});
    socket.write(head);
    feed(socket, (bytes) => {
      written += bytes;
    });
  });
}

/**
 * Writes `total` bytes as fast as the server takes them, chunked or not, and never stops on its own; when the
 * server has stopped taking bytes for 300 ms it starts reading (see `readLate`).
 */
function flood(total: number, chunked: boolean): Feed {
  const chunk = Buffer.alloc(64 * 1024, 0x78);
  const framed = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]);
  return (socket, count) => {
    let sent = 0;
    const pump = () => {
      while (sent < total && !socket.destroyed) {
        sent += chunk.length;
        count(chunk.length);
        if (!socket.write(chunked ? framed : chunk)) {
          const stalled = setTimeout(() => socket.resume(), 300);
          socket.once("drain", () => {
            clearTimeout(stalled);
            pump();
          });
          return;
        }
      }
    };
    pump();
  };
}

async function setup(env: Record<string, string>) {
  h = await createHarness({ env });
  const user = await h.createUser("pro");
  const endpoint = await h.createEndpoint(user.headers, {
    name: "ep",
    targetUrl: "http://127.0.0.1:9/never",
  });
  await h.app.listen({ port: 0, host: "127.0.0.1" });
  const address = h.app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return { port, path: `/api/v1/h/${endpoint.slug}` };
}

async function countLogs(): Promise<number> {
  await h.services.ingest.flush();
  const row = await h.db
    .selectFrom("webhook_logs")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

const MiB = 1024 * 1024;

describe("hostile clients", () => {
  it("a body trickling in gets 408 in the JSON error shape after MITTE_REQUEST_TIMEOUT_MS; nothing stored", async () => {
    const { port, path } = await setup({ MITTE_REQUEST_TIMEOUT_MS: "1000" });
    const answer = await rawRequest(
      port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`,
      (socket, count) => {
        const drip = setInterval(() => {
          if (socket.destroyed) clearInterval(drip);
          else socket.write("x", () => count(1));
        }, 200);
        socket.once("close", () => clearInterval(drip));
      },
    );
    expect(answer.status).toBe(408);
    expect(answer.json).toEqual({ error: { code: "request_timeout", message: expect.any(String) } });
    expect(answer.text).toMatch(/\r\nConnection: close\r\n/i);
    // Timeout plus at most one checking interval, plus scheduling slack.
    const { http } = httpServerTimeouts(1000);
    expect(answer.elapsedMs).toBeGreaterThanOrEqual(900);
    expect(answer.elapsedMs).toBeLessThan(1000 + http.connectionsCheckingInterval + 1000);
    expect(await countLogs()).toBe(0);
  });

  it("headers that never end get 408 too", async () => {
    const { port, path } = await setup({ MITTE_REQUEST_TIMEOUT_MS: "1000" });
    const answer = await rawRequest(port, `POST ${path} HTTP/1.1\r\nHost: x\r\n`, (socket) => {
      const drip = setInterval(() => {
        if (socket.destroyed) clearInterval(drip);
        else socket.write("X-Slow: 1\r\n");
      }, 200);
      socket.once("close", () => clearInterval(drip));
    });
    expect(answer.status).toBe(408);
    expect(answer.json).toEqual({ error: { code: "request_timeout", message: expect.any(String) } });
  });

  it("64 KiB of headers get 431 in the JSON error shape", async () => {
    const { port, path } = await setup({});
    const answer = await rawRequest(
      port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\nContent-Length: 2\r\n\r\n{}`,
    );
    expect(answer.status).toBe(431);
    expect(answer.json).toEqual({ error: { code: "headers_too_large", message: expect.any(String) } });
    expect(await countLogs()).toBe(0);
  });

  it("Content-Length together with Transfer-Encoding gets 400 in the JSON error shape", async () => {
    const { port, path } = await setup({});
    const answer = await rawRequest(
      port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
    );
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ error: { code: "bad_request", message: expect.any(String) } });
    expect(await countLogs()).toBe(0);
  });

  it.each([
    ["with Content-Length", false],
    ["chunked", true],
  ])("an oversized upload %s gets its 413 and the rest is never read", async (_name, chunked) => {
    const { port, path } = await setup({ MITTE_MAX_PAYLOAD_BYTES: String(MiB) });
    const total = 100 * MiB;
    const framing = chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${total}`;
    const answer = await rawRequest(
      port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${framing}\r\n\r\n`,
      flood(total, chunked),
      10_000,
      { readLate: true },
    );
    // The client never stops on its own: the answer must survive the close (no reset before it is read)...
    expect(answer.status).toBe(413);
    expect(answer.json).toEqual({ error: { code: "payload_too_large", message: expect.any(String) } });
    expect(answer.text).toMatch(/\r\nconnection: close\r\n/i);
    // ...and the server stops reading: what got through is socket buffers, not the upload.
    expect(answer.written).toBeLessThan(32 * MiB);
    expect(answer.elapsedMs).toBeLessThan(LINGER_MS + 3_000);
    expect(await countLogs()).toBe(0);
  });

  it("a refusal before the body is read (unknown slug) does not read a large upload either", async () => {
    const { port } = await setup({});
    const total = 100 * MiB;
    const answer = await rawRequest(
      port,
      `POST /api/v1/h/mt_doesnotexist00 HTTP/1.1\r\nHost: x\r\nContent-Length: ${total}\r\n\r\n`,
      flood(total, false),
      10_000,
      { readLate: true },
    );
    expect(answer.status).toBe(404);
    expect(answer.json).toEqual({ error: { code: "not_found", message: expect.any(String) } });
    expect(answer.written).toBeLessThan(32 * MiB);
  });

  it("well-formed requests, chunked included, are untouched and keep the connection alive", async () => {
    const { port, path } = await setup({ MITTE_REQUEST_TIMEOUT_MS: "1000" });
    const answer = await rawRequest(
      port,
      `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `3\r\n{"a\r\n4\r\n":1}\r\n0\r\n\r\n` +
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}`,
      () => {},
      1_500,
    );
    expect(answer.text.match(/HTTP\/1\.1 202 Accepted/g)).toHaveLength(2);
    expect(answer.text).not.toMatch(/connection: close|408/i);
    const bodies = await h.db.selectFrom("webhook_logs").select("request_body").execute();
    expect(bodies.map((row) => row.request_body.toString()).sort()).toEqual(['{"a":1}', "{}"]);
  });
});
