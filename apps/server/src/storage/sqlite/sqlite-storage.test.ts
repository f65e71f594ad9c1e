import { join } from "node:path";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { useTempDirs } from "../../test-support/temp-dirs.js";
import { migrateToLatest } from "../storage.js";
import { openSqliteStorage } from "./sqlite-storage.js";

describe("openSqliteStorage", () => {
  const tempDir = useTempDirs();

  it("opens the database in WAL mode, foreign keys on and statement journals kept in memory", async () => {
    const dir = tempDir("sqlite");
    const storage = openSqliteStorage({ filename: join(dir, "mitte.db") });
    try {
      const pragma = async (name: string) =>
        Object.values((await sql.raw(`pragma ${name}`).execute(storage.db)).rows[0] as object)[0];
      expect(await pragma("journal_mode")).toBe("wal");
      // 2 = MEMORY: a large multi-row insert would otherwise spill its statement journal to a temporary file.
      expect(await pragma("temp_store")).toBe(2);
      expect(await pragma("foreign_keys")).toBe(1);
      // Migrations sort through temporary files (an index over millions of logs), then memory again.
      await migrateToLatest(storage);
      expect(await pragma("temp_store")).toBe(2);
    } finally {
      await storage.close();
    }
  });
});
