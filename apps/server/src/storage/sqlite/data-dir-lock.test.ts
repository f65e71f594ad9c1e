import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startMitteProcess } from "../../test-support/mitte-process.js";
import { DataDirInUseError, lockDataDir } from "./data-dir-lock.js";

describe("lockDataDir", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("lets one holder have a data directory at a time, and the next one after release", () => {
    const dataDir = join(mkdtempSync(join(tmpdir(), "mitte-lock-")), "data");
    dirs.push(dataDir);
    const first = lockDataDir(dataDir);
    expect(() => lockDataDir(dataDir)).toThrow(DataDirInUseError);
    expect(() => lockDataDir(dataDir)).toThrow(/Another Mitte server is running on/);
    first.release();
    const second = lockDataDir(dataDir);
    second.release();
    second.release(); // idempotent
  });

  it("refuses a second `mitte start` on the same data directory, and allows one after the first is killed", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "mitte-lock-"));
    dirs.push(dataDir);
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
