import { randomBytes } from "node:crypto";
import diagnosticsChannel from "node:diagnostics_channel";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createOutboundHttp,
  type HostResolver,
  type OutboundHttp,
  type OutboundRequest,
} from "./outbound-http.js";
import { createAddressPolicy } from "./ssrf-guard.js";

interface TestServer {
  port: number;
  hits: number;
  connections: number;
  server: Server;
}

const servers: TestServer[] = [];
const clients: OutboundHttp[] = [];

async function startServer(
  host: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end("ok"),
  port = 0,
): Promise<TestServer> {
  const server = createServer();
  const state: TestServer = { port: 0, hits: 0, connections: 0, server };
  server.on("connection", () => state.connections++);
  server.on("request", (req, res) => {
    state.hits++;
    handler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  state.port = (server.address() as AddressInfo).port;
  servers.push(state);
  return state;
}

function client(allowedCidrs: readonly string[], lookup?: HostResolver): OutboundHttp {
  const http = createOutboundHttp({
    policy: createAddressPolicy(allowedCidrs),
    ...(lookup ? { lookup } : {}),
  });
  clients.push(http);
  return http;
}

const get = (url: string, extra: Partial<OutboundRequest> = {}): OutboundRequest => ({
  url,
  method: "GET",
  headers: {},
  timeoutMs: 2_000,
  maxResponseBytes: 1 << 20,
  ...extra,
});

/** Counts every client socket Node creates while `fn` runs, to prove a blocked send never dialled out. */
async function countSocketsDuring<T>(fn: () => Promise<T>): Promise<{ result: T; sockets: number }> {
  let sockets = 0;
  const onSocket = () => sockets++;
  diagnosticsChannel.subscribe("net.client.socket", onSocket);
  try {
    return { result: await fn(), sockets };
  } finally {
    diagnosticsChannel.unsubscribe("net.client.socket", onSocket);
  }
}

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  for (const { server } of servers) server.closeAllConnections();
  await Promise.all(servers.map(({ server }) => new Promise((resolve) => server.close(resolve))));
});

