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
  const combined = new CombinedStatements();
  return {
    db,
    dialect: "postgres",
    async executeBatch(queries, options) {
      if (queries.length === 0) return;
      // One statement is a transaction of its own; independent ones can be made into one statement.
      if (queries.length === 1) {
        await db.executeQuery(queries[0]!);
        return;
      }
      if (options?.independent) {
        // Named: each connection parses and plans a shape once, not on every commit.
        const { name, query } = combined.combine(queries);
        await pool.query({ name, text: query.sql, values: query.parameters as unknown[] });
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

interface CombinedShape {
  next: Map<string, CombinedShape>;
  sql?: string;
  name?: string;
  /** Parameters of each statement when the SQL was made (a mismatch is refused, never cached). */
  lengths?: number[];
}

/**
 * `combineStatements` with its SQL kept per sequence of statement texts, and a statement name for it.
 * An ingest commit repeats a few shapes: renumbering the placeholders of every statement of every
 * commit was a twentieth of the api process's time, and PostgreSQL parsed and planned the same large
 * statement on every commit. Texts are looked up one by one (V8 caches their hashes), never joined.
 *
 * Every connection keeps each named statement it prepared for as long as it lives, so names are
 * bounded: the first `maxNames` texts get one (the hot ingest shapes come first), later ones run
 * unnamed. A name always stands for the same text, also after the shape cache starts over.
 */
export class CombinedStatements {
  #root: CombinedShape = { next: new Map() };
  #size = 0;
  readonly #names = new Map<string, string>();

  constructor(
    private readonly maxShapes = 256,
    private readonly maxNames = 64,
  ) {}

  combine(queries: readonly CompiledQuery[]): { name: string | undefined; query: CompiledQuery } {
    let node = this.#root;
    for (const query of queries) {
      let child = node.next.get(query.sql);
      if (!child) {
        child = { next: new Map() };
        node.next.set(query.sql, child);
      }
      node = child;
    }
    const { sql, name, lengths } = node;
    if (sql !== undefined && lengths?.every((length, i) => length === queries[i]?.parameters.length)) {
      // A plain loop: flatMap over a few hundred parameters per commit showed up in profiles.
      const parameters: unknown[] = [];
      for (const query of queries) for (const value of query.parameters) parameters.push(value);
      return { name, query: CompiledQuery.raw(sql, parameters) };
    }
    const fresh = combineStatements(queries);
    let freshName = this.#names.get(fresh.sql);
    if (freshName === undefined && this.#names.size < this.maxNames) {
      freshName = `mitte_combined_${this.#names.size + 1}`;
      this.#names.set(fresh.sql, freshName);
    }
    if (this.#size >= this.maxShapes) {
      // Many distinct shapes (commits of many users): start over rather than grow without bound.
      this.#root = { next: new Map() };
      this.#size = 0;
      return { name: freshName, query: fresh };
    }
    node.sql = fresh.sql;
    node.name = freshName;
    node.lengths = queries.map((query) => query.parameters.length);
    this.#size++;
    return { name: freshName, query: fresh };
  }
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
