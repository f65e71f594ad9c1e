/**
 * Tells a lost or refused database connection from a real failure of a query. A request that fails for the
 * first reason answers 503 (retry later: nothing was accepted) rather than 500, so providers retry it.
 */
const CONNECTION_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections.
  "57P01",
  "57P02",
  "57P03",
  "53300",
  // SQLite: the database is locked or busy beyond the busy timeout.
  "SQLITE_BUSY",
]);

const CONNECTION_ERROR_MESSAGES = [
  "Connection terminated",
  "connection error and is not queryable",
  "timeout exceeded when trying to connect",
  "Client was closed and is not queryable",
];

export function isStorageUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && (CONNECTION_ERROR_CODES.has(code) || code.startsWith("08"))) return true;
  return CONNECTION_ERROR_MESSAGES.some((text) => error.message.includes(text));
}

/** A write that referenced a row deleted meanwhile (SQLite with foreign_keys on; PostgreSQL 23503). */
export function isForeignKeyViolation(error: unknown): boolean {
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return code === "SQLITE_CONSTRAINT_FOREIGNKEY" || code === "23503";
}
