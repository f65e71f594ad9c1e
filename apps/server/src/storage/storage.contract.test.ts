import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, testMode } from "../test-support/harness.js";

/** What every storage adapter must guarantee, run against SQLite or PostgreSQL depending on the test mode. */
let h: Harness;
beforeEach(async () => {
  h = await createHarness();
});
afterEach(async () => h.close());

const EXPECTED_TABLES = [
  "api_keys",
  "delivery_attempts",
  "endpoints",
  "usage_counters",
  "users",
  "webhook_logs",
];

describe(`Storage contract (${testMode})`, () => {
  it("migrations create the same tables and columns", async () => {
    const tables = await h.db.introspection.getTables();
    // PostgreSQL lists every schema's tables; ours are in the harness's schema.
    const schema = h.deps.storage.schema;
    const ours = tables.filter(
      (table) => EXPECTED_TABLES.includes(table.name) && (!schema || table.schema === schema),
    );
    expect(ours.map((table) => table.name).sort()).toEqual(EXPECTED_TABLES);
    const logs = ours.find((table) => table.name === "webhook_logs")!;
    expect(logs.columns.map((column) => column.name)).toContain("request_body");
    expect(logs.columns).toHaveLength(21);
  });

  it("round-trips bytes exactly and millisecond timestamps as numbers", async () => {
    const user = await h.createUser();
    const bytes = Buffer.from([0, 255, 128, 10, 13, 0xc3, 0x28]);
    const endpoint = await h.createEndpoint(user.headers, { name: "x", targetUrl: "http://127.0.0.1:9/" });
    const ms = Date.UTC(2030, 0, 1, 0, 0, 0, 123);
    await h.db
      .insertInto("webhook_logs")
      .values({
        id: "log_contract",
        user_id: user.userId,
        endpoint_id: endpoint.id,
        method: "POST",
        query: "",
        request_headers: "{}",
        request_body: bytes,
        request_size: bytes.length,
        source: null,
        is_test: 0,
        status: "queued",
        attempt_count: 0,
        max_attempts: 1,
        next_attempt_at: ms,
        response_status: null,
        error_kind: null,
        error_message: null,
        duration_ms: null,
        created_at: ms,
        updated_at: ms,
        completed_at: null,
      })
      .execute();
    const row = await h.db
      .selectFrom("webhook_logs")
      .selectAll()
      .where("id", "=", "log_contract")
      .executeTakeFirstOrThrow();
    expect(Buffer.isBuffer(row.request_body)).toBe(true);
    expect(row.request_body.equals(bytes)).toBe(true);
    expect(row.created_at).toBe(ms);
    expect(typeof row.next_attempt_at).toBe("number");
  });

  it("executeBatch is atomic: a failing statement rolls back the ones before it", async () => {
    const user = await h.createUser();
    const { db } = h;
    const ok = db
      .insertInto("usage_counters")
      .values({ user_id: user.userId, period: "2030-01", request_count: 1 })
      .compile();
    const duplicate = db
      .insertInto("usage_counters")
      .values({ user_id: user.userId, period: "2030-01", request_count: 2 })
      .compile();
    await expect(h.deps.storage.executeBatch([ok, duplicate])).rejects.toThrow();
    expect(
      await db.selectFrom("usage_counters").selectAll().where("period", "=", "2030-01").execute(),
    ).toEqual([]);
    await h.deps.storage.executeBatch([ok]);
    expect(
      await db.selectFrom("usage_counters").select("request_count").where("period", "=", "2030-01").execute(),
    ).toEqual([{ request_count: 1 }]);
  });

  it("an independent batch applies every statement or none", async () => {
    const user = await h.createUser();
    const { db } = h;
    const usage = (period: string, count: number) =>
      db
        .insertInto("usage_counters")
        .values({ user_id: user.userId, period, request_count: count })
        .onConflict((oc) => oc.columns(["user_id", "period"]).doUpdateSet({ request_count: count }))
        .compile();
    const collide = db
      .insertInto("usage_counters")
      .values({ user_id: user.userId, period: "2031-02", request_count: 9 })
      .compile();
    await h.deps.storage.executeBatch([usage("2031-01", 1), usage("2031-02", 2)], { independent: true });
    // The third statement fails (its row exists): the first must not apply either.
    await expect(
      h.deps.storage.executeBatch([usage("2031-01", 5), usage("2031-03", 3), collide], { independent: true }),
    ).rejects.toThrow();
    const rows = await db
      .selectFrom("usage_counters")
      .select(["period", "request_count"])
      .where("user_id", "=", user.userId)
      .orderBy("period")
      .execute();
    expect(rows).toEqual([
      { period: "2031-01", request_count: 1 },
      { period: "2031-02", request_count: 2 },
    ]);
  });

  it("counts come back as numbers", async () => {
    await h.createUser();
    const row = await h.db
      .selectFrom("users")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .executeTakeFirstOrThrow();
    expect(Number(row.n)).toBe(1);
  });
});
