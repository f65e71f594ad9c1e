import { DeleteQueryNode, type KyselyPlugin, TableNode } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "../../test-support/harness.js";
import { startSink } from "../../test-support/sink.js";
import { createEndpointService } from "./endpoint.service.js";

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => h.close());

const postEndpoint = (headers: Record<string, string>, targetUrl: string) =>
  h.app.inject({ method: "POST", url: "/api/v1/endpoints", headers, payload: { name: "t", targetUrl } });

describe("endpoints API", () => {
  it("creates, lists, reads, updates, rotates and deletes", async () => {
    const user = await h.createUser("free");
    const created = await h.app.inject({
      method: "POST",
      url: "/api/v1/endpoints",
      headers: user.headers,
      payload: { name: "stripe-prod", targetUrl: "https://example.com/hooks" },
    });
    expect(created.statusCode).toBe(201);
    const endpoint = created.json();
    expect(endpoint).toMatchObject({
      name: "stripe-prod",
      targetUrl: "https://example.com/hooks",
      paused: false,
      signed: true,
    });
    expect(endpoint.slug).toMatch(/^mt_[a-z0-9]{16}$/);
    expect(endpoint.ingestUrl).toBe(`http://localhost:3000/api/v1/h/${endpoint.slug}`);
    expect(endpoint.signingSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);

    // The secret is encrypted at rest.
    const stored = await h.db
      .selectFrom("endpoints")
      .select("signing_secret_sealed")
      .executeTakeFirstOrThrow();
    expect(stored.signing_secret_sealed).not.toContain(endpoint.signingSecret.slice(6));

    const list = await h.app.inject({ method: "GET", url: "/api/v1/endpoints", headers: user.headers });
    expect(list.json().data).toHaveLength(1);
    expect(list.json().data[0].signingSecret).toBeUndefined();

    const patched = await h.app.inject({
      method: "PATCH",
      url: `/api/v1/endpoints/${endpoint.id}`,
      headers: user.headers,
      payload: { name: "renamed", signingSecret: null },
    });
    expect(patched.json()).toMatchObject({ name: "renamed", signed: false, signingSecret: null });

    const rotated = await h.app.inject({
      method: "POST",
      url: `/api/v1/endpoints/${endpoint.id}/rotate-secret`,
      headers: user.headers,
    });
    expect(rotated.json().signingSecret).toMatch(/^whsec_/);
    expect(rotated.json().signingSecret).not.toBe(endpoint.signingSecret);

    const deleted = await h.app.inject({
      method: "DELETE",
      url: `/api/v1/endpoints/${endpoint.id}`,
      headers: user.headers,
    });
    expect(deleted.statusCode).toBe(204);
    const gone = await h.app.inject({
      method: "GET",
      url: `/api/v1/endpoints/${endpoint.id}`,
      headers: user.headers,
    });
    expect(gone.statusCode).toBe(404);
    const ingest = await h.app.inject({ method: "POST", url: `/api/v1/h/${endpoint.slug}`, payload: "{}" });
    expect(ingest.statusCode).toBe(404);
  });

  it("deletes an endpoint's logs and attempts in bounded batches and leaves other endpoints' alone", async () => {
    const sink = await startSink();
    try {
      const user = await h.createUser("pro");
      const doomed = await h.createEndpoint(user.headers, { name: "doomed", targetUrl: sink.url });
      const kept = await h.createEndpoint(user.headers, { name: "kept", targetUrl: sink.url });
      for (const [endpoint, count] of [
        [doomed, 20],
        [kept, 3],
      ] as const) {
        for (let i = 0; i < count; i += 1) {
          const response = await h.app.inject({
            method: "POST",
            url: `/api/v1/h/${endpoint.slug}`,
            payload: {},
          });
          expect(response.statusCode).toBe(202);
        }
      }
      // One run takes at most the endpoint's concurrency (16).
      while ((await h.runDeliveries()) > 0) {}
      const countFor = async (endpointId: string) => {
        const logs = await h.db
          .selectFrom("webhook_logs")
          .select("id")
          .where("endpoint_id", "=", endpointId)
          .execute();
        const attempts = logs.length
          ? await h.db
              .selectFrom("delivery_attempts")
              .select("id")
              .where(
                "log_id",
                "in",
                logs.map((l) => l.id),
              )
              .execute()
          : [];
        return { logs: logs.length, attempts: attempts.length };
      };
      expect(await countFor(doomed.id)).toEqual({ logs: 20, attempts: 20 });

      // Counts the DELETE statements the service runs, by table.
      const deletes: string[] = [];
      const countDeletes: KyselyPlugin = {
        transformQuery({ node }) {
          if (DeleteQueryNode.is(node)) {
            const table = node.from.froms[0];
            deletes.push(table && TableNode.is(table) ? table.table.identifier.name : "?");
          }
          return node;
        },
        transformResult: async ({ result }) => result,
      };
      // 7 a batch: 20 logs take two full batches and a short one, then the endpoint's row goes.
      const endpoints = createEndpointService({
        storage: { ...h.deps.storage, db: h.db.withPlugin(countDeletes) },
        clock: h.clock,
        newId: h.deps.newId,
        secretBox: h.deps.secretBox,
        directory: h.services.directory,
        queue: h.deps.queue,
        publicUrl: "http://localhost:3000",
        logPurgeBatchSize: 7,
      });
      expect(await endpoints.remove(user.userId, doomed.id)).toBe(true);
      expect(deletes).toEqual(["webhook_logs", "webhook_logs", "webhook_logs", "endpoints"]);
      expect(await countFor(doomed.id)).toEqual({ logs: 0, attempts: 0 });
      expect(await countFor(kept.id)).toEqual({ logs: 3, attempts: 3 });
      const gone = await h.app.inject({
        method: "GET",
        url: `/api/v1/endpoints/${doomed.id}`,
        headers: user.headers,
      });
      expect(gone.statusCode).toBe(404);
    } finally {
      await sink.close();
    }
  });

  it("validates input with clear 400s", async () => {
    const user = await h.createUser();
    const cases: [unknown, string][] = [
      [{ name: "x", targetUrl: "ftp://example.com" }, "targetUrl"],
      [{ name: "x", targetUrl: "https://user:pw@example.com" }, "targetUrl"],
      [{ name: "", targetUrl: "https://example.com" }, "name"],
      [{ name: "x", targetUrl: "https://example.com", signingSecret: "short" }, "signingSecret"],
      [{ name: "x", targetUrl: "https://example.com", extra: 1 }, ""],
    ];
    for (const [payload, path] of cases) {
      const response = await h.app.inject({
        method: "POST",
        url: "/api/v1/endpoints",
        headers: user.headers,
        payload: payload as object,
      });
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      expect(response.json().error.code).toBe("validation_failed");
      expect(response.json().error.message).toContain(path);
    }
    const invalidJson = await h.app.inject({
      method: "POST",
      url: "/api/v1/endpoints",
      headers: { ...user.headers, "content-type": "application/json" },
      payload: "{name:",
    });
    expect(invalidJson.statusCode).toBe(400);
    expect(invalidJson.json()).toEqual({
      error: { code: "invalid_json", message: "The request body is not valid JSON." },
    });
    // Not JSON, whatever the text inside: text/plain is refused like XML or a form.
    for (const contentType of ["text/plain", "text/plain; charset=utf-8", "application/xml"]) {
      const notJson = await h.app.inject({
        method: "POST",
        url: "/api/v1/endpoints",
        headers: { ...user.headers, "content-type": contentType },
        payload: JSON.stringify({ name: "t", targetUrl: "https://example.com/" }),
      });
      expect(notJson.statusCode, contentType).toBe(415);
      expect(notJson.json().error.code).toBe("unsupported_media_type");
    }
    const emptyPatch = await h.app.inject({
      method: "PATCH",
      url: "/api/v1/endpoints/ep_x",
      headers: user.headers,
      payload: {},
    });
    expect(emptyPatch.statusCode).toBe(400);
  });

  it("refuses a test payload nested too deeply to serialize with 400, not 500", async () => {
    const user = await h.createUser();
    const endpoint = await h.createEndpoint(user.headers, { name: "t", targetUrl: "https://example.com/" });
    const deep = `{"payload":${"[".repeat(100_000)}${"]".repeat(100_000)}}`;
    const response = await h.app.inject({
      method: "POST",
      url: `/api/v1/endpoints/${endpoint.id}/test`,
      headers: { ...user.headers, "content-type": "application/json" },
      payload: deep,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().error).toEqual({
      code: "validation_failed",
      message: "payload: nested too deeply to send.",
    });
  });

  it("answers a URL that does not decode with 400 in the error shape, without echoing it", async () => {
    const response = await h.app.inject({
      method: "GET",
      url: "/api/v1/auth/verify-email%E0?token=SECRETTOKEN123",
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({
      error: { code: "bad_request", message: "The request URL is malformed (FST_ERR_BAD_URL)." },
    });
    expect(response.body).not.toContain("SECRETTOKEN123");
  });

  it("answers 405 with Allow for a method a known URL does not have, and 404 for an unknown URL", async () => {
    const user = await h.createUser();
    const wrong = await h.app.inject({ method: "PUT", url: "/api/v1/endpoints/ep_x", headers: user.headers });
    expect([wrong.statusCode, wrong.json().error.code]).toEqual([405, "method_not_allowed"]);
    expect(wrong.headers.allow).toBe("GET, HEAD, PATCH, DELETE");
    const testWithGet = await h.app.inject({ method: "GET", url: "/api/v1/endpoints/ep_x/test" });
    expect([testWithGet.statusCode, testWithGet.headers.allow]).toEqual([405, "POST"]);
    const unknown = await h.app.inject({ method: "GET", url: "/api/v1/nothing-here", headers: user.headers });
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([404, "not_found"]);
  });

  it("enforces the plan's endpoint limit (Free: 3)", async () => {
    const user = await h.createUser("free");
    for (let i = 0; i < 3; i++)
      await h.createEndpoint(user.headers, { name: `e${i}`, targetUrl: "https://example.com" });
    const fourth = await h.app.inject({
      method: "POST",
      url: "/api/v1/endpoints",
      headers: user.headers,
      payload: { name: "e4", targetUrl: "https://example.com" },
    });
    expect(fourth.statusCode).toBe(403);
    expect(fourth.json().error.code).toBe("plan_limit_reached");
  });

  it("holds the plan's endpoint limit under concurrent creates", async () => {
    const user = await h.createUser("free");
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        h.app.inject({
          method: "POST",
          url: "/api/v1/endpoints",
          headers: user.headers,
          payload: { name: `race${i}`, targetUrl: "https://example.com" },
        }),
      ),
    );
    const statuses = answers.map((answer) => answer.statusCode).sort();
    expect(statuses).toEqual([...Array(3).fill(201), ...Array(9).fill(403)]);
    const listed = await h.app.inject({ method: "GET", url: "/api/v1/endpoints", headers: user.headers });
    expect(listed.json().data).toHaveLength(3);
  });

  it("refuses a target that is a blocked IP literal, in any spelling, when it is saved", async () => {
    await h.close();
    h = await createHarness({ env: { MITTE_ALLOW_PRIVATE_TARGETS: "" } });
    const user = await h.createUser("pro");
    const create = (targetUrl: string) => postEndpoint(user.headers, targetUrl);
    for (const targetUrl of [
      "http://127.0.0.1:4000/",
      "http://2130706433/",
      "http://0x7f000001/",
      "http://[::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://10.0.0.1/",
      "http://169.254.169.254/latest/meta-data/",
      "http://[fd00::1]/",
      "http://[64:ff9b::a9fe:a9fe]/",
    ]) {
      const refused = await create(targetUrl);
      expect(refused.statusCode, targetUrl).toBe(400);
      expect(refused.json().error.code).toBe("validation_failed");
      expect(refused.json().error.message).toMatch(/^targetUrl: /);
    }
    // Names are resolved and checked at delivery, where what they point at is known.
    const named = await create("https://hooks.example.com/in");
    expect(named.statusCode).toBe(201);
    const moved = await h.app.inject({
      method: "PATCH",
      url: `/api/v1/endpoints/${named.json().id}`,
      headers: user.headers,
      payload: { targetUrl: "http://192.168.1.10/" },
    });
    expect([moved.statusCode, moved.json().error.code]).toEqual([400, "validation_failed"]);
  });

  it("admits allow-listed private targets but never the metadata address", async () => {
    const user = await h.createUser("pro");
    const create = (targetUrl: string) => postEndpoint(user.headers, targetUrl);
    expect((await create("http://127.0.0.1:4000/")).statusCode).toBe(201);
    expect((await create("http://169.254.169.254/")).statusCode).toBe(400);
  });

  it("keeps both of two concurrent changes: a rotated secret is not undone by a rename", async () => {
    const user = await h.createUser("pro");
    const endpoint = await h.createEndpoint(user.headers, { name: "e", targetUrl: "https://example.com" });
    for (let round = 0; round < 10; round++) {
      const [rotated, renamed] = await Promise.all([
        h.app.inject({
          method: "POST",
          url: `/api/v1/endpoints/${endpoint.id}/rotate-secret`,
          headers: user.headers,
        }),
        h.app.inject({
          method: "PATCH",
          url: `/api/v1/endpoints/${endpoint.id}`,
          headers: user.headers,
          payload: { name: `renamed-${round}` },
        }),
      ]);
      expect([rotated.statusCode, renamed.statusCode]).toEqual([200, 200]);
      const stored = (
        await h.app.inject({ method: "GET", url: `/api/v1/endpoints/${endpoint.id}`, headers: user.headers })
      ).json();
      expect(stored.signingSecret, `round ${round}`).toBe(rotated.json().signingSecret);
      expect(stored.name).toBe(`renamed-${round}`);
    }
  });

  it("paginates newest first with a cursor", async () => {
    const user = await h.createUser("pro");
    for (let i = 0; i < 5; i++)
      await h.createEndpoint(user.headers, { name: `e${i}`, targetUrl: "https://example.com" });
    const first = (
      await h.app.inject({ method: "GET", url: "/api/v1/endpoints?limit=2", headers: user.headers })
    ).json();
    expect(first.data.map((e: { name: string }) => e.name)).toEqual(["e4", "e3"]);
    const second = (
      await h.app.inject({
        method: "GET",
        url: `/api/v1/endpoints?limit=2&cursor=${first.nextCursor}`,
        headers: user.headers,
      })
    ).json();
    expect(second.data.map((e: { name: string }) => e.name)).toEqual(["e2", "e1"]);
    const third = (
      await h.app.inject({
        method: "GET",
        url: `/api/v1/endpoints?limit=2&cursor=${second.nextCursor}`,
        headers: user.headers,
      })
    ).json();
    expect(third).toMatchObject({ data: [{ name: "e0" }], nextCursor: null });
  });
});
