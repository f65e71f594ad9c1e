import { mkdirSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";

export class DataDirInUseError extends Error {
  override name = "DataDirInUseError";
}

export interface DataDirLock {
  release(): void;
}

/**
 * Embedded mode is one process per data directory: a second `mitte start` on the same directory would run
 * a second embedded queue over the same pending logs, and most webhooks would be delivered twice. The
 * server therefore holds an exclusive SQLite lock on `mitte.lock` beside the database for as long as it
 * runs. It is an operating-system file lock, so it ends with the process however the process ends
 * (kill -9 included): no stale lock to clean up. CLI commands do not take it; they may run beside the server.
 */
export function lockDataDir(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, "mitte.lock");
  // timeout 0: a lock that is held is an answer, not something to wait for.
  const db = new Database(path, { timeout: 0 });
  try {
    db.pragma("locking_mode = EXCLUSIVE");
    db.exec("BEGIN EXCLUSIVE");
  } catch (error) {
    db.close();
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") {
      throw new DataDirInUseError(
        `Another Mitte server is running on ${dataDir} (it holds ${path}). Embedded mode runs one process per data directory; stop the other one or set MITTE_DATA_DIR to another directory.`,
      );
    }
    throw error;
  }
  return {
    release() {
      if (!db.open) return;
      db.exec("ROLLBACK");
      db.close();
    },
  };
}
