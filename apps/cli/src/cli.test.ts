import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { runCli } from "../../server/src/test-support/mitte-process.js";

describe("mitte user set-plan", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("requires --plan instead of moving the user to Free", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mitte-cli-"));
    dirs.push(dataDir);
    const env = { MITTE_DATA_DIR: dataDir };
    await runCli(["user", "create", "--email", "pro@example.com", "--plan", "pro", "--json"], env);
    const forgotten = runCli(["user", "set-plan", "--email", "pro@example.com"], env);
    await expect(forgotten).rejects.toMatchObject({ code: 1 });
    await expect(forgotten).rejects.toThrow(/--plan/);
    const db = new Database(join(dataDir, "mitte.db"), { readonly: true });
    try {
      expect(db.prepare("select plan from users where email = ?").get("pro@example.com")).toEqual({
        plan: "pro",
      });
    } finally {
      db.close();
    }
    expect(await runCli(["user", "set-plan", "--email", "pro@example.com", "--plan", "free"], env)).toContain(
      "pro@example.com is now on the free plan.",
    );
  });
});
