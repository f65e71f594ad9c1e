import { defineConfig } from "vitest/config";

/** Multi-process scale-mode tests (`*.scale.test.ts`) run only where PostgreSQL and Redis are configured. */
const scale = Boolean(process.env.MITTE_TEST_DATABASE_URL && process.env.MITTE_TEST_REDIS_URL);

export default defineConfig({
  // Workspace packages resolve to their TypeScript sources (the "mitte-source" export condition), never to
  // a possibly stale dist/.
  resolve: { conditions: ["mitte-source"] },
  ssr: { resolve: { conditions: ["mitte-source"], externalConditions: ["mitte-source"] } },
  test: {
    include: ["apps/**/src/**/*.test.ts", "packages/**/src/**/*.test.ts"],
    exclude: scale ? ["**/node_modules/**"] : ["**/node_modules/**", "**/*.scale.test.ts"],
    // Process-level tests spawn servers and send real traffic; keep files parallel but bounded on 2 cores.
    maxWorkers: 2,
    globalSetup: ["apps/server/src/test-support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
