import pg from "pg";

/**
 * Scale-mode test runs give every harness its own PostgreSQL schema (`t_…`). Dropping schemas while other
 * test files run races with Kysely's migrator, which introspects every schema of the database; so schemas
 * are dropped only here: leftovers before the run, this run's after every file has finished.
 */
async function dropTestSchemas(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(
      "select nspname from pg_namespace where nspname ~ '^t_[0-9a-f]{12}$'",
    );
    for (const { nspname } of rows) await client.query(`drop schema if exists ${nspname} cascade`);
  } finally {
    await client.end();
  }
}

export default async function setup(): Promise<() => Promise<void>> {
  const url = process.env.MITTE_TEST_DATABASE_URL;
  if (url) await dropTestSchemas(url);
  return async () => {
    if (url) await dropTestSchemas(url);
  };
}
