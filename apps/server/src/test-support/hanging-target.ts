import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A delivery target on loopback that records each request's delivery id and, while `hang` is true, never
 * answers it (the attempt runs until Mitte's timeout or shutdown). Set `hang = false` to answer 200.
 */
export async function startHangingTarget() {
  const deliveryIds: string[] = [];
  const held = new Set<ServerResponse>();
  const target = {
    hang: true,
    deliveryIds,
    url: "",
    close: () =>
      new Promise<void>((resolve) => {
        for (const response of held) response.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => {
      deliveryIds.push(String(request.headers["x-mitte-delivery-id"]));
      if (target.hang) held.add(response);
      else response.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  target.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return target;
}

/** Polls `condition` every 20 ms for up to `timeoutMs`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
