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
const BYTES_MARK = "__mitteBytes";

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driverPath);
// A database that cannot be opened (read-only or missing directory, no permission) answers every request
// with why: thrown here, the error reached the main thread as a bare object and said "[object Object]".
let db = null;
let openError = null;
try {
  db = new Database(workerData.filename);
  for (const pragma of workerData.pragmas) db.pragma(pragma);
} catch (error) {
  db?.close();
  db = null;
  openError = {
    message: "cannot open the SQLite database " + workerData.filename + ": " + error.message,
    code: error.code,
  };
}
const statements = new Map();
function prepare(sql) {
  let statement = statements.get(sql);
  if (statement) return statement;
  statement = db.prepare(sql);
  if (statements.size >= workerData.statementCacheSize) statements.delete(statements.keys().next().value);
  statements.set(sql, statement);
  return statement;
}
// Byte parameters arrive packed in one transferred arena as {${BYTES_MARK}: [offset, length]}; SQLite binds Buffers.
let arena = null;
const toBindable = (value) =>
  value !== null && typeof value === "object" && "${BYTES_MARK}" in value
    ? Buffer.from(arena, value.${BYTES_MARK}[0], value.${BYTES_MARK}[1])
    : value;
const runBatch = db?.transaction((statements) => {
  for (const { sql, parameters } of statements) prepare(sql).run(parameters.map(toBindable));
});
parentPort.on("message", (message) => {
  if (!db) {
    parentPort.postMessage(message.close ? { id: message.id, rows: [] } : { id: message.id, error: openError });
    return;
  }
  arena = message.arena ?? null;
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

interface PackedStatement {
  sql: string;
  parameters: unknown[];
}

/**
 * Copies every byte parameter (bodies, headers blobs) of the statements into one fresh ArrayBuffer that is
 * transferred to the thread instead of cloned. Structured clone copies the whole backing store of each
 * Buffer — for a body sliced from a pooled or socket buffer that is many times its length — and was the
 * largest single cost of ingestion on the main thread.
 */
export function packBytes(statements: readonly { sql: string; parameters: readonly unknown[] }[]): {
  statements: PackedStatement[];
  arena: ArrayBuffer | undefined;
} {
  let total = 0;
  for (const { parameters } of statements)
    for (const value of parameters) if (value instanceof Uint8Array) total += value.byteLength;
  if (total === 0)
    return {
      statements: statements.map(({ sql, parameters }) => ({ sql, parameters: [...parameters] })),
      arena: undefined,
    };
  const arena = new ArrayBuffer(total);
  const bytes = new Uint8Array(arena);
  let offset = 0;
  const packed = statements.map(({ sql, parameters }) => ({
    sql,
    parameters: parameters.map((value) => {
      if (!(value instanceof Uint8Array)) return value;
      bytes.set(value, offset);
      const mark = { [BYTES_MARK]: [offset, value.byteLength] };
      offset += value.byteLength;
      return mark;
    }),
  }));
  return { statements: packed, arena };
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
    const packed = packBytes([{ sql, parameters }]);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const { parameters: bound } = packed.statements[0]!;
      if (packed.arena)
        this.#worker.postMessage({ id, sql, parameters: bound, arena: packed.arena }, [packed.arena]);
      else this.#worker.postMessage({ id, sql, parameters: bound });
    });
  }

  /** Runs the statements in one transaction, in one round trip. The caller holds `mutex`. */
  executeBatch(statements: readonly { sql: string; parameters: readonly unknown[] }[]): Promise<void> {
    if (this.#failed) return Promise.reject(this.#failed);
    const id = this.#nextId++;
    const packed = packBytes(statements);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve: () => resolve(), reject });
      if (packed.arena)
        this.#worker.postMessage({ id, batch: packed.statements, arena: packed.arena }, [packed.arena]);
      else this.#worker.postMessage({ id, batch: packed.statements });
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