describe("without allow-list", () => {
  let sink: TestServer;
  let sinkV6: TestServer | undefined;
  let http: OutboundHttp;

  beforeAll(async () => {
    sink = await startServer("127.0.0.1");
    // Same port on ::1 too, so an [::1] request that slipped through would be counted.
    sinkV6 = await startServer("::1", undefined, sink.port).catch(() => undefined);
    http = client([]);
  });

  const targets = () => [
    `http://127.0.0.1:${sink.port}/`,
    `http://[::1]:${sink.port}/`,
    `http://[::ffff:127.0.0.1]:${sink.port}/`,
    `http://2130706433:${sink.port}/`,
    `http://0x7f000001:${sink.port}/`,
    `http://localhost:${sink.port}/`,
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://[fd00::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
  ];

  it("blocks loopback, private, metadata and IPv4-embedding targets without connecting", async () => {
    for (const url of targets()) {
      const { result, sockets } = await countSocketsDuring(() => http.send(get(url)));
      expect(result, url).toMatchObject({ kind: "error", errorKind: "blocked", retryable: false });
      expect(sockets, url).toBe(0);
    }
    expect(sink.connections + (sinkV6?.connections ?? 0)).toBe(0);
  });

  it("names the kind of address a blocked name resolves to, but not the address", async () => {
    const result = await http.send(get(`http://localhost:${sink.port}/`));
    const message = result.kind === "error" ? result.message : "";
    expect(message).toBe("localhost resolves to an address Mitte does not send to (loopback address)");
  });

  it("does not reveal an embedded IPv4 address that a name resolves to", async () => {
    const nat64 = client([], async () => [{ address: "64:ff9b::a00:1", family: 6 }]);
    const result = await nat64.send(get("http://internal.example/"));
    expect(result).toMatchObject({ kind: "error", errorKind: "blocked" });
    const message = result.kind === "error" ? result.message : "";
    expect(message).toBe("internal.example resolves to an address Mitte does not send to (private address)");
    expect(message).not.toMatch(/10\.0\.0\.1|a00:1/);
  });

  it("names an IP literal target and why it is blocked", async () => {
    const result = await http.send(get("http://[64:ff9b::a00:1]/"));
    const message = result.kind === "error" ? result.message : "";
    expect(message).toContain("target 64:ff9b::a00:1 is blocked");
    expect(message).toContain("10.0.0.1: private address");
  });

  it("blocks a hostname that resolves to loopback", async () => {
    const lookups: string[] = [];
    const evil = client([], async (hostname) => {
      lookups.push(hostname);
      return [{ address: "127.0.0.1", family: 4 }];
    });
    const { result, sockets } = await countSocketsDuring(() =>
      evil.send(get(`http://evil.example:${sink.port}/`)),
    );
    expect(result).toMatchObject({ kind: "error", errorKind: "blocked" });
    expect(result.kind === "error" && result.message).toContain("evil.example resolves to an address");
    expect(result.kind === "error" && result.message).not.toContain("127.0.0.1");
    expect(lookups).toEqual(["evil.example"]);
    expect(sockets).toBe(0);
    expect(sink.connections).toBe(0);
  });

  it("blocks when any resolved address is disallowed, even if the first one is public", async () => {
    const mixed = client([], async () => [
      { address: "8.8.8.8", family: 4 },
      { address: "127.0.0.1", family: 4 },
    ]);
    const { result, sockets } = await countSocketsDuring(() =>
      mixed.send(get(`http://mixed.example:${sink.port}/`)),
    );
    expect(result).toMatchObject({ kind: "error", errorKind: "blocked" });
    expect(sockets).toBe(0);
    expect(sink.connections).toBe(0);
  });

  it("reports resolver failures as dns errors", async () => {
    const broken = client([], async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND nx.example"), { code: "ENOTFOUND" });
    });
    expect(await broken.send(get("http://nx.example/"))).toMatchObject({
      kind: "error",
      errorKind: "dns",
      retryable: true,
    });
  });
});

describe("redirects", () => {
  let other: TestServer;
  let redirector: TestServer;

  beforeAll(async () => {
    other = await startServer("127.0.0.1");
    redirector = await startServer("127.0.0.2", (_req, res) => {
      res.writeHead(302, { location: `http://127.0.0.1:${other.port}/` }).end();
    });
  });

  it.each([[["127.0.0.2/32"]], [["127.0.0.2/32", "127.0.0.1/32"]]])(
    "returns a 3xx as-is and never follows it (allow-list %j)",
    async (allowList) => {
      const result = await client(allowList).send(get(`http://127.0.0.2:${redirector.port}/`));
      expect(result).toMatchObject({
        kind: "response",
        status: 302,
        headers: { location: `http://127.0.0.1:${other.port}/` },
      });
      expect(other.connections).toBe(0);
    },
  );
});

