import { Agent, request } from "undici";

export interface LoadResult {
  /** Log ids of webhooks answered 202. */
  accepted: Set<string>;
  /** Count of answers by status; 0 for requests that got no answer (connection refused or cut). */
  statuses: Map<number, number>;
}

/**
 * Closed-loop load: `concurrency` senders POST small JSON webhooks, spread round-robin over `baseUrls`,
 * until `stop()` says so or `total` requests were sent. Every 202's log id is recorded.
 */
export function startLoad(options: {
  baseUrls: string[];
  slug: string;
  concurrency: number;
  total?: number;
}) {
  const result: LoadResult = { accepted: new Set(), statuses: new Map() };
  const agent = new Agent({ connections: options.concurrency });
  let sent = 0;
  let stopped = false;
  const count = (status: number) => result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);
  const sender = async (index: number) => {
    while (!stopped && (options.total === undefined || sent < options.total)) {
      const n = sent++;
      const base = options.baseUrls[(index + n) % options.baseUrls.length]!;
      try {
        const response = await request(`${base}/api/v1/h/${options.slug}`, {
          method: "POST",
          dispatcher: agent,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ n, pad: "x".repeat(256) }),
        });
        const body = (await response.body.json()) as { id?: string };
        count(response.statusCode);
        if (response.statusCode === 202 && body.id) result.accepted.add(body.id);
      } catch {
        count(0);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  const done = Promise.all(Array.from({ length: options.concurrency }, (_, i) => sender(i))).then(() =>
    agent.close(),
  );
  return {
    result,
    /** Resolves when the senders finished (total reached or stopped). */
    done,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

export function statusSummary(statuses: Map<number, number>): string {
  return [...statuses.entries()].map(([status, n]) => `${status || "no answer"}: ${n}`).join(", ");
}

/** Waits until every accepted id was received, or the deadline passes; returns what is missing. */
export async function waitForDelivery(
  accepted: Set<string>,
  receivedIds: () => Set<string>,
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const received = receivedIds();
    const missing = [...accepted].filter((id) => !received.has(id));
    if (missing.length === 0 || Date.now() > deadline) return missing;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
