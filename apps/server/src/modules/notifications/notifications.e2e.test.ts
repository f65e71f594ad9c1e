import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type Sink, startSink } from "../../test-support/sink.js";

let h: Harness;
let sink: Sink;
let failing = true;

beforeEach(async () => {
  h = await createHarness();
  failing = true;
  sink = await startSink(() => (failing ? { status: 503 } : { status: 200 }));
});
afterEach(async () => {
  await h.close();
  await sink.close();
});

async function setup(plan: "free" | "pro" = "free") {
  const user = await h.createUser(plan);
  const endpoint = await h.createEndpoint(user.headers, { name: "stripe-prod", targetUrl: sink.url });
  return { user, endpoint };
}

async function sendAndDeliver(slug: string, count = 1) {
  for (let i = 0; i < count; i++)
    expect(
      (await h.app.inject({ method: "POST", url: `/api/v1/h/${slug}`, payload: { i } })).statusCode,
    ).toBe(202);
  await h.runDeliveries();
}

async function notifications(headers: Record<string, string>, query = "") {
  const response = await h.app.inject({ method: "GET", url: `/api/v1/notifications${query}`, headers });
  expect(response.statusCode).toBe(200);
  return response.json() as {
    data: { id: string; type: string; message: string; endpointSlug: string | null; read: boolean }[];
    unreadCount: number;
  };
}

describe("ENDPOINT_DOWN", () => {
  it("fires once at 5 consecutive failures, not at the 6th; a success or an hour idle starts a new streak", async () => {
    const { user, endpoint } = await setup();
    await sendAndDeliver(endpoint.slug, 4);
    expect((await notifications(user.headers)).data).toHaveLength(0);
    await sendAndDeliver(endpoint.slug, 1);
    let list = await notifications(user.headers);
    expect(list.data.map((n) => n.type)).toEqual(["ENDPOINT_DOWN"]);
    expect(list.data[0]).toMatchObject({ endpointSlug: endpoint.slug, read: false });
    expect(list.data[0]!.message).toContain("'stripe-prod'");
    await sendAndDeliver(endpoint.slug, 1);
    expect((await notifications(user.headers)).data).toHaveLength(1);

    failing = false;
    await sendAndDeliver(endpoint.slug, 1); // success resets
    failing = true;
    await sendAndDeliver(endpoint.slug, 4);
    expect((await notifications(user.headers)).data).toHaveLength(1);
    h.clock.advance(61 * 60 * 1000); // an hour without activity resets too
    await sendAndDeliver(endpoint.slug, 4);
    expect((await notifications(user.headers)).data).toHaveLength(1);
    await sendAndDeliver(endpoint.slug, 1);
    list = await notifications(user.headers);
    expect(list.data.map((n) => n.type)).toEqual(["ENDPOINT_DOWN", "ENDPOINT_DOWN"]);
    expect(list.unreadCount).toBe(2);

    // Email is on by default: without a mail provider the mail lands in the outbox.
    const mails = await h.services.users.outbox(10);
    expect(mails.filter((m) => m.subject === "[Mitte] Endpoint down")).toHaveLength(2);

    const first = list.data[1]!.id;
    expect(
      (
        await h.app.inject({
          method: "POST",
          url: `/api/v1/notifications/${first}/read`,
          headers: user.headers,
        })
      ).statusCode,
    ).toBe(204);
    expect((await notifications(user.headers, "?unread=true")).data.map((n) => n.id)).not.toContain(first);
    const all = await h.app.inject({
      method: "POST",
      url: "/api/v1/notifications/read-all",
      headers: user.headers,
    });
    expect(all.json()).toEqual({ updated: 1 });
    expect((await notifications(user.headers)).unreadCount).toBe(0);
  });
});

