import { describe, expect, it } from "vitest";
import { GroupSlots } from "./group-slots.js";

describe("GroupSlots", () => {
  it("caps holders per group and keeps groups apart", async () => {
    const slots = new GroupSlots(2);
    expect(await slots.acquire("a", 0)).toBe(true);
    expect(await slots.acquire("a", 0)).toBe(true);
    expect(await slots.acquire("a", 0)).toBe(false);
    expect(await slots.acquire("b", 0)).toBe(true);
    expect(slots.held("a")).toBe(2);
  });

  it("hands a released slot to a waiter of the same group", async () => {
    const slots = new GroupSlots(1);
    await slots.acquire("a", 0);
    const waiting = slots.acquire("a", 1_000);
    slots.release("a");
    expect(await waiting).toBe(true);
    expect(slots.held("a")).toBe(1);
    slots.release("a");
    expect(slots.held("a")).toBe(0);
  });

  it("gives up after the wait limit", async () => {
    const slots = new GroupSlots(1);
    await slots.acquire("a", 0);
    expect(await slots.acquire("a", 10)).toBe(false);
    slots.release("a");
    expect(slots.held("a")).toBe(0);
  });

  it("refuses at once when a full group has freed nothing for the wait limit", async () => {
    let now = 0;
    const slots = new GroupSlots(1, () => now);
    await slots.acquire("a", 0);
    now = 150;
    expect(slots.stalledForMs("a")).toBe(150);
    const waiting = slots.acquire("a", 200); // still within the limit: waits
    expect(waiting).toBeInstanceOf(Promise);
    slots.release("a"); // progress: the waiter takes the slot over
    expect(await waiting).toBe(true);
    expect(slots.stalledForMs("a")).toBe(0);
    now = 400;
    expect(slots.stalledForMs("a")).toBe(250);
    expect(slots.acquire("a", 200)).toBe(false); // stuck for longer than the limit: no waiting
    expect(slots.stalledForMs("b")).toBe(0);
    slots.release("a");
    expect(slots.stalledForMs("a")).toBe(0);
  });
});
