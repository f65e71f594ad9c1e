import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely } from "kysely";
import type { Database } from "../schema.js";
import type { Storage } from "../storage.js";
import { FastSqliteDialect } from "./sqlite-dialect.js";

export interface SqliteOptions {
  /** File path, or ":memory:" for tests. */
  filename: string;
  /** NORMAL: durable across process crashes (WAL); FULL: also across power loss. */
  synchronous?: "NORMAL" | "FULL";
}

export function openSqliteStorage(options: SqliteOptions): Storage {
  if (options.filename !== ":memory:") mkdirSync(dirname(options.filename), { recursive: true });
  const sqlite = new BetterSqlite3(options.filename);
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma(`synchronous = ${options.synchronous ?? "NORMAL"}`);
  sqlite.pragma("foreign_keys = ON");
  // Other processes (the CLI) may write while the server runs; wait for the lock instead of failing.
  sqlite.pragma("busy_timeout = 5000");
  const db = new Kysely<Database>({ dialect: new FastSqliteDialect(sqlite) });
  return {
    db,
    dialect: "sqlite",
    async close() {
      await db.destroy();
    },
  };
}
