import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";
import { createDeps } from "./deps.js";
import { createServices } from "./services.js";
import { useTempDirs } from "./test-support/temp-dirs.js";

describe("createDeps", () => {
  const tempDir = useTempDirs();

  it("refuses to start with a key that does not open the stored signing secrets", async () => {
    const dataDir = tempDir("key");
    const config = (key: string) =>
      loadConfig({ MITTE_DATA_DIR: dataDir, MITTE_SECRET_KEY: key, LOG_LEVEL: "silent" });
    const deps = await createDeps(config("11".repeat(32)));
    try {
      const services = createServices(deps);
      const created = await services.users.createUser({ email: "key@example.com", plan: "pro" });
      if (created.outcome !== "created") throw new Error("setup");
      const endpoint = await services.endpoints.create(created.user.id, {
        name: "signed",
        targetUrl: "https://example.com/hooks",
      });
      expect(endpoint.outcome).toBe("created");
    } finally {
      await deps.close({ graceMs: 0 });
    }

    // Before, this started, and every webhook to the endpoint was answered 500.
    const wrongKey = createDeps(config("22".repeat(32)));
    await expect(wrongKey).rejects.toThrow(ConfigError);
    await expect(wrongKey).rejects.toThrow(/MITTE_SECRET_KEY does not open the signing secrets/);
    // The right key still opens them.
    const again = await createDeps(config("11".repeat(32)));
    await again.close({ graceMs: 0 });
  });

  it("refuses a data directory whose database lost its secret.key, without writing a new key", async () => {
    const dataDir = tempDir("key");
    const config = loadConfig({ MITTE_DATA_DIR: dataDir, LOG_LEVEL: "silent" });
    await (await createDeps(config)).close({ graceMs: 0 });
    rmSync(join(dataDir, "secret.key"));
    await expect(createDeps(config)).rejects.toThrow(/secret.key is missing beside an existing database/);
    expect(existsSync(join(dataDir, "secret.key"))).toBe(false);
  });
});
