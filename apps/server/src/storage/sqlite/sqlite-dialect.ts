import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type DialectAdapter,
  type Driver,
  type Kysely,
  type QueryCompiler,
  type QueryResult,
  SqliteAdapter,
  SqliteDialect,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from "kysely";
import type { SqliteThread } from "./sqlite-thread.js";

class ThreadedSqliteConnection implements DatabaseConnection {
  constructor(private readonly thread: SqliteThread) {}

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const result = await this.thread.execute(compiledQuery.sql, compiledQuery.parameters);
    if (result.changes === undefined) return { rows: result.rows as R[] };
    return {
      numAffectedRows: BigInt(result.changes),
      insertId: BigInt(result.lastInsertRowid ?? 0),
      rows: result.rows as R[],
    };
  }

  // biome-ignore lint/correctness/useYield: streaming is not used by Mitte; refuse rather than half-support it.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported by this SQLite driver");
  }
}

class ThreadedSqliteDriver implements Driver {
  readonly #connection: ThreadedSqliteConnection;

  constructor(private readonly thread: SqliteThread) {
    this.#connection = new ThreadedSqliteConnection(thread);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    // One SQLite connection; callers take turns in arrival order, a transaction holds it throughout.
    await this.thread.mutex.lock();
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("begin"));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw("rollback"));
  }

  async releaseConnection(): Promise<void> {
    this.thread.mutex.unlock();
  }

  async destroy(): Promise<void> {
    await this.thread.close();
  }
}

/**
 * Kysely's SQLite dialect, with SQLite on its own thread (prepared statements cached there) and a fair
 * connection mutex. Query compilation, the adapter and introspection are Kysely's own.
 */
export class ThreadedSqliteDialect extends SqliteDialect {
  constructor(private readonly thread: SqliteThread) {
    // The base class wants a database only for its own driver, which is replaced below.
    super({ database: {} as never });
  }

  override createDriver(): Driver {
    return new ThreadedSqliteDriver(this.thread);
  }

  override createAdapter(): DialectAdapter {
    return new SqliteAdapter();
  }

  override createQueryCompiler(): QueryCompiler {
    return new SqliteQueryCompiler();
  }

  override createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new SqliteIntrospector(db);
  }
}
