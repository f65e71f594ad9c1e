import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startMitteProcess } from "../../test-support/mitte-process.js";
import { useTempDirs } from "../../test-support/temp-dirs.js";
import { DataDirInUseError, lockDataDir } from "./data-dir-lock.js";

describe("lockDataDir", () => {
  const tempDir = useTempDirs();

  it("lets one holder have a data directory at a time, and the next one after release", () => {
    // A directory that does not exist yet: the lock creates it.
    const dataDir = join(tempDir("lock"), "data");
    const first = lockDataDir(dataDir);
    expect(() => lockDataDir(dataDir)).toThrow(DataDirInUseError);
    expect(() => lockDataDir(dataDir)).toThrow(/Another Mitte server is running on/);
    first.release();
    const second = lockDataDir(dataDir);
    second.release();
    second.release(); // idempotent
  });

  it("refuses a second `mitte start` on the same data directory, and allows one after the first is killed", async () => {
    const dataDir = tempDir("lock");
    const env = { MITTE_DATA_DIR: dataDir };
    const first = await startMitteProcess(env);
    try {
      await expect(startMitteProcess(env)).rejects.toThrow(/Another Mitte server is running on/);
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    } finally {
      first.child.kill("SIGKILL");
      await first.exited;
    }
    // The lock is the operating system's: it ended with the killed process.
    const next = await startMitteProcess(env);
    next.child.kill("SIGTERM");
    expect(await next.exited).toBe(0);
  });
});
