/**
 * bench/bounds.ts's durable floor: about the least an ingest on Mitte's stack can cost when a 202 may only
 * follow the commit of the webhook's row. Fastify set up as Mitte's ingest route (opaque-bytes body parser,
 * POST/PUT/PATCH on /api/v1/h/:slug, no logger), and per request only: the row Mitte stores (id, method,
 * headers as JSON, body bytes), committed in group commits (Mitte's BatchWriter) with the usage count, then
 * 202. No endpoint lookup, admission, rate limit, quota, source detection or queue hand-over.
 * Arguments: the SQLite file of a database Mitte migrated, a user id and an endpoint id in it, and where the
 * commit runs: `thread` (Mitte's SQLite thread, as Mitte does it) or `inline` (better-sqlite3 on the HTTP
 * thread itself). Reports {type:"ready", port} over IPC.
 */
import {
  BatchWriter,
  createIdGenerator,
  LOG_COLUMNS,
  type NewWebhookLog,
  queuedLogRow,
  SqliteThread,
  sqlitePragmas,
  systemClock,
} from "@mitte/server";
import Database from "better-sqlite3";
import Fastify from "fastify";

const [filename, userId, endpointId, mode] = process.argv.slice(2) as [string, string, string, string];
const PRAGMAS = sqlitePragmas();
const newId = createIdGenerator(systemClock);

interface Statement {
  sql: string;
  parameters: unknown[];
}

const placeholders = `(${LOG_COLUMNS.map(() => "?").join(", ")})`;
const insertSql = new Map<number, string>();
function insertFor(rows: number): string {
  let sql = insertSql.get(rows);
  if (!sql) {
    sql = `insert into webhook_logs (${LOG_COLUMNS.join(", ")}) values ${Array(rows).fill(placeholders).join(", ")}`;
    insertSql.set(rows, sql);
  }
  return sql;
}
const USAGE_SQL =
  "insert into usage_counters (user_id, period, request_count) values (?, ?, ?) on conflict (user_id, period) do update set request_count = usage_counters.request_count + ?";

/** Mitte's statements for a batch: multi-row inserts of at most 128 rows, and the usage upsert. */
function statementsFor(rows: readonly NewWebhookLog[]): Statement[] {
  const statements: Statement[] = [];
  for (let start = 0; start < rows.length; start += 128) {
    const chunk = rows.slice(start, start + 128);
    const parameters: unknown[] = [];
    for (const row of chunk) for (const column of LOG_COLUMNS) parameters.push(row[column]);
    statements.push({ sql: insertFor(chunk.length), parameters });
  }
  statements.push({ sql: USAGE_SQL, parameters: [userId, "2026-11", rows.length, rows.length] });
  return statements;
}

function inlineCommitter(): (statements: Statement[]) => Promise<void> {
  const db = new Database(filename);
  for (const pragma of PRAGMAS) db.pragma(pragma);
  const prepared = new Map<string, Database.Statement>();
  const commit = db.transaction((statements: Statement[]) => {
    for (const { sql, parameters } of statements) {
      let statement = prepared.get(sql);
      if (!statement) {
        statement = db.prepare(sql);
        prepared.set(sql, statement);
      }
      statement.run(parameters);
    }
  });
  return async (statements) => commit(statements);
}

function threadCommitter(): (statements: Statement[]) => Promise<void> {
  const thread = new SqliteThread(filename, PRAGMAS);
  return (statements) => thread.executeBatch(statements);
}

const commit = mode === "inline" ? inlineCommitter() : threadCommitter();
const writer = new BatchWriter<NewWebhookLog>((rows) => commit(statementsFor(rows)), { maxBatch: 500 });

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: 1024 * 1024 }, (_request, body, done) =>
  done(null, body),
);
app.route<{ Params: { slug: string } }>({
  method: ["POST", "PUT", "PATCH"],
  url: "/api/v1/h/:slug",
  handler: async (request, reply) => {
    const row = queuedLogRow({
      id: newId("log"),
      userId,
      endpointId,
      method: request.method,
      query: "",
      requestHeaders: JSON.stringify(request.headers),
      body: request.body as Buffer,
      source: null,
      isTest: false,
      maxAttempts: 5,
      now: Date.now(),
    });
    await writer.submit(row);
    return reply.code(202).send({ id: row.id, status: "queued" });
  },
});

const address = await app.listen({ port: 0, host: "127.0.0.1" });
process.send?.({ type: "ready", port: Number(new URL(address).port) });
process.on("disconnect", () => process.exit(0));
// Exit normally on the bench's SIGTERM, so that --cpu-prof (HELPER_NODE_ARGS) can write its profile.
process.on("SIGTERM", () => process.exit(0));
