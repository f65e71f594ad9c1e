import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHangingTarget, waitFor } from "../../test-support/hanging-target.js";
import {
  embeddedProcessEnv,
  type MitteProcess,
  provisionEndpoint,
  sendWebhook,
  startMitteProcess,
  waitForLogStatus,
} from "../../test-support/mitte-process.js";

/**
 * SIGTERM while a target hangs. Before, the process waited for the hung attempt until the delivery timeout
 * (30 s by default, 2 min here) however short the grace period. Now the attempt is cut short when the grace
 * period ends, is not recorded (on Free it would have been the webhook's only attempt, and the webhook
 * would be lost as "failed"), and the restarted process delivers the webhook.
 */
let dataDir: string;
let target: Awaited<ReturnType<typeof startHangingTarget>>;
let mitte: MitteProcess | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mitte-shutdown-"));
  target = await startHangingTarget();
});

afterAll(async () => {
  mitte?.child.kill("SIGKILL");
  await target.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = () => ({
  ...embeddedProcessEnv(dataDir),
  MITTE_DELIVERY_TIMEOUT_MS: "120000",
  MITTE_SHUTDOWN_GRACE_MS: "300",
});

describe("SIGTERM with a delivery hung on its target", () => {
  it("exits after the grace period, counts no attempt, and delivers the webhook after the restart", async () => {
    mitte = await startMitteProcess(env());
    const port = new URL(mitte.url).port;
    const { apiKey, slug } = await provisionEndpoint(
      env(),
      mitte.url,
      "shutdown@example.com",
      target.url,
      "free",
    );
    const id = await sendWebhook(mitte.url, slug, { event: "order.paid" });
    await waitFor(() => target.deliveryIds.length === 1, "the attempt to reach the target");

    // The hung attempt would hold a graceful close for 2 minutes; the test's own timeout is far shorter.
    mitte.child.kill("SIGTERM");
    expect(await mitte.exited).toBe(0);
    expect(mitte.output()).not.toMatch(/shutdown failed/);

    target.hang = false;
    mitte = await startMitteProcess({ ...env(), PORT: port });
    await waitFor(() => target.deliveryIds.length === 2, "the webhook to be delivered again");
    expect(target.deliveryIds).toEqual([id, id]);
    const log = await waitForLogStatus(mitte.url, apiKey, id, "delivered");
    // Free plan: one attempt, the one that reached the target after the restart; the cut-short one is not counted.
    expect(log).toMatchObject({ status: "delivered", attempts: 1 });
  }, 60_000);

  it("does not wait past the grace period for a sender trickling its request body", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mitte-shutdown-slow-"));
    try {
      const slow = await startMitteProcess({ MITTE_DATA_DIR: dir, MITTE_SHUTDOWN_GRACE_MS: "300" });
      const socket = connect(Number(new URL(slow.url).port), "127.0.0.1");
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      socket.on("error", () => {});
      // Headers and a first byte of 1,000 promised: Node's 408 checks stop once the server closes, so
      // before, this request held the graceful stop forever.
      socket.write(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{",
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      slow.child.kill("SIGTERM");
      expect(await slow.exited).toBe(0);
      socket.destroy();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
