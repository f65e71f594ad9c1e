import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { verifyWebhookSignature } from "../../lib/crypto.js";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type Sink, startSink } from "../../test-support/sink.js";
import { EXCLUDED_HEADERS } from "./forward-headers.js";

let h: Harness;
let sink: Sink;

afterEach(async () => {
  await h.close();
  await sink.close();
});

const stripeBody = Buffer.from(
  JSON.stringify({
    id: "evt_1",
    object: "event",
    type: "checkout.session.completed",
    data: { object: { amount_total: 4200, customer_email: "a@b.c" } },
  }),
);

async function logDetail(headers: Record<string, string>, id: string) {
  const response = await h.app.inject({ method: "GET", url: `/api/v1/logs/${id}`, headers });
  expect(response.statusCode).toBe(200);
  return response.json();
}

describe("ingest → store → queue → signed forward", () => {
  beforeEach(async () => {
    h = await createHarness();
    sink = await startSink();
  });

  it("forwards a Stripe webhook byte-identical, with filtered headers and a valid signature", async () => {
    const user = await h.createUser("free");
    const endpoint = await h.createEndpoint(user.headers, {
      name: "stripe-prod",
      targetUrl: `${sink.url}/hooks?from=mitte`,
    });
    expect(endpoint.signingSecret).toMatch(/^whsec_/);

    const providerHeaders = {
      "content-type": "application/json; charset=utf-8",
      "stripe-signature": "t=1700000000,v1=abc",
      "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
      "x-custom-header": "kept",
      "x-forwarded-for": "203.0.113.9",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "hooks.example.com",
      "cf-ray": "8a1b2c3d4e5f-FRA",
      "cf-connecting-ip": "203.0.113.9",
      "cf-visitor": '{"scheme":"https"}',
      "proxy-authorization": "Basic c2VjcmV0",
      "x-mitte-attempt": "99",
    };
    const ingest = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${endpoint.slug}?topic=orders`,
      headers: providerHeaders,
      payload: stripeBody,
    });
    expect(ingest.statusCode).toBe(202);
    const { id, status } = ingest.json();
    expect(status).toBe("queued");
    expect(id).toMatch(/^log_/);

    expect(await h.runDeliveries()).toBe(1);
    expect(sink.received).toHaveLength(1);
    const received = sink.received[0]!;
    expect(received.method).toBe("POST");
    expect(received.url).toBe("/hooks?from=mitte&topic=orders");
    expect(received.body.equals(stripeBody)).toBe(true);
    for (const name of EXCLUDED_HEADERS) {
      if (name === "host" || name === "connection") continue; // set by the HTTP client for its own hop
      expect(received.headers[name], name).toBeUndefined();
    }
    expect(received.headers.connection).not.toBe("upgrade");
    expect(received.headers["stripe-signature"]).toBe("t=1700000000,v1=abc");
    expect(received.headers["user-agent"]).toBe(providerHeaders["user-agent"]);
    expect(received.headers["x-custom-header"]).toBe("kept");
    expect(received.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(received.headers["x-mitte-attempt"]).toBe("1");
    expect(received.headers["x-mitte-delivery-id"]).toBe(id);
    expect(received.headers["x-mitte-test"]).toBeUndefined();
    const signature = String(received.headers["x-mitte-signature"]);
    expect(signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const nowSeconds = Math.floor(h.clock.now() / 1000);
    expect(verifyWebhookSignature(endpoint.signingSecret!, signature, received.body, nowSeconds)).toBe(true);
    expect(verifyWebhookSignature("whsec_wrongwrongwrongwrong", signature, received.body, nowSeconds)).toBe(
      false,
    );

    const log = await logDetail(user.headers, id);
    expect(log).toMatchObject({
      status: "delivered",
      attempts: 1,
      source: "stripe",
      responseStatus: 200,
      test: false,
    });
    expect(log.requestBody).toEqual({
      encoding: "utf8",
      data: stripeBody.toString(),
      size: stripeBody.length,
    });
    expect(log.attemptDetails).toHaveLength(1);
    expect(log.attemptDetails[0]).toMatchObject({
      attempt: 1,
      outcome: "success",
      responseStatus: 200,
      responseBody: { data: "ok" },
    });
  });

  it("delivers a webhook whose sender asked for 100-continue, without forwarding its Expect header", async () => {
    // curl and several HTTP clients send `Expect: 100-continue` with larger bodies; undici refuses to send
    // that header, so forwarding it failed every attempt.
    const user = await h.createUser();
    const endpoint = await h.createEndpoint(user.headers, { name: "curl", targetUrl: sink.url });
    const address = await h.app.listen({ port: 0, host: "127.0.0.1" });
    const body = Buffer.from(JSON.stringify({ id: "evt_expect", padding: "x".repeat(2_000) }));
    const status = await new Promise<number>((resolve, reject) => {
      const sent = request(`${address}/api/v1/h/${endpoint.slug}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "content-length": body.length,
          expect: "100-continue",
        },
      });
      sent.on("continue", () => sent.end(body));
      sent.on("response", (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      });
      sent.on("error", reject);
    });
    expect(status).toBe(202);
    expect(await h.runDeliveries()).toBe(1);
    expect(sink.received).toHaveLength(1);
    expect(sink.received[0]!.headers.expect).toBeUndefined();
    expect(sink.received[0]!.body.equals(body)).toBe(true);
  });

  it("stores and forwards non-UTF-8 bytes and an empty body exactly", async () => {
    const user = await h.createUser();
    const endpoint = await h.createEndpoint(user.headers, {
      name: "bin",
      targetUrl: sink.url,
      signingSecret: null,
    });
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41]);
    const a = await h.app.inject({
      method: "PUT",
      url: `/api/v1/h/${endpoint.slug}`,
      headers: { "content-type": "application/octet-stream" },
      payload: bytes,
    });
    const b = await h.app.inject({ method: "PATCH", url: `/api/v1/h/${endpoint.slug}` });
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
    await h.runDeliveries();
    const byMethod = Object.fromEntries(sink.received.map((r) => [r.method, r]));
    expect(byMethod.PUT?.body.equals(bytes)).toBe(true);
    expect(byMethod.PUT?.headers["x-mitte-signature"]).toBeUndefined();
    expect(byMethod.PATCH?.body.length).toBe(0);
    const log = await logDetail(user.headers, a.json().id);
    expect(log.requestBody).toEqual({ encoding: "base64", data: bytes.toString("base64"), size: 5 });
  });

  it("an attempt that would start after abandon() sends nothing, records nothing and stays queued", async () => {
    const user = await h.createUser("free");
    const endpoint = await h.createEndpoint(user.headers, { name: "e", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    await h.services.ingest.flush();
    // abandon() lands while the attempt loads its log, before it would send.
    const delivering = h.services.delivery.deliver({ logId: id, endpointId: endpoint.id });
    h.services.delivery.abandon();
    expect(await delivering).toEqual({ kind: "retry", runAtMs: h.clock.now() });
    await h.services.delivery.flush();
    expect(sink.received).toHaveLength(0);
    expect(await logDetail(user.headers, id)).toMatchObject({ status: "queued", attempts: 0 });
  });
});

