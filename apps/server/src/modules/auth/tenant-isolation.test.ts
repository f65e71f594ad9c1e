import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";

/**
 * One check for every authenticated route: 401 without credentials, 404 (never 403, never data) for
 * another user's resource ids, 400 for a malformed body. Routes are enumerated from the app itself,
 * so a new authenticated route without coverage here fails the suite.
 */
let h: Harness;
let owner: Awaited<ReturnType<Harness["createUser"]>>;
let intruder: Awaited<ReturnType<Harness["createUser"]>>;
const ids: Record<string, string> = {};

beforeAll(async () => {
  h = await createHarness();
  owner = await h.createUser("pro");
  intruder = await h.createUser("pro");
  const endpoint = await h.createEndpoint(owner.headers, { name: "owned", targetUrl: "http://127.0.0.1:9/" });
  const log = await h.app.inject({
    method: "POST",
    url: `/api/v1/h/${endpoint.slug}`,
    payload: { secret: "owner-data" },
  });
  await h.services.ingest.flush();
  const key = await h.app.inject({
    method: "POST",
    url: "/api/v1/api-keys",
    headers: owner.headers,
    payload: { name: "second" },
  });
  const notification = await h.services.notifications.notify({
    userId: owner.userId,
    type: "ENDPOINT_DOWN",
    title: "owner-data",
    message: "owner-data",
  });
  ids.notification = notification!.id;
  ids.endpoint = endpoint.id;
  ids.log = log.json().id;
  ids.apiKey = key.json().id;
});
afterAll(async () => h.close());

/** Which owned object an `:id` route addresses. */
function resourceFor(url: string): string | null {
  if (!url.includes(":id")) return null;
  if (url.startsWith("/api/v1/endpoints")) return ids.endpoint!;
  if (url.startsWith("/api/v1/logs")) return ids.log!;
  if (url.startsWith("/api/v1/api-keys")) return ids.apiKey!;
  if (url.startsWith("/api/v1/notifications")) return ids.notification!;
  throw new Error(`no owned resource known for ${url}: add it to the isolation suite`);
}

/** Routes that read a JSON body, with a body that must be refused. */
const malformedBodies: Record<string, unknown> = {
  "POST /api/v1/endpoints": { name: 42 },
  "PATCH /api/v1/endpoints/:id": { targetUrl: "not a url" },
  "POST /api/v1/endpoints/:id/test": { unexpected: true },
  "POST /api/v1/api-keys": { name: "" },
  "PATCH /api/v1/me": { name: 5 },
  "PUT /api/v1/notification-preferences": { webhookUrl: "ftp://x" },
};

describe("tenant isolation on every authenticated route", () => {
  it("covers every registered authenticated route", async () => {
    const routes = h.app.authenticatedRoutes.filter((route) => route.method !== "HEAD");
    let covered = 0;
    for (const route of routes) {
      const id = resourceFor(route.url);
      const url = route.url.replace(":id", id ?? "x");
      const method = route.method as "GET";

      const anonymous = await h.app.inject({ method, url });
      expect(anonymous.statusCode, `${route.method} ${route.url} without credentials`).toBe(401);
      expect(anonymous.json().error.code).toBe("unauthorized");
      const badKey = await h.app.inject({
        method,
        url,
        headers: { authorization: `Bearer mk_${"x".repeat(49)}` },
      });
      expect(badKey.statusCode).toBe(401);

      if (id) {
        const stolen = await h.app.inject({ method, url, headers: intruder.headers, payload: {} });
        expect([404, 400], `${route.method} ${route.url} as another user`).toContain(stolen.statusCode);
        if (stolen.statusCode === 400) {
          // A body check ran first; with a valid body it must still be a 404.
          const valid = route.method === "PATCH" ? { name: "stolen" } : undefined;
          const retry = await h.app.inject({
            method,
            url,
            headers: intruder.headers,
            ...(valid ? { payload: valid } : {}),
          });
          expect(retry.statusCode, `${route.method} ${route.url} as another user`).toBe(404);
        }
        expect(
          JSON.stringify((await h.app.inject({ method, url, headers: intruder.headers })).json()),
        ).not.toContain("owner-data");
      }

      const key = `${route.method} ${route.url}`;
      if (key in malformedBodies) {
        const bad = await h.app.inject({
          method,
          url,
          headers: owner.headers,
          payload: malformedBodies[key] as object,
        });
        expect(bad.statusCode, `${key} with a malformed body`).toBe(400);
        expect(bad.json().error.code).toMatch(/validation_failed|invalid_json/);
      }
      covered++;
    }
    console.log(`tenant isolation: ${covered} of ${routes.length} authenticated routes covered`);
    expect(covered).toBe(routes.length);
    expect(routes.length).toBeGreaterThanOrEqual(11);

    // The owner's objects survived every attempt.
    expect(
      (
        await h.app.inject({
          method: "GET",
          url: `/api/v1/endpoints/${ids.endpoint}`,
          headers: owner.headers,
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (await h.app.inject({ method: "GET", url: `/api/v1/logs/${ids.log}`, headers: owner.headers }))
        .statusCode,
    ).toBe(200);
  });

  it("lists never include another user's objects", async () => {
    for (const url of [
      "/api/v1/endpoints",
      "/api/v1/logs",
      "/api/v1/api-keys",
      `/api/v1/logs?endpointId=${ids.endpoint}`,
    ]) {
      const response = await h.app.inject({ method: "GET", url, headers: intruder.headers });
      expect(response.statusCode).toBe(200);
      const ownIds = response.json().data.map((item: { id: string }) => item.id);
      expect(ownIds).not.toContain(ids.endpoint);
      expect(ownIds).not.toContain(ids.log);
      expect(ownIds).not.toContain(ids.apiKey);
      expect(ownIds).not.toContain(ids.notification);
    }
  });
});
