import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packBytes, SqliteThread } from "./sqlite-thread.js";

describe("SqliteThread", () => {
  it("says why a database cannot be opened, on every request", async () => {
    // A directory where the database file should be: SQLite cannot open it.
    const dir = mkdtempSync(join(tmpdir(), "mitte-cantopen-"));
    try {
      const thread = new SqliteThread(dir, ["journal_mode = WAL"]);
      const expected = `cannot open the SQLite database ${dir}: unable to open database file`;
      await expect(thread.execute("select 1", [])).rejects.toThrow(expected);
      await expect(thread.executeBatch([{ sql: "select 1", parameters: [] }])).rejects.toThrow(expected);
      await thread.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("packBytes", () => {
  it("moves every byte parameter into one arena and leaves other values alone", () => {
    // A body sliced out of a larger buffer: only its own bytes may travel.
    const slab = Buffer.alloc(8192, 0x61);
    slab.write("hello", 100);
    const body = slab.subarray(100, 105);
    const blob = new Uint8Array([1, 2, 3]);
    const { statements, arena } = packBytes([
      { sql: "insert a", parameters: ["id", body, 7, null] },
      { sql: "insert b", parameters: [blob] },
    ]);
    expect(arena?.byteLength).toBe(8);
    expect(statements[0]?.parameters).toEqual(["id", { __mitteBytes: [0, 5] }, 7, null]);
    expect(statements[1]?.parameters).toEqual([{ __mitteBytes: [5, 3] }]);
    const bytes = Buffer.from(arena!);
    expect(bytes.subarray(0, 5).toString()).toBe("hello");
    expect([...bytes.subarray(5)]).toEqual([1, 2, 3]);
  });

  it("sends no arena when there are no bytes", () => {
    const { statements, arena } = packBytes([{ sql: "select 1", parameters: ["x"] }]);
    expect(arena).toBeUndefined();
    expect(statements).toEqual([{ sql: "select 1", parameters: ["x"] }]);
  });
});
