import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  atMs: number;
}

export interface SinkReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A real HTTP target on loopback that records what it receives and answers as told. */
export async function startSink(
  reply: (request: ReceivedRequest, index: number) => SinkReply = () => ({ status: 200, body: "ok" }),
  host = "127.0.0.1",
) {
  const received: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
        atMs: Date.now(),
      };
      const index = received.push(request) - 1;
      const answer = reply(request, index);
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body ?? "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type Sink = Awaited<ReturnType<typeof startSink>>;
