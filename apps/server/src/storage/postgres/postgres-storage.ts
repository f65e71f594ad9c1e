import { CompiledQuery, Kysely, PostgresDialect } from "kysely";
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
    async executeBatch(queries, options) {
      if (queries.length === 0) return;
      // One statement is a transaction of its own; independent ones can be made into one statement.
      if (queries.length === 1 || options?.independent) {
        await db.executeQuery(queries.length === 1 ? queries[0]! : combineStatements(queries));
        return;
      }
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

/**
 * Independent write statements as one: each becomes a data-modifying CTE, which PostgreSQL runs to
 * completion even though nothing refers to it, all in one implicit transaction. Placeholders are
 * renumbered to follow one another; a statement whose placeholders do not match its parameters (a
 * literal "$n" in its text, say) is refused rather than guessed at.
 */
export function combineStatements(queries: readonly CompiledQuery[]): CompiledQuery {
  const parts: string[] = [];
  const parameters: unknown[] = [];
  queries.forEach((query, index) => {
    const offset = parameters.length;
    let highest = 0;
    const sql = query.sql.replace(/\$(\d+)/g, (_match, digits: string) => {
      const n = Number(digits);
      highest = Math.max(highest, n);
      return `$${n + offset}`;
    });
    if (highest !== query.parameters.length) {
      throw new Error(
        `statement ${index} has ${query.parameters.length} parameters but refers to $${highest}`,
      );
    }
    parts.push(`s${index} as (${sql})`);
    parameters.push(...query.parameters);
  });
  return CompiledQuery.raw(`with ${parts.join(", ")} select 1`, parameters);
}
