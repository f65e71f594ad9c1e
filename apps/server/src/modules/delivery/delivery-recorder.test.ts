import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, testMode } from "../../test-support/harness.js";
import { type AttemptRecord, createDeliveryRecorder, type DeliveryEvent } from "./delivery-recorder.js";

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => h.close());

async function ingest(count: number, user?: Awaited<ReturnType<Harness["createUser"]>>): Promise<string[]> {
  user ??= await h.createUser("pro");
  const endpoint = await h.createEndpoint(user.headers, { name: "e", targetUrl: "http://127.0.0.1:9/" });
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const response = await h.app.inject({
      method: "POST",
      url: `/api/v1/h/${endpoint.slug}`,
      payload: { i },
    });
    ids.push(response.json().id);
  }
  return ids;
}

function attempt(logId: string, n: number, status: number): AttemptRecord {
  return {
    id: `att_${logId}_${n}`,
    log_id: logId,
    attempt: n,
    started_at: 1_000,
    duration_ms: 5,
    target_url: "http://127.0.0.1:9/",
    request_headers: "{}",
    outcome: status < 400 ? "success" : "failure",
    response_status: status,
    response_headers: "{}",
    response_body: Buffer.from("ok"),
    response_truncated: 0,
    error_kind: status < 400 ? null : "http_status",
    error_message: null,
  };
}

async function rows(ids: string[]) {
  const found = await h.db
    .selectFrom("webhook_logs")
    .select(["id", "status", "attempt_count", "updated_at", "next_attempt_at"])
    .where("id", "in", ids)
    .execute();
  return Object.fromEntries(found.map(({ id, ...rest }) => [id, rest]));
}

describe(`delivery recorder (${testMode})`, () => {
  it("a batch of starts and finishes leaves each log as applying the events in order would", async () => {
    const [a, b, c] = await ingest(3);
    const recorder = createDeliveryRecorder(h.deps.storage);
    const events: DeliveryEvent[] = [
      { kind: "started", logId: a!, atMs: 2_000 },
      { kind: "started", logId: b!, atMs: 2_001 },
      {
        kind: "finished",
        attempt: attempt(a!, 1, 200),
        status: "delivered",
        nextAttemptAt: null,
        atMs: 2_010,
      },
      { kind: "started", logId: c!, atMs: 2_002 },
      {
        kind: "finished",
        attempt: attempt(b!, 1, 500),
        status: "retrying",
        nextAttemptAt: 9_000,
        atMs: 2_011,
      },
    ];
    await Promise.all(events.map((event) => recorder.submit(event)));
    expect(await rows([a!, b!, c!])).toEqual({
      [a!]: { status: "delivered", attempt_count: 1, updated_at: 2_010, next_attempt_at: null },
      [b!]: { status: "retrying", attempt_count: 1, updated_at: 2_011, next_attempt_at: 9_000 },
      [c!]: expect.objectContaining({ status: "delivering", attempt_count: 0, updated_at: 2_002 }),
    });
    const attempts = await h.db.selectFrom("delivery_attempts").select("log_id").execute();
    expect(attempts.map((row) => row.log_id).sort()).toEqual([a!, b!].sort());
  });

  it("a log that starts again after finishing in the same batch ends up started (ordered form)", async () => {
    const [a] = await ingest(1);
    const recorder = createDeliveryRecorder(h.deps.storage);
    await Promise.all([
      recorder.submit({ kind: "started", logId: a!, atMs: 2_000 }),
      recorder.submit({
        kind: "finished",
        attempt: attempt(a!, 1, 500),
        status: "retrying",
        nextAttemptAt: 2_005,
        atMs: 2_001,
      }),
      recorder.submit({ kind: "started", logId: a!, atMs: 2_005 }),
    ]);
    expect(await rows([a!])).toEqual({
      [a!]: { status: "delivering", attempt_count: 1, updated_at: 2_005, next_attempt_at: 2_005 },
    });
  });

  it("records the rest of a batch when one log was deleted meanwhile (endpoint removed mid-delivery)", async () => {
    const user = await h.createUser("pro");
    const [gone] = await ingest(1, user);
    const [kept] = await ingest(1, user);
    const { endpoint_id } = await h.db
      .selectFrom("webhook_logs")
      .select("endpoint_id")
      .where("id", "=", gone!)
      .executeTakeFirstOrThrow();
    const removed = await h.app.inject({
      method: "DELETE",
      url: `/api/v1/endpoints/${endpoint_id}`,
      headers: user.headers,
    });
    expect(removed.statusCode).toBe(204);
    const recorder = createDeliveryRecorder(h.deps.storage);
    const finish = (logId: string) =>
      recorder.submit({
        kind: "finished",
        attempt: attempt(logId, 1, 200),
        status: "delivered",
        nextAttemptAt: null,
        atMs: 3_000,
      });
    // One batch: the attempt row of the deleted log would break its foreign key.
    await Promise.all([finish(gone!), finish(kept!)]);
    expect(await rows([gone!, kept!])).toEqual({
      [kept!]: { status: "delivered", attempt_count: 1, updated_at: 3_000, next_attempt_at: null },
    });
    const attempts = await h.db.selectFrom("delivery_attempts").select("log_id").execute();
    expect(attempts.map((row) => row.log_id)).toEqual([kept!]);
  });
});
