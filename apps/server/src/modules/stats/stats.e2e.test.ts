import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type Sink, startSink } from "../../test-support/sink.js";
import { emptyHistogram } from "./latency-histogram.js";
import type { StatsBucket } from "./stats-store.js";

let h: Harness;
let sink: Sink;
beforeEach(async () => {
  h = await createHarness();
  sink = await startSink((request) => (request.url.includes("fail") ? { status: 500 } : { status: 200 }));
});
afterEach(async () => {
  await h.close();
  await sink.close();
});

const HOUR = 3_600_000;

function hourBucket(
  endpointId: string,
  userId: string,
  bucketStart: number,
  requests: number,
  failures: number,
): StatsBucket {
  const latency = emptyHistogram();
  latency[2] = requests;
  return {
    endpointId,
    userId,
    granularity: "hour",
    bucketStart,
    requests,
    successes: requests - failures,
    failures,
    latencySumMs: 40 * requests,
    latency,
  };
}

describe("delivery statistics", () => {
  it("counts every attempt per endpoint and hour, with latency avg and p95", async () => {
    const user = await h.createUser("free");
    const ok = await h.createEndpoint(user.headers, { name: "ok", targetUrl: `${sink.url}/ok` });
    const bad = await h.createEndpoint(user.headers, { name: "bad", targetUrl: `${sink.url}/fail` });
    for (let i = 0; i < 3; i++)
      await h.app.inject({ method: "POST", url: `/api/v1/h/${ok.slug}`, payload: { i } });
    for (let i = 0; i < 2; i++)
      await h.app.inject({ method: "POST", url: `/api/v1/h/${bad.slug}`, payload: { i } });
    await h.runDeliveries();

    const okStats = (
      await h.app.inject({ method: "GET", url: `/api/v1/endpoints/${ok.id}/stats`, headers: user.headers })
    ).json();
    expect(okStats.hourly).toHaveLength(1);
    expect(okStats.hourly[0]).toMatchObject({ requests: 3, successes: 3, failures: 0, failureRate: 0 });
    expect(okStats.hourly[0].avgLatencyMs).toBeGreaterThanOrEqual(0);
    expect(okStats.hourly[0].p95LatencyMs).toBeGreaterThan(0);
    const badStats = (
      await h.app.inject({ method: "GET", url: `/api/v1/endpoints/${bad.id}/stats`, headers: user.headers })
    ).json();
    expect(badStats.totals).toMatchObject({ requests: 2, failures: 2, failureRate: 1 });

    const mine = (await h.app.inject({ method: "GET", url: "/api/v1/stats", headers: user.headers })).json();
    expect(mine).toMatchObject({ endpoints: 2, last24h: { requests: 5, successes: 3, failures: 2 } });
    expect(mine.daily).toHaveLength(1);

    const other = await h.createUser("free");
    expect(
      (await h.app.inject({ method: "GET", url: `/api/v1/endpoints/${ok.id}/stats`, headers: other.headers }))
        .statusCode,
    ).toBe(404);
    expect(
      (await h.app.inject({ method: "GET", url: "/api/v1/stats", headers: other.headers })).json().last24h,
    ).toBeNull();
  });
});

describe("delivery statistics and deleted endpoints", () => {
  it("keeps the other endpoints' counts when an endpoint is deleted before its stats are written", async () => {
    const user = await h.createUser("pro");
    const kept = await h.createEndpoint(user.headers, { name: "kept", targetUrl: `${sink.url}/ok` });
    const doomed = await h.createEndpoint(user.headers, { name: "doomed", targetUrl: `${sink.url}/ok` });
    const outcome = (endpointId: string) => ({
      logId: `log_${endpointId}`,
      userId: user.userId,
      endpointId,
      attempt: 1,
      status: "delivered" as const,
      success: true,
      responseStatus: 200,
      errorKind: null,
      durationMs: 12,
      isTest: false,
      atMs: h.clock.now(),
    });
    h.services.stats.record(outcome(kept.id));
    h.services.stats.record(outcome(doomed.id));
    const deleted = await h.app.inject({
      method: "DELETE",
      url: `/api/v1/endpoints/${doomed.id}`,
      headers: user.headers,
    });
    expect(deleted.statusCode).toBe(204);
    await h.services.stats.flush();
    const stats = (
      await h.app.inject({ method: "GET", url: `/api/v1/endpoints/${kept.id}/stats`, headers: user.headers })
    ).json();
    expect(stats.totals).toMatchObject({ requests: 1, successes: 1 });
  });
});

describe("anomaly detection job", () => {
  it("fires once on a spike over 48 hours of history, not again 10 minutes later, never with 5 hours of history", async () => {
    const user = await h.createUser("pro");
    const steady = await h.createEndpoint(user.headers, { name: "stripe-prod", targetUrl: sink.url });
    const young = await h.createEndpoint(user.headers, { name: "young", targetUrl: sink.url });
    const now = h.clock.now();
    const currentHour = now - (now % HOUR);
    const buckets: StatsBucket[] = [];
    for (let hour = 1; hour <= 48; hour++)
      buckets.push(
        hourBucket(steady.id, user.userId, currentHour - hour * HOUR, 100, hour % 2 === 0 ? 4 : 6),
      );
    for (let hour = 1; hour <= 5; hour++)
      buckets.push(hourBucket(young.id, user.userId, currentHour - hour * HOUR, 100, 0));
    buckets.push(hourBucket(steady.id, user.userId, currentHour, 40, 34));
    buckets.push(hourBucket(young.id, user.userId, currentHour, 40, 40));
    await h.deps.statsStore.add(buckets);

    expect(await h.services.stats.detectAnomalies()).toBe(1);
    const list = (
      await h.app.inject({ method: "GET", url: "/api/v1/notifications", headers: user.headers })
    ).json();
    expect(list.data).toHaveLength(1);
    expect(list.data[0]).toMatchObject({
      type: "ANOMALY_DETECTED",
      endpointSlug: steady.slug,
      title: "Failure rate spike detected",
    });
    expect(list.data[0].message).toMatch(
      /^Endpoint 'stripe-prod' failure rate spiked to 85% \(z-score: \d+\.\d\)$/,
    );

    h.clock.advance(10 * 60_000);
    expect(await h.services.stats.detectAnomalies()).toBe(0);
  });
});
