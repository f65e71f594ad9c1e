import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: { conditions: ["mitte-source"] },
  test: {
    include: ["apps/**/src/**/*.test.ts", "packages/**/src/**/*.test.ts"],
    // Process-level tests spawn servers and send real traffic; keep files parallel but bounded on 2 cores.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
