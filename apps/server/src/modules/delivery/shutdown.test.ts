import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type MitteProcess, runCli, startMitteProcess } from "../../test-support/mitte-process.js";

/**
 * SIGTERM while a target hangs. Before, the process waited for the hung attempt until the delivery timeout
 * (30 s by default, 2 min here) however short the grace period. Now the attempt is cut short when the grace
 * period ends, is not recorded (on Free it would have been the webhook's only attempt, and the webhook
 * would be lost as "failed"), and the restarted process delivers the webhook.
 */
let dataDir: string;
let target: Server;
let targetUrl: string;
let hang = true;
const deliveryIds: string[] = [];
const hanging = new Set<ServerResponse>();
let mitte: MitteProcess | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mitte-shutdown-"));
  target = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      deliveryIds.push(String(request.headers["x-mitte-delivery-id"]));
      if (hang) hanging.add(response);
      else response.end("ok");
    });
  });
  await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve));
  targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/hook`;
});

afterAll(async () => {
  mitte?.child.kill("SIGKILL");
  for (const response of hanging) response.destroy();
  target.closeAllConnections();
  await new Promise<void>((resolve) => target.close(() => resolve()));
  rmSync(dataDir, { recursive: true, force: true });
});

const env = () => ({
  MITTE_DATA_DIR: dataDir,
  MITTE_ALLOW_PRIVATE_TARGETS: "127.0.0.1/32",
  MITTE_RATE_LIMIT_ENDPOINT_PER_MIN: "0",
  MITTE_RATE_LIMIT_IP_PER_MIN: "0",
  MITTE_DELIVERY_TIMEOUT_MS: "120000",
  MITTE_SHUTDOWN_GRACE_MS: "300",
});

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("SIGTERM with a delivery hung on its target", () => {
  it("exits after the grace period, counts no attempt, and delivers the webhook after the restart", async () => {
    const { apiKey } = JSON.parse(
      await runCli(["user", "create", "--email", "shutdown@example.com", "--json"], env()),
    ) as { apiKey: string };
    const auth = { authorization: `Bearer ${apiKey}` };
    mitte = await startMitteProcess(env());
    const port = new URL(mitte.url).port;
    const created = await fetch(`${mitte.url}/api/v1/endpoints`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ name: "hung", targetUrl }),
    });
    const endpoint = (await created.json()) as { slug: string };
    const ingested = await fetch(`${mitte.url}/api/v1/h/${endpoint.slug}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event: "order.paid" }),
    });
    expect(ingested.status).toBe(202);
    const { id } = (await ingested.json()) as { id: string };
    await waitFor(() => deliveryIds.length === 1, "the attempt to reach the target");

    // The hung attempt would hold a graceful close for 2 minutes; the test's own timeout is far shorter.
    mitte.child.kill("SIGTERM");
    expect(await mitte.exited).toBe(0);
    expect(mitte.output()).not.toMatch(/shutdown failed/);

    hang = false;
    mitte = await startMitteProcess({ ...env(), PORT: port });
    await waitFor(() => deliveryIds.length === 2, "the webhook to be delivered again");
    expect(deliveryIds).toEqual([id, id]);
    let log: { status?: string; attempts?: number } = {};
    const deadline = Date.now() + 15_000;
    while (log.status !== "delivered" && Date.now() < deadline) {
      log = (await (await fetch(`${mitte.url}/api/v1/logs/${id}`, { headers: auth })).json()) as typeof log;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Free plan: one attempt, the one that reached the target after the restart; the cut-short one is not counted.
    expect(log).toMatchObject({ status: "delivered", attempts: 1 });
  }, 60_000);
});
