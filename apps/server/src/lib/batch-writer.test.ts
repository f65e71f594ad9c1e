import { describe, expect, it } from "vitest";
import { BatchWriter } from "./batch-writer.js";

describe("BatchWriter (group commit)", () => {
  it("groups concurrent submissions into one apply, in order", async () => {
    const batches: number[][] = [];
    const writer = new BatchWriter<number>(async (items) => {
      batches.push(items);
    });
    await Promise.all([1, 2, 3].map((n) => writer.submit(n)));
    expect(batches).toEqual([[1, 2, 3]]);
  });

  it("caps batch size and applies batches one at a time", async () => {
    let running = 0;
    let maxRunning = 0;
    const sizes: number[] = [];
    const writer = new BatchWriter<number>(
      async (items) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        sizes.push(items.length);
        await new Promise((resolve) => setTimeout(resolve, 1));
        running--;
      },
      { maxBatch: 4 },
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => writer.submit(i)));
    expect(sizes).toEqual([4, 4, 2]);
    expect(maxRunning).toBe(1);
  });

  it("with maxInFlight, starts the next batch while one is applied, in order", async () => {
    const started: number[][] = [];
    let running = 0;
    let maxRunning = 0;
    const writer = new BatchWriter<number>(
      async (items) => {
        started.push(items);
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
      },
      { maxBatch: 2, maxInFlight: 2 },
    );
    await Promise.all(Array.from({ length: 6 }, (_, i) => writer.submit(i)));
    expect(started).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect(maxRunning).toBe(2);
    await writer.flush();
  });

  it("rejects every item of a failed batch and goes on with the next", async () => {
    let calls = 0;
    const writer = new BatchWriter<string>(async () => {
      calls++;
      if (calls === 1) throw new Error("disk full");
    });
    const first = Promise.allSettled([writer.submit("a"), writer.submit("b")]);
    expect((await first).map((r) => r.status)).toEqual(["rejected", "rejected"]);
    await expect(writer.submit("c")).resolves.toBeUndefined();
  });

  it("flush waits for everything submitted", async () => {
    const applied: number[] = [];
    const writer = new BatchWriter<number>(async (items) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      applied.push(...items);
    });
    void writer.submit(1);
    void writer.submit(2);
    await writer.flush();
    expect(applied).toEqual([1, 2]);
    await writer.flush();
  });
});