describe("QUOTA_WARNING and TRIAL_ENDING", () => {
  it("warns once a month at 90 % of the plan's quota", async () => {
    const { user, endpoint } = await setup("free");
    const period = new Date(h.clock.now()).toISOString().slice(0, 7);
    await h.db
      .insertInto("usage_counters")
      .values({ user_id: user.userId, period, request_count: 4_498 })
      .execute();
    await sendAndDeliver(endpoint.slug, 1);
    expect(await h.services.monitors.checkQuotas()).toBe(0); // 4,499
    await sendAndDeliver(endpoint.slug, 1);
    expect(await h.services.monitors.checkQuotas()).toBe(1); // 4,500
    await sendAndDeliver(endpoint.slug, 1);
    expect(await h.services.monitors.checkQuotas()).toBe(0);
    const list = await notifications(user.headers);
    expect(list.data.filter((n) => n.type === "QUOTA_WARNING")).toHaveLength(1);
    expect(list.data.find((n) => n.type === "QUOTA_WARNING")!.message).toContain("4,500 of 5,000");
  });

  it("tells a trialing user three days before the trial ends, once", async () => {
    const user = await h.createUser("free");
    const day = 24 * 60 * 60 * 1000;
    await h.db
      .updateTable("users")
      .set({ trial_ends_at: h.clock.now() + 5 * day })
      .where("id", "=", user.userId)
      .execute();
    expect(await h.services.monitors.checkTrials()).toBe(0);
    h.clock.advance(2 * day + 1);
    expect(await h.services.monitors.checkTrials()).toBe(1);
    expect(await h.services.monitors.checkTrials()).toBe(0);
    const [notice] = (await notifications(user.headers)).data;
    expect(notice).toMatchObject({ type: "TRIAL_ENDING" });
    expect(notice!.message).toContain("moves to the Free plan");
  });
});

describe("outbound webhook channel", () => {
  let server: Server;
  let received: { body: string; headers: Record<string, unknown> }[];
  let hang = false;

  beforeEach(async () => {
    received = [];
    hang = false;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ body: Buffer.concat(chunks).toString(), headers: req.headers });
        if (!hang) res.end("ok");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/notify`;

  it("POSTs exactly the documented JSON shape", async () => {
    const { user, endpoint } = await setup();
    const put = await h.app.inject({
      method: "PUT",
      url: "/api/v1/notification-preferences",
      headers: user.headers,
      payload: { webhookEnabled: true, webhookUrl: url(), emailEnabled: false },
    });
    expect(put.json()).toEqual({ emailEnabled: false, webhookEnabled: true, webhookUrl: url() });
    await sendAndDeliver(endpoint.slug, 5);
    expect(received).toHaveLength(1);
    const body = JSON.parse(received[0]!.body);
    expect(Object.keys(body).sort()).toEqual(["endpointSlug", "message", "timestamp", "title", "type"]);
    expect(body).toMatchObject({
      type: "ENDPOINT_DOWN",
      title: "Endpoint down",
      endpointSlug: endpoint.slug,
    });
    expect(body.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(received[0]!.headers["content-type"]).toBe("application/json");
    expect(
      (await h.services.users.outbox(10)).filter((m) => m.subject.includes("Endpoint down")),
    ).toHaveLength(0);
  });

  it("refuses a channel URL that points at a private address", async () => {
    const { user } = await setup();
    for (const webhookUrl of [
      "http://10.0.0.1/hook",
      "http://169.254.169.254/latest",
      "http://[fd00::1]/x",
    ]) {
      const put = await h.app.inject({
        method: "PUT",
        url: "/api/v1/notification-preferences",
        headers: user.headers,
        payload: { webhookUrl },
      });
      expect(put.statusCode, webhookUrl).toBe(400);
      expect(put.json().error.message).toContain("private");
    }
    // A name is not resolved when saved (that would answer what it resolves to); the guard checks it per send.
    const named = await h.app.inject({
      method: "PUT",
      url: "/api/v1/notification-preferences",
      headers: user.headers,
      payload: { webhookUrl: "https://localhost/notify" },
    });
    expect(named.statusCode).toBe(200);
    expect(named.body).not.toMatch(/127\.0\.0\.1|::1/);
  });

  it("gives up on a hanging target after 5 s without delaying deliveries or the caller", async () => {
    hang = true;
    const { user, endpoint } = await setup();
    await h.app.inject({
      method: "PUT",
      url: "/api/v1/notification-preferences",
      headers: user.headers,
      payload: { webhookEnabled: true, webhookUrl: url() },
    });
    const started = Date.now();
    const view = await h.services.notifications.notify({
      userId: user.userId,
      type: "ANOMALY_DETECTED",
      title: "t",
      message: "m",
      endpoint: { id: endpoint.id, slug: endpoint.slug },
    });
    expect(view).not.toBeNull();
    expect(Date.now() - started).toBeLessThan(500);
    // Deliveries go on meanwhile.
    failing = false;
    await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} });
    await h.services.ingest.flush();
    await h.queue.runOnce((job) => h.services.delivery.deliver(job));
    expect(sink.received).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1_500);
    await h.services.notifications.flushChannels();
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(4_900);
    expect(elapsed).toBeLessThan(7_000);
    expect(received).toHaveLength(1);
  }, 15_000);
});
