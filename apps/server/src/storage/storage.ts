import type { CompiledQuery, Kysely, Migration, MigrationProvider } from "kysely";
import { Migrator, sql } from "kysely";
import type { Dialect } from "./dialect.js";
import * as initial from "./migrations/001-initial.js";
import * as logStatusIndex from "./migrations/002-log-status-index.js";
import * as accounts from "./migrations/003-accounts.js";
import * as oauthStates from "./migrations/004-oauth-states.js";
import * as notifications from "./migrations/005-notifications.js";
import * as queueGroupIndex from "./migrations/006-queue-group-index.js";
import * as dropQueueDueIndex from "./migrations/007-drop-queue-due-index.js";
import * as logsAsQueue from "./migrations/008-logs-as-queue.js";
import type { Database } from "./schema.js";

export type { Dialect } from "./dialect.js";

/** The storage port: one Kysely instance; all query code is shared by the SQLite and PostgreSQL adapters. */
export interface Storage {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /** PostgreSQL schema holding the tables, when not the default one. */
  readonly schema?: string;
  /**
   * Runs compiled write statements atomically. The hot paths (group commit) build their statements
   * first and send them in one go: one round trip to SQLite's thread instead of one per statement.
   */
  executeBatch(queries: readonly CompiledQuery[], options?: BatchOptions): Promise<void>;
  /**
   * Throws when the storage can no longer be trusted though queries still answer: a SQLite file deleted or
   * replaced under the running process keeps working on the unlinked file, and everything written is lost.
   */
  check?(): void;
  close(): Promise<void>;
}

export interface BatchOptions {
  /**
   * No statement reads or writes a row another one writes (e.g. inserts of new rows into different
   * tables, plus one upsert per key). PostgreSQL then runs them as one statement: one round trip and
   * no BEGIN/COMMIT, instead of four or more.
   */
  independent?: boolean;
}

/** Migrations are code, ordered by name; each receives the dialect for the few types that differ. */
const migrations: Record<string, (db: Kysely<unknown>, dialect: Dialect) => Promise<void>> = {
  "001-initial": initial.up,
  "002-log-status-index": logStatusIndex.up,
  "003-accounts": accounts.up,
  "004-oauth-states": oauthStates.up,
  "005-notifications": notifications.up,
  "006-queue-group-index": queueGroupIndex.up,
  "007-drop-queue-due-index": dropQueueDueIndex.up,
  "008-logs-as-queue": logsAsQueue.up,
};

export async function migrateToLatest(storage: Storage): Promise<void> {
  const provider: MigrationProvider = {
    async getMigrations() {
      const entries = Object.entries(migrations).map(([name, up]): [string, Migration] => [
        name,
        { up: (db) => up(db, storage.dialect) },
      ]);
      return Object.fromEntries(entries);
    },
  };
  // SQLite keeps temporary data in memory (see sqlitePragmas), but a migration that builds an index over a
  // large table sorts through temporary storage: in memory that cost hundreds of MB for 3 million logs.
  if (storage.dialect === "sqlite") await sql`pragma temp_store = file`.execute(storage.db);
  const { error, results } = await new Migrator({
    db: storage.db,
    provider,
    ...(storage.schema ? { migrationTableSchema: storage.schema } : {}),
  }).migrateToLatest();
  if (storage.dialect === "sqlite") await sql`pragma temp_store = memory`.execute(storage.db);
  if (error) {
    const failed = results?.find((result) => result.status === "Error")?.migrationName;
    const why = error instanceof Error ? error.message : String(error);
    // No failed migration named: the database could not even be read (cannot open, no permission, …).
    throw new Error(
      failed ? `database migration ${failed} failed: ${why}` : `cannot prepare the database: ${why}`,
      {
        cause: error,
      },
    );
  }
}
