/**
 * Runs `deleteBatch` (which deletes at most `batchSize` rows) until a batch comes up short, letting the
 * event loop turn in between. A large delete in one statement holds SQLite's only writer, and so every
 * other write (ingest included), for as long as it runs; bounded batches let the others in between.
 * Returns how many rows were deleted.
 */
export async function deleteInBatches(
  batchSize: number,
  deleteBatch: () => Promise<{ numDeletedRows: bigint }>,
): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = Number((await deleteBatch()).numDeletedRows);
    total += deleted;
    if (deleted < batchSize) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
