import { mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { Kysely } from "kysely";
import type { Database } from "../schema.js";
import type { Storage } from "../storage.js";
import { ThreadedSqliteDialect } from "./sqlite-dialect.js";
import { SqliteThread } from "./sqlite-thread.js";

export interface SqliteOptions {
  /** File path, or ":memory:" for tests. */
  filename: string;
  /** NORMAL: durable across process crashes (WAL); FULL: also across power loss. */
  synchronous?: "NORMAL" | "FULL";
}

/** The connection settings of Mitte's SQLite database (bench/durable-floor-server.ts uses them too). */
export function sqlitePragmas(synchronous: "NORMAL" | "FULL" = "NORMAL"): string[] {
  return [
    "journal_mode = WAL",
    `synchronous = ${synchronous}`,
    "foreign_keys = ON",
    // Other processes (the CLI) may write while the server runs; wait for the lock instead of failing.
    "busy_timeout = 5000",
    // A multi-row insert keeps a statement journal (to undo the statement alone should a row fail). Past
    // 64 KiB, which a batch of 25 ingested webhooks already exceeds, SQLite spills it to a temporary file
    // that it creates, writes and deletes on every commit: a third of the SQLite thread's system time.
    "temp_store = MEMORY",
  ];
}

export function openSqliteStorage(options: SqliteOptions): Storage {
  if (options.filename !== ":memory:") mkdirSync(dirname(options.filename), { recursive: true });
  const thread = new SqliteThread(options.filename, sqlitePragmas(options.synchronous));
  const db = new Kysely<Database>({ dialect: new ThreadedSqliteDialect(thread) });
  /** The file's inode when first checked (start-up): the same path with another inode is another file. */
  let inode: number | undefined;
  return {
    db,
    dialect: "sqlite",
    check() {
      if (options.filename === ":memory:") return;
      const stats = statSync(options.filename, { throwIfNoEntry: false });
      if (!stats) throw new Error(`${options.filename} was deleted while Mitte runs`);
      inode ??= stats.ino;
      if (stats.ino !== inode) throw new Error(`${options.filename} was replaced while Mitte runs`);
    },
    // Always one transaction on SQLite's thread, which is what `independent` allows anyway.
    async executeBatch(queries) {
      if (queries.length === 0) return;
      // The batch is one message, atomic on SQLite's thread, which handles messages in order. The mutex
      // is needed only while sending, so that the batch cannot land inside someone's open transaction;
      // the next batch may be sent while this one is written.
      await thread.mutex.lock();
      let written: Promise<void>;
      try {
        written = thread.executeBatch(queries);
      } finally {
        thread.mutex.unlock();
      }
      await written;
    },
    async close() {
      await db.destroy();
    },
  };
}
