import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";
import { describe, expect, it } from "vitest";
import { ATTEMPT_COLUMNS, type AttemptRecord } from "../modules/delivery/delivery-recorder.js";
import { LOG_COLUMNS } from "../modules/ingest/ingest.service.js";
import {
  InsertTemplate,
  paddedInLists,
  padToPowerOfTwo,
  powerOfTwoChunks,
  QueryTemplate,
} from "./query-template.js";
import type { Database, NewWebhookLog } from "./schema.js";

function compilerOnly(dialect: "sqlite" | "postgres"): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => (dialect === "sqlite" ? new SqliteAdapter() : new PostgresAdapter()),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) =>
        dialect === "sqlite" ? new SqliteIntrospector(db) : new PostgresIntrospector(db),
      createQueryCompiler: () =>
        dialect === "sqlite" ? new SqliteQueryCompiler() : new PostgresQueryCompiler(),
    },
  });
}

function logRow(n: number, overrides: Partial<NewWebhookLog> = {}): NewWebhookLog {
  return {
    id: `log_${n}`,
    user_id: "usr_1",
    endpoint_id: "ep_1",
    method: "POST",
    query: n % 2 ? "?a=1" : "",
    request_headers: JSON.stringify({ n }),
    request_body: Buffer.from(`body ${n}`),
    request_size: 6,
    source: n % 3 ? "stripe" : null,
    is_test: n % 2,
    status: "queued",
    attempt_count: 0,
    max_attempts: 5,
    next_attempt_at: 1_000 + n,
    response_status: null,
    error_kind: null,
    error_message: null,
    duration_ms: null,
    created_at: 1_000 + n,
    updated_at: 1_000 + n,
    completed_at: null,
    ...overrides,
  };
}

function attemptRow(n: number): AttemptRecord {
  return {
    id: `att_${n}`,
    log_id: `log_${n}`,
    attempt: 1,
    started_at: 2_000 + n,
    duration_ms: n,
    target_url: "http://127.0.0.1/x",
    request_headers: "{}",
    outcome: n % 2 ? "success" : "failure",
    response_status: n % 2 ? 200 : null,
    response_headers: n % 2 ? "{}" : null,
    response_body: n % 2 ? Buffer.from("ok") : null,
    response_truncated: 0,
    error_kind: n % 2 ? null : "timeout",
    error_message: null,
  };
}

describe("statement shapes", () => {
  it("splits a batch into power-of-two chunks, largest first", () => {
    expect(powerOfTwoChunks(0, 128)).toEqual([]);
    expect(powerOfTwoChunks(25, 128)).toEqual([16, 8, 1]);
    expect(powerOfTwoChunks(128, 128)).toEqual([128]);
    expect(powerOfTwoChunks(300, 128)).toEqual([128, 128, 32, 8, 4]);
  });

  it("pads an in-list to a power-of-two length with its last value", () => {
    expect(padToPowerOfTwo([])).toEqual([]);
    expect(padToPowerOfTwo(["a"])).toEqual(["a"]);
    expect(padToPowerOfTwo(["a", "b", "c"])).toEqual(["a", "b", "c", "c"]);
    expect(padToPowerOfTwo(["a", "b", "c", "d"])).toEqual(["a", "b", "c", "d"]);
  });

  it("cuts a long in-list into padded lists of at most the maximum", () => {
    expect(paddedInLists([], 4)).toEqual([]);
    expect(paddedInLists(["a", "b", "c", "d", "e", "f"], 4)).toEqual([
      ["a", "b", "c", "d"],
      ["e", "f"],
    ]);
    expect(paddedInLists(["a", "b", "c", "d", "e"], 4)).toEqual([["a", "b", "c", "d"], ["e"]]);
    expect(paddedInLists(["a", "b", "c", "d", "e", "f", "g"], 4)).toEqual([
      ["a", "b", "c", "d"],
      ["e", "f", "g", "g"],
    ]);
  });
});

describe.each(["sqlite", "postgres"] as const)("QueryTemplate (%s)", (dialect) => {
  const db = compilerOnly(dialect);

  it("reuses the SQL of each power-of-two chunk and gives what Kysely would compile", () => {
    const template = new InsertTemplate<NewWebhookLog>(
      (rows) => db.insertInto("webhook_logs").values(rows),
      LOG_COLUMNS,
      4,
    );
    template.compile([1, 2, 3, 4, 5, 6, 7].map((n) => logRow(n)));
    const batch = [8, 9, 10, 11, 12, 13, 14].map((n) => logRow(n, { is_test: 1, source: null }));
    const reused = template.compile(batch);
    const expected = [batch.slice(0, 4), batch.slice(4, 6), batch.slice(6)].map((rows) =>
      db.insertInto("webhook_logs").values(rows).compile(),
    );
    expect(reused.map((q) => [q.sql, q.parameters])).toEqual(expected.map((q) => [q.sql, q.parameters]));
    expect(template.reusedShapes).toBe(3);
  });

  it("covers every attempt column", () => {
    const template = new InsertTemplate<AttemptRecord>(
      (rows) => db.insertInto("delivery_attempts").values(rows),
      ATTEMPT_COLUMNS,
      200,
    );
    template.compile([attemptRow(1), attemptRow(2)]);
    const batch = [attemptRow(3), attemptRow(4)];
    const [reused] = template.compile(batch);
    const expected = db.insertInto("delivery_attempts").values(batch).compile();
    expect([reused?.sql, reused?.parameters]).toEqual([expected.sql, expected.parameters]);
    expect(template.reusedShapes).toBe(1);
  });

  it("falls back to Kysely for a shape whose parameters it would misorder", () => {
    const template = new QueryTemplate<{ id: string; at: number }>({
      build: ({ id, at }) => db.updateTable("webhook_logs").set({ next_attempt_at: at }).where("id", "=", id),
      shape: () => 0,
      parameters: ({ id, at }) => [id, at], // wrong on purpose: Kysely puts the SET value first
    });
    const first = template.compile({ id: "a", at: 1 });
    const second = template.compile({ id: "b", at: 2 });
    expect(first.parameters).toEqual([1, "a"]);
    expect(second.parameters).toEqual([2, "b"]);
    expect(template.reusedShapes).toBe(0);
  });
});
