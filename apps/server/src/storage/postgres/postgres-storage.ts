import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import type { Logger } from "pino";
import type { Database } from "../schema.js";
import type { Storage } from "../storage.js";

export interface PostgresOptions {
  connectionString: string;
  /** Connections in this process's pool. Default 10. */
  poolSize?: number;
  /** Puts every table in this schema (tests use one schema per run). */
  schema?: string;
  /** Shown in pg_stat_activity; lets operators (and tests) find this process's connections. */
  applicationName?: string;
  logger?: Logger;
}

// int8 (BIGINT) comes back as a string by default; our BIGINTs are millisecond timestamps and counts,
// far below 2^53, so numbers are exact. Scoped to this pool rather than pg's global type registry.
const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8_OID && format !== "binary") return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export function openPostgresStorage(options: PostgresOptions): Storage {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    types,
    application_name: options.applicationName ?? "mitte",
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
    // A killed backend (failover, pg_terminate_backend) surfaces as an error on the idle client; the pool
    // drops that client and opens a new one on next use.
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
  });
  pool.on("error", (error) =>
    options.logger?.warn({ err: error }, "postgres: idle connection lost; reconnecting on demand"),
  );
  // A backend killed while its client is checked out emits "error" on that client; unhandled, it would
  // crash the process. The query in flight still fails (its caller sees it), and the pool discards the
  // broken client on release.
  pool.on("connect", (client) => {
    client.on("error", (error) =>
      options.logger?.warn({ err: error }, "postgres: connection lost during use"),
    );
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: "postgres",
    async executeBatch(queries) {
      if (queries.length === 0) return;
      await db.transaction().execute(async (trx) => {
        for (const query of queries) await trx.executeQuery(query);
      });
    },
    ...(options.schema ? { schema: options.schema } : {}),
    async close() {
      await db.destroy();
    },
  };
}
