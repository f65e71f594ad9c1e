import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { type Sink, startSink } from "../../test-support/sink.js";

let h: Harness;
let sink: Sink;
afterEach(async () => {
  await h.close();
  await sink.close();
});

describe("logs API", () => {
  it("filters by endpoint, status, source, test flag and time, newest first with a cursor", async () => {
    h = await createHarness();
    sink = await startSink((request) => (request.url.startsWith("/bad") ? { status: 500 } : { status: 204 }));
    const user = await h.createUser("free");
    const good = await h.createEndpoint(user.headers, { name: "good", targetUrl: `${sink.url}/ok` });
    const bad = await h.createEndpoint(user.headers, { name: "bad", targetUrl: `${sink.url}/bad` });

    const t0 = h.clock.now();
    const stripe = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${good.slug}`,
      headers: { "stripe-signature": "t=1,v1=x" },
      payload: {},
    });
    h.clock.advance(1_000);
    const github = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${bad.slug}`,
      headers: { "x-github-event": "push" },
      payload: {},
    });
    h.clock.advance(1_000);
    const test = await h.app.inject({
      method: "POST",
      url: `/api/v1/endpoints/${good.id}/test`,
      headers: user.headers,
    });
    await h.runDeliveries();

    const list = async (query: string) => {
      const response = await h.app.inject({
        method: "GET",
        url: `/api/v1/logs${query}`,
        headers: user.headers,
      });
      expect(response.statusCode, query).toBe(200);
      return response.json().data.map((log: { id: string }) => log.id);
    };
    const [s, g, t] = [stripe.json().id, github.json().id, test.json().id];
    expect(await list("")).toEqual([t, g, s]);
    expect(await list(`?endpointId=${good.id}`)).toEqual([t, s]);
    expect(await list("?status=failed")).toEqual([g]);
    expect(await list("?status=delivered")).toEqual([t, s]);
    expect(await list("?source=github")).toEqual([g]);
    expect(await list("?test=true")).toEqual([t]);
    expect(await list("?test=false")).toEqual([g, s]);
    expect(await list(`?from=${t0 + 500}`)).toEqual([t, g]);
    expect(await list(`?to=${new Date(t0 + 500).toISOString()}`)).toEqual([s]);

    const page1 = (
      await h.app.inject({ method: "GET", url: "/api/v1/logs?limit=2", headers: user.headers })
    ).json();
    expect(page1.data).toHaveLength(2);
    const page2 = (
      await h.app.inject({
        method: "GET",
        url: `/api/v1/logs?limit=2&cursor=${page1.nextCursor}`,
        headers: user.headers,
      })
    ).json();
    expect(page2).toMatchObject({ data: [{ id: s }], nextCursor: null });

    const bad400 = await h.app.inject({
      method: "GET",
      url: "/api/v1/logs?status=lost",
      headers: user.headers,
    });
    expect(bad400.statusCode).toBe(400);
    expect(bad400.json().error.code).toBe("validation_failed");
    // A damaged cursor is refused, not answered with an empty page a client would take for the end.
    const badCursor = await h.app.inject({
      method: "GET",
      url: "/api/v1/logs?cursor=garbage",
      headers: user.headers,
    });
    expect([badCursor.statusCode, badCursor.json().error.code]).toEqual([400, "validation_failed"]);
    expect(badCursor.json().error.message).toMatch(/^cursor: /);

    const detail = (
      await h.app.inject({ method: "GET", url: `/api/v1/logs/${g}`, headers: user.headers })
    ).json();
    expect(detail).toMatchObject({
      status: "failed",
      source: "github",
      responseStatus: 500,
      errorKind: "http_status",
    });
    expect(detail.requestHeaders["x-github-event"]).toBe("push");
    expect(detail.attemptDetails[0].requestHeaders["x-mitte-attempt"]).toBe("1");
  });

  it("stores response bodies up to the limit and marks them truncated", async () => {
    h = await createHarness({ env: { MITTE_MAX_RESPONSE_BYTES: "1024" } });
    sink = await startSink(() => ({ status: 200, body: "y".repeat(5000) }));
    const user = await h.createUser();
    const endpoint = await h.createEndpoint(user.headers, { name: "big", targetUrl: sink.url });
    const { id } = (
      await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: {} })
    ).json();
    await h.runDeliveries();
    const detail = (
      await h.app.inject({ method: "GET", url: `/api/v1/logs/${id}`, headers: user.headers })
    ).json();
    expect(detail.attemptDetails[0].responseBody).toMatchObject({ size: 1024, truncated: true });
  });
});
