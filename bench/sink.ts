/**
 * The webhook receiver the deliveries go to: reads the whole body, timestamps it with performance.now()
 * after the last byte, answers 200. Used in-process (S3, one clock with the sender) and from sink-child.ts (S4).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { idOfBody } from "./payload.js";

export interface Sink {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

const OK = Buffer.from('{"ok":true}');

export function startSink(onReceipt: (id: string | null, atMs: number, path: string) => void): Promise<Sink> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const atMs = performance.now();
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
