import type { Kysely } from "kysely";
import type { Database } from "./schema.js";
import { isForeignKeyViolation } from "./unavailable.js";

/**
 * Writes `items` with `write`. Should that fail on a foreign key because rows they reference were deleted
 * meanwhile (an endpoint, a log), writes again only the items whose row in `table` still exists, so one
 * deleted row does not fail everyone else's items in a group commit. Returns the items left out; rethrows
 * when every referenced row still exists (the violation has another cause).
 */
export async function writeSkippingDeleted<T>(
  db: Kysely<Database>,
  table: "endpoints" | "webhook_logs",
  referenceOf: (item: T) => string,
  items: readonly T[],
  write: (items: readonly T[]) => Promise<void>,
): Promise<T[]> {
  try {
    await write(items);
    return [];
  } catch (error) {
    if (!isForeignKeyViolation(error)) throw error;
    const ids = [...new Set(items.map(referenceOf))];
    const existing = await db.selectFrom(table).select("id").where("id", "in", ids).execute();
    const live = new Set(existing.map((row) => row.id));
    const kept = items.filter((item) => live.has(referenceOf(item)));
    if (kept.length === items.length) throw error;
    if (kept.length > 0) await write(kept);
    return items.filter((item) => !live.has(referenceOf(item)));
  }
}
