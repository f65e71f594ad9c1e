import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Logger } from "pino";
import { openPostgresStorage } from "../storage/postgres/postgres-storage.js";
import { openSqliteStorage } from "../storage/sqlite/sqlite-storage.js";
import type { Storage } from "../storage/storage.js";

/**
 * Which database the suite runs against: in-memory SQLite by default; PostgreSQL when
 * MITTE_TEST_DATABASE_URL is set (`npm run test:scale`). Each Postgres harness gets its own schema, so
 * test files run in parallel without seeing each other's rows. No silent fallback: if the variable is set
 * and PostgreSQL is down, the test fails.
 */
export const testDatabaseUrl = process.env.MITTE_TEST_DATABASE_URL || undefined;
export const testRedisUrl = process.env.MITTE_TEST_REDIS_URL || undefined;

/** A fresh, empty schema for one test's PostgreSQL tables. */
export async function createTestSchema(): Promise<{ schema: string; drop: () => Promise<void> }> {
  if (!testDatabaseUrl) throw new Error("MITTE_TEST_DATABASE_URL is not set");
  const url = testDatabaseUrl;
  const schema = `t_${randomBytes(6).toString("hex")}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`create schema ${schema}`);
  // Dropped by the global teardown (global-setup.ts), never while other test files run.
  return { schema, drop: async () => {} };
}

export async function openTestStorage(
  logger?: Logger,
): Promise<{ storage: Storage; drop: () => Promise<void> }> {
  if (!testDatabaseUrl) return { storage: openSqliteStorage({ filename: ":memory:" }), drop: async () => {} };
  const { schema, drop } = await createTestSchema();
  const storage = openPostgresStorage({
    connectionString: testDatabaseUrl,
    schema,
    poolSize: 4,
    ...(logger ? { logger } : {}),
  });
  return { storage, drop };
}
