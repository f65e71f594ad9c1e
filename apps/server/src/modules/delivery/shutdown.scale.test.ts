import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHangingTarget, waitFor } from "../../test-support/hanging-target.js";
import {
  type MitteProcess,
  provisionEndpoint,
  scaleProcessEnv,
  sendWebhook,
  startMitteProcess,
  waitForLogStatus,
} from "../../test-support/mitte-process.js";
import { createTestSchema, testDatabaseUrl, testRedisUrl } from "../../test-support/test-storage.js";

/**
 * Scale mode: SIGTERM to a worker whose delivery hangs on its target. BullMQ's close waits for running jobs
 * (a forced close joins the graceful one), so the attempt ran to its timeout and was recorded as a failure;
 * on Free, the webhook was lost as "failed". Now it is cut short when the grace period ends, handed back
 * to the queue without an attempt, and another worker delivers it.
 */
let env: Record<string, string>;
let dropSchema: () => Promise<void>;
let target: Awaited<ReturnType<typeof startHangingTarget>>;
const processes: MitteProcess[] = [];

beforeAll(async () => {
  if (!testDatabaseUrl || !testRedisUrl)
    throw new Error("scale tests need MITTE_TEST_DATABASE_URL and MITTE_TEST_REDIS_URL");
  const schema = await createTestSchema();
  dropSchema = schema.drop;
  target = await startHangingTarget();
  env = {
    ...scaleProcessEnv({
      databaseUrl: testDatabaseUrl,
      schema: schema.schema,
      redisUrl: testRedisUrl,
      prefix: `mitte-shutdown-${Math.random().toString(36).slice(2, 8)}`,
    }),
    MITTE_DELIVERY_TIMEOUT_MS: "120000",
    MITTE_SHUTDOWN_GRACE_MS: "300",
  };
}, 60_000);

afterAll(async () => {
  for (const process of processes) process.child.kill("SIGKILL");
  await target?.close();
  await dropSchema?.();
});

describe("scale mode: SIGTERM to a worker with a delivery hung on its target", () => {
  it("exits after the grace period, counts no attempt, and another worker delivers the webhook", async () => {
    const [api, worker] = await Promise.all([
      startMitteProcess({ ...env, MITTE_ROLE: "api" }),
      startMitteProcess({ ...env, MITTE_ROLE: "worker" }),
    ]);
    processes.push(api!, worker!);
    const { apiKey, slug } = await provisionEndpoint(env, api!.url, "free@example.com", target.url, "free");
    const id = await sendWebhook(api!.url, slug);
    await waitFor(() => target.deliveryIds.length === 1, "the attempt to reach the target");

    // The hung attempt runs for 2 minutes unless shutdown cuts it; the test's own timeout is far shorter.
    worker!.child.kill("SIGTERM");
    expect(await worker!.exited).toBe(0);

    target.hang = false;
    processes.push(await startMitteProcess({ ...env, MITTE_ROLE: "worker" }));
    await waitFor(() => target.deliveryIds.length === 2, "another worker to deliver the webhook", 30_000);
    expect(target.deliveryIds).toEqual([id, id]);
    const log = await waitForLogStatus(api!.url, apiKey, id, "delivered");
    // Free plan: one attempt in all, the one after the hand-back; the cut-short one is not counted.
    expect(log).toMatchObject({ status: "delivered", attempts: 1 });
  }, 60_000);
});
