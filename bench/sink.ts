/**
 * The webhook receiver the deliveries go to: reads the whole body, timestamps it with performance.now()
 * after the last byte, answers 200. Used in-process (S3, S8: one clock with the sender) and from sink-child.ts
 * (S4, S7). While `unavailable` says so, it answers 503 with a Retry-After instead and records nothing (S7).
 * Also the hung target of S8: accepts connections, reads, never answers.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createServer as createTcpServer, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { idOfBody } from "./payload.js";

export interface Sink {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

const OK = Buffer.from('{"ok":true}');
const UNAVAILABLE = Buffer.from('{"error":"maintenance"}');

export interface SinkOptions {
  /** Non-null: answer 503 with this Retry-After header value (and call onRefused) instead of receiving. */
  unavailable?: () => string | null;
  onRefused?: () => void;
}

export function startSink(
  onReceipt: (id: string | null, atMs: number, path: string) => void,
  options: SinkOptions = {},
): Promise<Sink> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const atMs = performance.now();
      const retryAfter = options.unavailable?.() ?? null;
      if (retryAfter !== null) {
        options.onRefused?.();
        response.writeHead(503, {
          "content-type": "application/json",
          "content-length": UNAVAILABLE.length,
          "retry-after": retryAfter,
        });
        response.end(UNAVAILABLE);
        return;
      }
      const path = request.url ?? "/";
      if (request.method === "POST") onReceipt(idOfBody(Buffer.concat(chunks).toString("utf8")), atMs, path);
      response.writeHead(200, { "content-type": "application/json", "content-length": OK.length });
      response.end(OK);
    });
  });
  server.keepAliveTimeout = 60_000;
  return new Promise((resolveSink, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolveSink({
        server,
        port,
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

export interface HungTarget {
  url: string;
  /** Connections accepted so far, and currently open. */
  accepted(): number;
  open(): number;
  /** Destroys every open connection (Mitte's attempts fail at once) and stops listening. */
  close(): Promise<void>;
}

/** A target that accepts TCP connections, reads whatever arrives and never answers. */
export function startHungTarget(): Promise<HungTarget> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createTcpServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("data", () => {});
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  return new Promise((resolveTarget, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolveTarget({
        url: `http://127.0.0.1:${port}`,
        accepted: () => accepted,
        open: () => sockets.size,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
