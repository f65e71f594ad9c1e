import { rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "./config.js";
import { startMitte } from "./main.js";
import { useTempDirs } from "./test-support/temp-dirs.js";

describe("startMitte", () => {
  const tempDir = useTempDirs();

  it("names HOST and PORT when it cannot listen, and leaves the data directory free for another start", async () => {
    const dataDir = tempDir("listen");
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve));
    const port = (taken.address() as { port: number }).port;
    const config = (p: number) =>
      loadConfig({ MITTE_DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(p), LOG_LEVEL: "silent" });
    try {
      await expect(startMitte(config(port))).rejects.toThrow(
        `Cannot listen on 127.0.0.1:${port} (HOST, PORT): listen EADDRINUSE`,
      );
    } finally {
      taken.close();
    }
    const mitte = await startMitte(config(0));
    await mitte.close(0);
  });

  it("is no longer ready once its SQLite file is deleted under it", async () => {
    const dataDir = tempDir("readyz");
    const mitte = await startMitte(
      loadConfig({ MITTE_DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: "0", LOG_LEVEL: "silent" }),
    );
    try {
      expect((await fetch(`${mitte.url}/readyz`)).status).toBe(200);
      // Queries keep answering from the unlinked file; everything written from now on would be lost.
      for (const file of ["mitte.db", "mitte.db-wal", "mitte.db-shm"])
        rmSync(join(dataDir, file), { force: true });
      const ready = await fetch(`${mitte.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: { message: string } }).error.message).toBe(
        "The database file was deleted or replaced; restart Mitte.",
      );
    } finally {
      await mitte.close(0);
    }
  });
});