describe("with allow-list 127.0.0.1/32", () => {
  let http: OutboundHttp;
  beforeAll(() => {
    http = client(["127.0.0.1/32"]);
  });

  it("POSTs the body byte-identical with headers and returns the response", async () => {
    let received:
      | { method?: string; url?: string; headers: IncomingMessage["headers"]; body: Buffer }
      | undefined;
    const sink = await startServer("127.0.0.1", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
        res.setHeader("X-Multi", ["a", "b"]);
        res.writeHead(201, { "Content-Type": "text/plain" }).end("accepted");
      });
    });
    const payload = randomBytes(10_000);

    const result = await http.send({
      url: `http://127.0.0.1:${sink.port}/hooks/in?x=1#fragment`,
      method: "POST",
      headers: { "content-type": "application/octet-stream", "x-mitte-signature": "v1,abc" },
      body: payload,
      timeoutMs: 2_000,
      maxResponseBytes: 1024,
    });

    expect(received?.method).toBe("POST");
    expect(received?.url).toBe("/hooks/in?x=1");
    expect(received?.headers).toMatchObject({
      "content-type": "application/octet-stream",
      "x-mitte-signature": "v1,abc",
      "content-length": "10000",
    });
    expect(received?.body.equals(payload)).toBe(true);
    expect(result).toMatchObject({
      kind: "response",
      status: 201,
      truncated: false,
      headers: { "content-type": "text/plain", "x-multi": "a, b" },
    });
    if (result.kind !== "response") throw new Error("expected a response");
    expect(result.body.toString()).toBe("accepted");
    expect(result.durationMs).toBeGreaterThan(0);
  });

  it("times out a server that never answers", async () => {
    const silent = await startServer("127.0.0.1", () => {});
    const result = await http.send(get(`http://127.0.0.1:${silent.port}/`, { timeoutMs: 300 }));
    expect(result).toMatchObject({ kind: "error", errorKind: "timeout", retryable: true });
    expect(result.durationMs).toBeGreaterThanOrEqual(250);
    expect(result.durationMs).toBeLessThan(2_000);
  });

  it("times out a whole attempt whose body keeps trickling in under the per-chunk timeout", async () => {
    const timers: NodeJS.Timeout[] = [];
    const trickle = await startServer("127.0.0.1", (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      // A byte every 50 ms: never idle for the body timeout (300 ms), never done within the deadline.
      timers.push(setInterval(() => res.write("x"), 50));
    });
    try {
      const result = await http.send(get(`http://127.0.0.1:${trickle.port}/`, { timeoutMs: 300 }));
      expect(result).toMatchObject({ kind: "error", errorKind: "timeout", retryable: true });
      expect(result.durationMs).toBeGreaterThanOrEqual(250);
      expect(result.durationMs).toBeLessThan(2_000);
    } finally {
      for (const timer of timers) clearInterval(timer);
    }
  });

  it("reports a closed port as refused", async () => {
    const closed = await startServer("127.0.0.1");
    await new Promise((resolve) => closed.server.close(resolve));
    const result = await http.send(get(`http://127.0.0.1:${closed.port}/`));
    expect(result).toMatchObject({ kind: "error", errorKind: "refused", retryable: true });
  });

  it("stops reading at maxResponseBytes instead of buffering a large body", async () => {
    const big = await startServer("127.0.0.1", (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = () => {
        while (sent < 5 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("error", () => {});
      pump();
    });
    const result = await http.send(get(`http://127.0.0.1:${big.port}/`, { maxResponseBytes: 65_536 }));
    expect(result).toMatchObject({ kind: "response", status: 200, truncated: true });
    if (result.kind !== "response") throw new Error("expected a response");
    expect(result.body.length).toBe(65_536);
    expect(result.durationMs).toBeLessThan(1_000);
  });

  it("reports a request the HTTP client refuses to send as invalid_request, without retry", async () => {
    const sink = await startServer("127.0.0.1", (_req, res) => res.end("ok"));
    const result = await http.send(
      get(`http://127.0.0.1:${sink.port}/`, { headers: { expect: "100-continue" } }),
    );
    expect(result).toMatchObject({ kind: "error", errorKind: "invalid_request", retryable: false });
  });

  it("rejects non-http(s) schemes and unparseable URLs without retry", async () => {
    for (const url of [`ftp://127.0.0.1/file`, "file:///etc/passwd", "not a url"]) {
      expect(await http.send(get(url)), url).toMatchObject({
        kind: "error",
        errorKind: "invalid_url",
        retryable: false,
      });
    }
  });

  it("reuses one keep-alive connection for sequential requests", async () => {
    const server = await startServer("127.0.0.1");
    for (let i = 0; i < 2; i++) {
      expect(await http.send(get(`http://127.0.0.1:${server.port}/${i}`))).toMatchObject({ status: 200 });
      // undici waits one event-loop turn (setImmediate) before reusing a keep-alive socket, to notice a
      // server that closes despite keep-alive; a request dispatched in that window opens a second socket.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(server.hits).toBe(2);
    expect(server.connections).toBe(1);
  });
});
