import type { FastifyInstance } from "fastify";
import type { EventHub, LiveEvent } from "./event-hub.js";

export interface EventsRoutesOptions {
  hub: EventHub;
  /** Comment lines keep proxies from closing an idle stream. Default 20 s. */
  heartbeatMs?: number;
}

function frame(event: LiveEvent): string {
  return `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

/** `GET /api/v1/events`: Server-Sent Events for the signed-in user only. */
export async function eventsRoutes(
  app: FastifyInstance,
  { hub, heartbeatMs = 20_000 }: EventsRoutesOptions,
): Promise<void> {
  const open = new Set<() => void>();
  // Streams never end on their own; end them when the server shuts down, or close() would wait forever.
  app.addHook("preClose", async () => {
    for (const end of open) end();
  });

  app.get("/api/v1/events", async (request, reply) => {
    const lastEventId = request.headers["last-event-id"];
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      connection: "keep-alive",
      // Tells nginx not to buffer the stream.
      "x-accel-buffering": "no",
    });
    res.write(`retry: 3000\n: connected\n\n`);
    const unsubscribe = hub.subscribe(
      request.userId,
      (event) => res.write(frame(event)),
      typeof lastEventId === "string" ? lastEventId : undefined,
    );
    const heartbeat = setInterval(() => res.write(": heartbeat\n\n"), heartbeatMs);
    const close = () => {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(end);
    };
    const end = () => {
      close();
      res.end();
    };
    open.add(end);
    request.raw.on("close", close);
    res.on("error", close);
  });
}
