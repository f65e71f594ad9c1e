/**
 * S1's baseline: a bare node:http server that reads the whole body and answers 202 with a small JSON body,
 * the same shape Mitte's ingest answers with. Reports {type:"ready", port} over IPC.
 * With BENCH_SPIN_US set (bench/bounds.ts only), it also keeps its thread busy that many µs per request
 * before answering: what a given amount of work per request costs in S1's ratio on this machine.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

const spinUs = Number(process.env.BENCH_SPIN_US ?? 0);
let counter = 0;
let bytes = 0;

function spin(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) {
    // busy: stands for work done per request
  }
}

const server = createServer((request, response) => {
  request.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
  });
  request.on("end", () => {
    if (spinUs > 0) spin(spinUs);
    counter += 1;
    const body = `{"id":"log_${String(counter).padStart(12, "0")}","status":"queued"}`;
    response.writeHead(202, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
    });
    response.end(body);
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: "ready", port });
});

process.on("message", (raw) => {
  if ((raw as { type?: string }).type === "stats")
    process.send?.({ type: "stats", requests: counter, bytes });
});
process.on("disconnect", () => process.exit(0));
