import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  embeddedProcessEnv,
  type MitteProcess,
  runCli,
  startMitteProcess,
} from "../../test-support/mitte-process.js";
import { type Sink, startSink } from "../../test-support/sink.js";

/**
 * A 202 means committed. A real `mitte start` process is killed with SIGKILL while it ingests under load
 * and delivers to a slow target; after a restart on the same data directory, every webhook that was
 * answered 202 must reach the target (at-least-once; duplicates are counted and allowed).
 */
let dataDir: string;
let sink: Sink;
let mitte: MitteProcess | undefined;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), "mitte-crash-"));
  // A slow target, so deliveries are in flight when the process dies.
  sink = await startSink(() => ({ status: 200 }));
});

afterAll(async () => {
  mitte?.child.kill("SIGKILL");
  await sink.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const env = () => ({ ...embeddedProcessEnv(dataDir), MITTE_DELIVERY_CONCURRENCY: "8" });

describe("kill -9 during ingestion and delivery", () => {
  it("delivers every webhook that got a 202 after a restart", async () => {
    const { apiKey } = JSON.parse(
      await runCli(["user", "create", "--email", "crash@example.com", "--plan", "pro", "--json"], env()),
    );
    mitte = await startMitteProcess(env());
    const port = new URL(mitte.url).port;
    const created = await fetch(`${mitte.url}/api/v1/endpoints`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "crash", targetUrl: `${sink.url}/hook` }),
    });
    const endpoint = (await created.json()) as { slug: string };

    const accepted = new Set<string>();
    let refusedOrBroken = 0;
    const agent = new Agent({ connections: 32 });
    let stop = false;
    const sender = async () => {
      while (!stop) {
        try {
          const response = await request(`${mitte!.url}/api/v1/h/${endpoint.slug}`, {
            method: "POST",
            dispatcher: agent,
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ at: Date.now(), pad: "x".repeat(512) }),
          });
          const body = (await response.body.json()) as { id?: string };
          if (response.statusCode === 202 && body.id) accepted.add(body.id);
          else refusedOrBroken++;
        } catch {
          refusedOrBroken++;
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    };
    const senders = Array.from({ length: 16 }, sender);

    // Let load build up and deliveries start, then kill without warning.
    while (accepted.size < 1500) await new Promise((resolve) => setTimeout(resolve, 20));
    const deliveredBeforeKill = sink.received.length;
    mitte.child.kill("SIGKILL");
    expect(await mitte.exited).toBe("SIGKILL");
    await new Promise((resolve) => setTimeout(resolve, 200));
    stop = true;
    await Promise.all(senders);
    await agent.close();
    expect(deliveredBeforeKill).toBeLessThan(accepted.size); // the kill really hit work in progress

    mitte = await startMitteProcess({ ...env(), PORT: port });
    const deadline = Date.now() + 45_000;
    const receivedIds = () => new Set(sink.received.map((r) => String(r.headers["x-mitte-delivery-id"])));
    while (Date.now() < deadline) {
      const received = receivedIds();
      if ([...accepted].every((id) => received.has(id))) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const received = receivedIds();
    const lost = [...accepted].filter((id) => !received.has(id));
    const duplicates = sink.received.length - received.size;
    console.log(
      `kill -9: ${accepted.size} answered 202, ${refusedOrBroken} refused or cut off, ${deliveredBeforeKill} delivered before the kill, ` +
        `${lost.length} lost, ${duplicates} duplicate deliveries after restart`,
    );
    expect(lost).toEqual([]);
  }, 90_000);
});
