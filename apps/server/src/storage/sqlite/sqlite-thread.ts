import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * Runs better-sqlite3 on its own thread. SQLite calls are synchronous: on the main thread every insert
 * and commit would stall HTTP handling. Here the main thread only posts SQL and parameters and awaits the
 * answer, so ingestion's event loop keeps accepting requests while the previous batch is written.
 *
 * The worker's source is inline (eval) so it needs no separate file in `dist/` or a TypeScript loader in
 * tests; it loads better-sqlite3 from the path this module resolves.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
const db = new Database(workerData.filename);
for (const pragma of workerData.pragmas) db.pragma(pragma);
const statements = new Map();
function prepare(sql) {
  let statement = statements.get(sql);
  if (statement) return statement;
  statement = db.prepare(sql);
  if (statements.size >= workerData.statementCacheSize) statements.delete(statements.keys().next().value);
  statements.set(sql, statement);
  return statement;
}
// Buffers arrive as plain Uint8Arrays after crossing threads; SQLite binds Buffers.
const toBindable = (value) => (value instanceof Uint8Array && !Buffer.isBuffer(value) ? Buffer.from(value.buffer, value.byteOffset, value.byteLength) : value);
const runBatch = db.transaction((statements) => {
  for (const { sql, parameters } of statements) prepare(sql).run(parameters.map(toBindable));
});
parentPort.on("message", (message) => {
  if (message.batch) {
    try {
      runBatch(message.batch);
      parentPort.postMessage({ id: message.id, rows: [] });
    } catch (error) {
      parentPort.postMessage({ id: message.id, error: { message: error.message, code: error.code } });
    }
    return;
  }
  if (message.close) {
    db.close();
    parentPort.postMessage({ id: message.id, rows: [] });
    return;
  }
  try {
    const statement = prepare(message.sql);
    const parameters = message.parameters.map(toBindable);
    if (statement.reader) {
      parentPort.postMessage({ id: message.id, rows: statement.all(parameters) });
    } else {
      const result = statement.run(parameters);
      parentPort.postMessage({ id: message.id, changes: result.changes, lastInsertRowid: Number(result.lastInsertRowid) });
    }
  } catch (error) {
    parentPort.postMessage({ id: message.id, error: { message: error.message, code: error.code } });
  }
});
`;

export interface SqliteThreadResult {
  rows: Record<string, unknown>[];
  changes?: number;
  lastInsertRowid?: number;
}

interface Reply extends Partial<SqliteThreadResult> {
  id: number;
  error?: { message: string; code?: string };
}

export class SqliteError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = "SqliteError";
  }
}

/** Blobs come back as Uint8Array; the rest of the code expects Node Buffers. */
function restoreBuffers(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  for (const row of rows) {
    for (const key in row) {
      const value = row[key];
      if (value instanceof Uint8Array && !Buffer.isBuffer(value)) {
        row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      }
    }
  }
  return rows;
}

/**
 * FIFO mutex: each unlock wakes exactly the next waiter. (Kysely's built-in SQLite driver wakes every
 * waiter on each unlock, which costs O(n²) microtasks when many deliveries wait for the connection.)
 */
export class FifoMutex {
  #locked = false;
  readonly #waiters: (() => void)[] = [];

  lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  unlock(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }
}

export class SqliteThread {
  /** Held by whoever uses the single connection: a Kysely transaction or a batch. */
  readonly mutex = new FifoMutex();
  readonly #worker: Worker;
  readonly #pending = new Map<
    number,
    { resolve: (result: SqliteThreadResult) => void; reject: (error: Error) => void }
  >();
  #nextId = 0;
  #failed: Error | undefined;

  constructor(filename: string, pragmas: readonly string[], statementCacheSize = 1_000) {
    const driverPath = createRequire(import.meta.url).resolve("better-sqlite3");
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driverPath, filename, pragmas, statementCacheSize },
    });
    this.#worker.on("message", (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (reply.error) pending.reject(new SqliteError(reply.error.message, reply.error.code));
      else pending.resolve({ ...reply, rows: restoreBuffers(reply.rows ?? []) });
    });
    this.#worker.on("error", (error) => this.#fail(error));
    this.#worker.on("exit", (code) => this.#fail(new Error(`SQLite thread exited (code ${code})`)));
  }

  execute(sql: string, parameters: readonly unknown[]): Promise<SqliteThreadResult> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, sql, parameters });
    });
  }

  /** Runs the statements in one transaction, in one round trip. The caller holds `mutex`. */
  executeBatch(statements: readonly { sql: string; parameters: readonly unknown[] }[]): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: () => resolve(), reject });
      this.#worker.postMessage({ id, batch: statements.map(({ sql, parameters }) => ({ sql, parameters })) });
    });
  }

  async close(): Promise<void> {
    if (this.#failed) return;
    const id = this.#nextId++;
    await new Promise<SqliteThreadResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ id, close: true });
    });
    this.#failed = new Error("SQLite thread closed");
    await this.#worker.terminate();
  }

  #fail(error: Error): void {
    this.#failed ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
