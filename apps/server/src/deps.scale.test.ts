import pg from "pg";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { createDeps } from "./deps.js";
import { createTestSchema, testDatabaseUrl, testRedisUrl } from "./test-support/test-storage.js";

describe("createDeps in scale mode", () => {
  it("refuses a start without MITTE_SECRET_KEY before creating any table", async () => {
    if (!testDatabaseUrl || !testRedisUrl)
      throw new Error("scale tests need MITTE_TEST_DATABASE_URL and MITTE_TEST_REDIS_URL");
    const { schema } = await createTestSchema();
    const config = loadConfig({
      DATABASE_URL: testDatabaseUrl,
      REDIS_URL: testRedisUrl,
      MITTE_PG_SCHEMA: schema,
      LOG_LEVEL: "silent",
    });
    await expect(createDeps(config)).rejects.toThrow(/MITTE_SECRET_KEY is required/);
    const client = new pg.Client({ connectionString: testDatabaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query(
        "select table_name from information_schema.tables where table_schema = $1",
        [schema],
      );
      expect(rows).toEqual([]);
    } finally {
      await client.end();
    }
  });
});
