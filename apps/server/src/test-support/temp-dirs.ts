import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

/**
 * Call inside a `describe`: returns a function that makes a fresh directory under the OS temp dir
 * (`mitte-<label>-…`), and removes every directory it made after each test.
 */
export function useTempDirs(): (label: string) => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return (label) => {
    const dir = mkdtempSync(join(tmpdir(), `mitte-${label}-`));
    dirs.push(dir);
    return dir;
  };
}
