import { describe, expect, it } from "vitest";
import { packBytes } from "./sqlite-thread.js";

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