describe("retries follow the plan", () => {
  beforeEach(async () => {
    h = await createHarness();
  });

  it("Pro: fails twice, then succeeds on attempt 3 after 5 s and 10 s", async () => {
    sink = await startSink((_request, index) =>
      index < 2 ? { status: 503, body: "down" } : { status: 200 },
    );
    const user = await h.createUser("pro");
    const endpoint = await h.createEndpoint(user.headers, { name: "pro", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: { n: 1 } })
    ).json();
    const t0 = h.clock.now();

    expect(await h.runDeliveries()).toBe(1);
    let log = await logDetail(user.headers, id);
    expect(log).toMatchObject({
      status: "retrying",
      attempts: 1,
      responseStatus: 503,
      errorKind: "http_status",
    });
    expect(Date.parse(log.nextAttemptAt)).toBe(t0 + 5_000);

    h.clock.advance(4_999);
    expect(await h.runDeliveries()).toBe(0);
    h.clock.advance(1);
    expect(await h.runDeliveries()).toBe(1);
    log = await logDetail(user.headers, id);
    expect(log).toMatchObject({ status: "retrying", attempts: 2 });
    expect(Date.parse(log.nextAttemptAt)).toBe(t0 + 5_000 + 10_000);

    h.clock.advance(9_999);
    expect(await h.runDeliveries()).toBe(0);
    h.clock.advance(1);
    expect(await h.runDeliveries()).toBe(1);
    log = await logDetail(user.headers, id);
    expect(log).toMatchObject({ status: "delivered", attempts: 3, responseStatus: 200, nextAttemptAt: null });
    expect(
      log.attemptDetails.map((a: { attempt: number; outcome: string }) => [a.attempt, a.outcome]),
    ).toEqual([
      [1, "failure"],
      [2, "failure"],
      [3, "success"],
    ]);
    expect(sink.received.map((r) => r.headers["x-mitte-attempt"])).toEqual(["1", "2", "3"]);
    expect(new Set(sink.received.map((r) => r.headers["x-mitte-delivery-id"]))).toEqual(new Set([id]));
    expect(sink.received.map((r) => r.atMs >= 0)).toEqual([true, true, true]);
    // Each attempt is signed at its own send time.
    const startedAt = log.attemptDetails.map((a: { startedAt: string }) => Date.parse(a.startedAt) - t0);
    expect(startedAt).toEqual([0, 5_000, 15_000]);
  });

  it("Pro: gives up after 5 attempts with the documented delays", async () => {
    sink = await startSink(() => ({ status: 500 }));
    const user = await h.createUser("pro");
    const endpoint = await h.createEndpoint(user.headers, { name: "pro", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    const t0 = h.clock.now();
    for (const delay of [0, 5_000, 10_000, 20_000, 40_000]) {
      h.clock.advance(delay);
      expect(await h.runDeliveries()).toBe(1);
    }
    h.clock.advance(3_600_000);
    expect(await h.runDeliveries()).toBe(0);
    const log = await logDetail(user.headers, id);
    expect(log).toMatchObject({ status: "failed", attempts: 5, maxAttempts: 5 });
    expect(log.attemptDetails.map((a: { startedAt: string }) => Date.parse(a.startedAt) - t0)).toEqual([
      0, 5_000, 15_000, 35_000, 75_000,
    ]);
    expect(await h.queue.depth()).toBe(0);
  });

  it("a downgrade to Free ends the retries still pending", async () => {
    sink = await startSink(() => ({ status: 503 }));
    const user = await h.createUser("pro", "downgrade@example.com");
    const endpoint = await h.createEndpoint(user.headers, { name: "pro", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    await h.runDeliveries();
    expect(await logDetail(user.headers, id)).toMatchObject({ status: "retrying", attempts: 1 });
    expect(await h.services.users.setPlan("downgrade@example.com", "free")).toBe(true);
    h.clock.advance(5_000); // the retry is due (and the endpoint cache's 5 s are over)
    await h.runDeliveries();
    // Free has one attempt: the attempt that ran now is the last.
    expect(await logDetail(user.headers, id)).toMatchObject({ status: "failed", attempts: 2 });
    h.clock.advance(60_000);
    await h.runDeliveries();
    expect(sink.received).toHaveLength(2);
  });

  it("Free: exactly one attempt", async () => {
    sink = await startSink(() => ({ status: 500 }));
    const user = await h.createUser("free");
    const endpoint = await h.createEndpoint(user.headers, { name: "free", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    await h.runDeliveries();
    h.clock.advance(3_600_000);
    expect(await h.runDeliveries()).toBe(0);
    expect(sink.received).toHaveLength(1);
    expect(await logDetail(user.headers, id)).toMatchObject({
      status: "failed",
      attempts: 1,
      maxAttempts: 1,
    });
  });

  it("marks a log delivering once its attempt has run for a second, not before", async () => {
    sink = await startSink(); // unused here: afterEach closes it; this target answers when told
    let answer: () => void = () => {};
    const slow = createServer((_req, res) => {
      answer = () => res.end("ok");
    });
    await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve));
    try {
      const user = await h.createUser("pro");
      const endpoint = await h.createEndpoint(user.headers, {
        name: "slow",
        targetUrl: `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`,
      });
      const { id } = (
        await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
      ).json();
      const delivering = h.runDeliveries();
      await sleep(300);
      expect(await logDetail(user.headers, id)).toMatchObject({ status: "queued" });
      await sleep(1_000);
      expect(await logDetail(user.headers, id)).toMatchObject({ status: "delivering" });
      answer();
      expect(await delivering).toBe(1);
      expect(await logDetail(user.headers, id)).toMatchObject({ status: "delivered", attempts: 1 });
    } finally {
      slow.closeAllConnections();
      await new Promise<void>((resolve) => slow.close(() => resolve()));
    }
  });

  it("honours a 429 Retry-After longer than the backoff, and does not retry a 410", async () => {
    sink = await startSink((request) =>
      request.url.includes("gone") ? { status: 410 } : { status: 429, headers: { "retry-after": "120" } },
    );
    const user = await h.createUser("pro");
    const limited = await h.createEndpoint(user.headers, {
      name: "limited",
      targetUrl: `${sink.url}/limited`,
    });
    const gone = await h.createEndpoint(user.headers, { name: "gone", targetUrl: `${sink.url}/gone` });
    const a = (await h.app.inject({ method: "POST", url: `/api/v1/h/${limited.slug}`, payload: {} })).json();
    const b = (await h.app.inject({ method: "POST", url: `/api/v1/h/${gone.slug}`, payload: {} })).json();
    await h.runDeliveries();
    const la = await logDetail(user.headers, a.id);
    expect(Date.parse(la.nextAttemptAt) - h.clock.now()).toBe(120_000);
    expect(await logDetail(user.headers, b.id)).toMatchObject({
      status: "failed",
      attempts: 1,
      responseStatus: 410,
    });
  });

  it("pausing and resuming an endpoint keeps a scheduled retry's time", async () => {
    sink = await startSink(() => ({ status: 503, headers: { "retry-after": "600" } }));
    const user = await h.createUser("pro");
    const endpoint = await h.createEndpoint(user.headers, { name: "busy", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    await h.runDeliveries();
    expect(sink.received).toHaveLength(1);
    const setPaused = (paused: boolean) =>
      h.app.inject({
        method: "PATCH",
        url: `/api/v1/endpoints/${endpoint.id}`,
        headers: user.headers,
        payload: { paused },
      });
    expect((await setPaused(true)).statusCode).toBe(200);
    h.clock.advance(1_000);
    expect((await setPaused(false)).statusCode).toBe(200);
    await h.runDeliveries();
    expect(sink.received).toHaveLength(1); // not before the target's Retry-After
    const log = await logDetail(user.headers, id);
    expect(Date.parse(log.nextAttemptAt) - h.clock.now()).toBe(599_000);
    h.clock.advance(599_000);
    await h.runDeliveries();
    expect(sink.received).toHaveLength(2);
  });

  it("test webhooks: x-mitte-test header, test flag, one attempt even on Pro", async () => {
    sink = await startSink(() => ({ status: 500 }));
    const user = await h.createUser("pro");
    const endpoint = await h.createEndpoint(user.headers, { name: "t", targetUrl: sink.url });
    const sent = await h.app.inject({
      method: "POST",
      url: `/api/v1/endpoints/${endpoint.id}/test`,
      headers: user.headers,
      payload: { payload: { hello: "world" } },
    });
    expect(sent.statusCode).toBe(202);
    const defaulted = await h.app.inject({
      method: "POST",
      url: `/api/v1/endpoints/${endpoint.id}/test`,
      headers: user.headers,
    });
    expect(defaulted.statusCode).toBe(202);
    await h.runDeliveries();
    h.clock.advance(60_000);
    expect(await h.runDeliveries()).toBe(0);
    expect(sink.received).toHaveLength(2);
    expect(sink.received.every((r) => r.headers["x-mitte-test"] === "true")).toBe(true);
    expect(sink.received.map((r) => JSON.parse(r.body.toString())).find((b) => b.hello)).toEqual({
      hello: "world",
    });
    const log = await logDetail(user.headers, sent.json().id);
    expect(log).toMatchObject({ test: true, status: "failed", attempts: 1, maxAttempts: 1 });
  });
});

describe("SSRF guard in delivery", () => {
  it("refuses a loopback target when no allow-list is set, without retrying", async () => {
    h = await createHarness({ env: { MITTE_ALLOW_PRIVATE_TARGETS: "" } });
    sink = await startSink();
    const user = await h.createUser("pro");
    // A name, not the literal 127.0.0.1 (which is refused when the endpoint is saved): names are only
    // checked when delivery resolves them.
    const endpoint = await h.createEndpoint(user.headers, {
      name: "evil",
      targetUrl: sink.url.replace("127.0.0.1", "localhost"),
    });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    await h.runDeliveries();
    expect(sink.received).toHaveLength(0);
    const log = await logDetail(user.headers, id);
    expect(log).toMatchObject({ status: "failed", attempts: 1, errorKind: "blocked" });
    expect(log.errorMessage).toBe(
      "localhost resolves to an address Mitte does not send to (loopback address)",
    );
  });
});
