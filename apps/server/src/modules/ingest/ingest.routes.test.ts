import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";

let h: Harness;
afterEach(async () => h.close());

async function countLogs() {
  const row = await h.db
    .selectFrom("webhook_logs")
    .select((eb) => eb.fn.countAll<number>().as("n"))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function setup(env: Record<string, string> = {}, plan: "free" | "pro" = "pro") {
  h = await createHarness({ env });
  const user = await h.createUser(plan);
  const endpoint = await h.createEndpoint(user.headers, {
    name: "ep",
    targetUrl: "http://127.0.0.1:9/never",
  });
  return { user, endpoint };
}

describe("ingest refusals", () => {
  it("413 for a body over the limit, nothing stored; exactly the limit is accepted", async () => {
    const { endpoint } = await setup({ MITTE_MAX_PAYLOAD_BYTES: "1024" });
    const over = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${endpoint.slug}`,
      headers: { "content-type": "application/json" },
      payload: "x".repeat(1025),
    });
    expect(over.statusCode).toBe(413);
    expect(over.json()).toEqual({ error: { code: "payload_too_large", message: expect.any(String) } });
    expect(await countLogs()).toBe(0);
    const atLimit = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${endpoint.slug}`,
      headers: { "content-type": "text/plain" },
      payload: "x".repeat(1024),
    });
    expect(atLimit.statusCode).toBe(202);
    await h.services.ingest.flush();
    expect(await countLogs()).toBe(1);
  });

  it("404 JSON error for an unknown slug; 405 for GET", async () => {
    await setup();
    const unknown = await h.app.inject({ method: "POST", url: "/api/v1/h/mt_doesnotexist00", payload: "{}" });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe("not_found");
    const get = await h.app.inject({ method: "GET", url: "/api/v1/h/mt_doesnotexist00" });
    expect(get.statusCode).toBe(405);
    expect(get.headers.allow).toBe("POST, PUT, PATCH");
    expect(await countLogs()).toBe(0);
  });

  it("accepts any content type, invalid JSON included, byte-exact", async () => {
    const { endpoint } = await setup();
    for (const [type, payload] of [
      ["application/json", "{not json"],
      ["application/x-www-form-urlencoded", "a=1&b=%ZZ"],
      ["text/xml", "<a>é</a>"],
      ["weird/type; charset=latin1", "\u00ff"],
    ] as const) {
      const response = await h.app.inject({
        method: "POST",
        url: `/api/v1/h/${endpoint.slug}`,
        headers: { "content-type": type },
        payload,
      });
      expect(response.statusCode, type).toBe(202);
    }
    await h.services.ingest.flush();
    const bodies = await h.db.selectFrom("webhook_logs").select("request_body").orderBy("id").execute();
    expect(bodies.map((b) => b.request_body.toString())).toEqual([
      "{not json",
      "a=1&b=%ZZ",
      "<a>é</a>",
      "\u00ff",
    ]);
  });

  it("rate limit per endpoint: X-RateLimit headers on 202, then 429 with Retry-After for the block", async () => {
    const { endpoint } = await setup({
      MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: "3",
      MITTE_RATE_LIMIT_IP_PER_MIN: "10",
    });
    const send = () => h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: "{}" });
    const first = await send();
    expect(first.statusCode).toBe(202);
    expect(first.headers["x-ratelimit-limit"]).toBe("3");
    expect(first.headers["x-ratelimit-remaining"]).toBe("2");
    expect(Number(first.headers["x-ratelimit-reset"])).toBeGreaterThan(h.clock.now() / 1000);
    expect((await send()).statusCode).toBe(202);
    expect((await send()).headers["x-ratelimit-remaining"]).toBe("0");
    const limited = await send();
    expect(limited.statusCode).toBe(429);
    expect(limited.headers["retry-after"]).toBe("120");
    expect(limited.json()).toEqual({ error: { code: "rate_limited", message: "Too many requests" } });
    // Still blocked 119 s later even though the window moved on; free again after the block.
    h.clock.advance(119_000);
    expect((await send()).statusCode).toBe(429);
    h.clock.advance(62_000);
    expect((await send()).statusCode).toBe(202);
    await h.services.ingest.flush();
    expect(await countLogs()).toBe(4);
  });

  it("rate limit per client IP across endpoints", async () => {
    const { user, endpoint } = await setup({ MITTE_RATE_LIMIT_IP_PER_MIN: "2" });
    const other = await h.createEndpoint(user.headers, { name: "other", targetUrl: "http://127.0.0.1:9/" });
    expect(
      (await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: "{}" })).statusCode,
    ).toBe(202);
    expect(
      (await h.app.inject({ method: "POST", url: `/api/v1/h/${other.slug}`, payload: "{}" })).statusCode,
    ).toBe(202);
    expect(
      (await h.app.inject({ method: "POST", url: `/api/v1/h/${other.slug}`, payload: "{}" })).statusCode,
    ).toBe(429);
    const fromElsewhere = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${other.slug}`,
      payload: "{}",
      remoteAddress: "198.51.100.7",
    });
    expect(fromElsewhere.statusCode).toBe(202);
  });

  it("monthly quota: 429 quota_exceeded past the hard limit until the month rolls over; tests don't count", async () => {
    const { user, endpoint } = await setup({}, "free");
    const period = new Date(h.clock.now()).toISOString().slice(0, 7);
    await h.db
      .insertInto("usage_counters")
      .values({ user_id: user.userId, period, request_count: 4_999 })
      .execute();
    const send = () => h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: "{}" });
    expect((await send()).statusCode).toBe(202);
    const refused = await send();
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe("quota_exceeded");
    const monthEnd = Date.UTC(2026, 1, 1);
    expect(Number(refused.headers["retry-after"])).toBe(Math.ceil((monthEnd - h.clock.now()) / 1000));
    const test = await h.app.inject({
      method: "POST",
      url: `/api/v1/endpoints/${endpoint.id}/test`,
      headers: user.headers,
    });
    expect(test.statusCode).toBe(202);
    await h.services.ingest.flush();
    const stored = await h.db
      .selectFrom("usage_counters")
      .select("request_count")
      .where("period", "=", period)
      .executeTakeFirstOrThrow();
    expect(Number(stored.request_count)).toBe(5_000);
    h.clock.set(monthEnd);
    expect((await send()).statusCode).toBe(202);
  });

  it("counts a webhook in the month its quota was reserved in, even when the commit falls in the next", async () => {
    const { user, endpoint } = await setup({}, "free");
    h.clock.set(Date.UTC(2026, 0, 31, 23, 59, 59, 999));
    const admitted = await h.services.ingest.admit(endpoint.slug, "127.0.0.1");
    if (admitted.outcome !== "admitted") throw new Error("setup");
    const webhook = { method: "POST", query: "", headers: {}, body: Buffer.from("{}") };
    // accept() reserves January's quota at once; its group commit runs after the clock has moved on.
    const accepting = h.services.ingest.accept(admitted.endpoint, webhook);
    h.clock.set(Date.UTC(2026, 1, 1));
    expect((await accepting).outcome).toBe("accepted");
    const usage = await h.db
      .selectFrom("usage_counters")
      .select(["period", "request_count"])
      .where("user_id", "=", user.userId)
      .execute();
    expect(usage.map((row) => [row.period, Number(row.request_count)])).toEqual([["2026-01", 1]]);
  });

  it("a webhook whose endpoint is deleted before its commit gets 404; the rest of its batch is stored", async () => {
    h = await createHarness();
    const alice = await h.createUser();
    const bob = await h.createUser();
    const doomed = await h.createEndpoint(alice.headers, {
      name: "doomed",
      targetUrl: "http://127.0.0.1:9/",
    });
    const other = await h.createEndpoint(bob.headers, { name: "other", targetUrl: "http://127.0.0.1:9/" });
    const admittedDoomed = await h.services.ingest.admit(doomed.slug, "127.0.0.1");
    const admittedOther = await h.services.ingest.admit(other.slug, "127.0.0.1");
    if (admittedDoomed.outcome !== "admitted" || admittedOther.outcome !== "admitted")
      throw new Error("setup");
    const deleted = await h.app.inject({
      method: "DELETE",
      url: `/api/v1/endpoints/${doomed.id}`,
      headers: alice.headers,
    });
    expect(deleted.statusCode).toBe(204);
    const webhook = {
      method: "POST",
      query: "",
      headers: { "content-type": "application/json" },
      body: Buffer.from("{}"),
    };
    // Both in one group commit: the deleted endpoint's row fails its foreign key.
    const [gone, kept] = await Promise.all([
      h.services.ingest.accept(admittedDoomed.endpoint, webhook),
      h.services.ingest.accept(admittedOther.endpoint, webhook),
    ]);
    expect(gone).toEqual({ outcome: "endpoint_not_found" });
    expect(kept.outcome).toBe("accepted");
    const stored = await h.db.selectFrom("webhook_logs").select("endpoint_id").execute();
    expect(stored.map((row) => row.endpoint_id)).toEqual([other.id]);
    const usage = await h.db.selectFrom("usage_counters").select(["user_id", "request_count"]).execute();
    expect(usage.map((row) => [row.user_id, Number(row.request_count)])).toEqual([[bob.userId, 1]]);
  });

  it("group commit: 300 concurrent webhooks are all stored, each with its job", async () => {
    const { endpoint } = await setup();
    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: { i } }),
      ),
    );
    expect(responses.every((r) => r.statusCode === 202)).toBe(true);
    expect(await countLogs()).toBe(300);
    expect(await h.queue.depth()).toBe(300);
  });

  it("a paused endpoint stores webhooks and delivers them once resumed", async () => {
    h = await createHarness();
    const { startSink } = await import("../../test-support/sink.js");
    const sink = await startSink();
    try {
      const user = await h.createUser("pro");
      const endpoint = await h.createEndpoint(user.headers, {
        name: "paused",
        targetUrl: sink.url,
        paused: true,
      });
      const sent = await h.app.inject({
        method: "POST",
        url: `/api/v1/h/${endpoint.slug}`,
        payload: { a: 1 },
      });
      expect(sent.statusCode).toBe(202);
      expect(await h.runDeliveries()).toBe(0);
      expect(sink.received).toHaveLength(0);
      const resumed = await h.app.inject({
        method: "PATCH",
        url: `/api/v1/endpoints/${endpoint.id}`,
        headers: user.headers,
        payload: { paused: false },
      });
      expect(resumed.json().paused).toBe(false);
      expect(await h.runDeliveries()).toBe(1);
      expect(sink.received.map((r) => r.headers["x-mitte-delivery-id"])).toEqual([sent.json().id]);
    } finally {
      await sink.close();
    }
  });
});
