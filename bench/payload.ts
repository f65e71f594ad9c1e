/** Webhook bodies for the benchmarks: realistic Stripe-like event JSON padded to exactly 1024 bytes. */

export const BODY_BYTES = 1024;

/** Headers a Stripe delivery carries (source detection in Mitte sees a Stripe webhook). */
export const WEBHOOK_HEADERS: Record<string, string> = {
  "content-type": "application/json; charset=utf-8",
  "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
  "stripe-signature":
    "t=1717171717,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
};

/** Event id carried by body number `n`; fixed width so every body has the same layout. */
/** `bench` ids are measured; `runin` ids (same length) belong to a run-in that only warms Mitte up. */
export type EventKind = "bench" | "runin";

export function eventId(n: number, kind: EventKind = "bench"): string {
  return `evt_${kind}_${String(n).padStart(10, "0")}`;
}

/** A 1024-byte JSON body whose top-level `id` is `eventId(n)`. */
export function makeBody(n: number, kind: EventKind = "bench"): string {
  const id = eventId(n, kind);
  const event = {
    id,
    object: "event",
    api_version: "2024-06-20",
    created: 1_717_171_717,
    data: {
      object: {
        id: "pi_3PXtQ2LkdIwHu7ix0oW9aQxY",
        object: "payment_intent",
        amount: 2000,
        amount_received: 2000,
        currency: "usd",
        customer: "cus_QOj6yVZ3bH2Ihl",
        description: "Subscription update",
        livemode: false,
        metadata: { order_id: "6735", note: "" },
        payment_method: "pm_1PXtQ1LkdIwHu7ixQgjz4S0u",
        payment_method_types: ["card"],
        status: "succeeded",
      },
    },
    livemode: false,
    pending_webhooks: 1,
    request: { id: "req_8bCKmrHdVjBdq1", idempotency_key: "b1b8f7a4-4a48-4bd5-9d39-1a5b8f0e2c63" },
    type: "payment_intent.succeeded",
  };
  const bare = JSON.stringify(event);
  const missing = BODY_BYTES - Buffer.byteLength(bare);
  if (missing < 0) throw new Error(`bench body is ${-missing} bytes over ${BODY_BYTES}`);
  event.data.object.metadata.note = "x".repeat(missing);
  const body = JSON.stringify(event);
  if (Buffer.byteLength(body) !== BODY_BYTES) throw new Error("bench body padding is off");
  return body;
}

/** Reads the event id back out of a received body (the sinks use this). */
export function idOfBody(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { id?: unknown };
    return typeof parsed.id === "string" ? parsed.id : null;
  } catch {
    return null;
  }
}
