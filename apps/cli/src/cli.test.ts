import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { runCli } from "../../server/src/test-support/mitte-process.js";
import { useTempDirs } from "../../server/src/test-support/temp-dirs.js";

describe("mitte user set-plan", () => {
  const tempDir = useTempDirs();

  it("requires --plan instead of moving the user to Free", async () => {
    const dataDir = tempDir("cli");
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
