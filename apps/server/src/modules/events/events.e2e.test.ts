import type { AddressInfo } from "node:net";
import { request } from "undici";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type Sink, startSink } from "../../test-support/sink.js";

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  atMs: number;
}

/** A real streaming HTTP client that parses Server-Sent Events as they arrive. */
async function connect(url: string, headers: Record<string, string>) {
  const events: SseEvent[] = [];
  const controller = new AbortController();
  const response = await request(url, { headers, signal: controller.signal });
  let buffer = "";
  response.body.setEncoding("utf8");
  response.body.on("data", (chunk: string) => {
    buffer += chunk;
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event: SseEvent = { atMs: Date.now() };
      for (const line of block.split("\n")) {
        const [field, ...rest] = line.split(": ");
        if (field === "id" || field === "event" || field === "data") event[field] = rest.join(": ");
      }
      if (event.event) events.push(event);
      end = buffer.indexOf("\n\n");
    }
  });
  response.body.on("error", () => {});
  return {
    status: response.statusCode,
    contentType: response.headers["content-type"],
    events,
    close: () => controller.abort(),
  };
}

let h: Harness;
let sink: Sink;
let base: string;

beforeEach(async () => {
  h = await createHarness();
  sink = await startSink();
  await h.app.listen({ port: 0, host: "127.0.0.1" });
  base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
});
afterEach(async () => {
  await h.close();
  await sink.close();
});

async function waitFor(check: () => boolean, timeoutMs = 2_000) {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe("GET /api/v1/events (Server-Sent Events)", () => {
  it("streams a user's own deliveries within 1 s, never another user's, and replays after Last-Event-ID", async () => {
    const a = await h.createUser();
    const b = await h.createUser();
    const endpointA = await h.createEndpoint(a.headers, { name: "a", targetUrl: sink.url });
    const endpointB = await h.createEndpoint(b.headers, { name: "b", targetUrl: sink.url });
    const streamA = await connect(`${base}/api/v1/events`, a.headers);
    const streamB = await connect(`${base}/api/v1/events`, b.headers);
    expect(streamA.status).toBe(200);
    expect(streamA.contentType).toContain("text/event-stream");

    const sent = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${endpointA.slug}`,
      payload: { n: 1 },
    });
    await h.runDeliveries();
    const deliveredAt = sink.received.at(-1)!.atMs;
    await waitFor(() => streamA.events.length > 0);
    expect(streamA.events).toHaveLength(1);
    const [event] = streamA.events;
    expect(event!.event).toBe("webhook:delivered");
    expect(JSON.parse(event!.data!)).toMatchObject({
      logId: sent.json().id,
      endpointId: endpointA.id,
      status: "delivered",
      attempt: 1,
      success: true,
    });
    expect(event!.atMs - deliveredAt).toBeLessThan(1_000);

    // B's own delivery reaches B only.
    await h.app.inject({ method: "POST", url: `/api/v1/h/${endpointB.slug}`, payload: {} });
    await h.runDeliveries();
    await waitFor(() => streamB.events.length > 0);
    expect(streamB.events).toHaveLength(1);
    expect(streamA.events).toHaveLength(1);
    expect(JSON.stringify(streamB.events)).not.toContain(endpointA.id);

    // A disconnects, misses two events, reconnects with Last-Event-ID and gets exactly those.
    streamA.close();
    await h.app.inject({ method: "POST", url: `/api/v1/h/${endpointA.slug}`, payload: { n: 2 } });
    await h.app.inject({ method: "POST", url: `/api/v1/h/${endpointA.slug}`, payload: { n: 3 } });
    await h.runDeliveries();
    const resumed = await connect(`${base}/api/v1/events`, { ...a.headers, "last-event-id": event!.id! });
    await waitFor(() => resumed.events.length >= 2);
    expect(resumed.events).toHaveLength(2);
    expect(resumed.events.every((e) => e.event === "webhook:delivered" && e.id! > event!.id!)).toBe(true);
    streamB.close();
    resumed.close();
  });

  it("pushes notifications as notification:created and refuses anonymous clients", async () => {
    const a = await h.createUser();
    const stream = await connect(`${base}/api/v1/events`, a.headers);
    await h.services.notifications.notify({
      userId: a.userId,
      type: "TRIAL_ENDING",
      title: "t",
      message: "m",
    });
    await waitFor(() => stream.events.length > 0);
    expect(stream.events[0]).toMatchObject({ event: "notification:created" });
    expect(JSON.parse(stream.events[0]!.data!)).toMatchObject({ type: "TRIAL_ENDING", read: false });
    stream.close();
    const anonymous = await request(`${base}/api/v1/events`);
    expect(anonymous.statusCode).toBe(401);
    await anonymous.body.dump();
  });
});
