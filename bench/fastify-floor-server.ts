/**
 * bench/bounds.ts's Fastify floor: Fastify configured as Mitte's ingest route is (opaque-bytes body parser
 * with a body limit, POST/PUT/PATCH on /api/v1/h/:slug, no request logging) answering 202 with the same
 * JSON as S1's baseline, and doing nothing else: no lookup, no admission, no storage. What the HTTP
 * framework alone leaves of S1's ratio. Reports {type:"ready", port} over IPC.
 */
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: 1024 * 1024 }, (_request, body, done) =>
  done(null, body),
);

let counter = 0;
app.route<{ Params: { slug: string } }>({
  method: ["POST", "PUT", "PATCH"],
  url: "/api/v1/h/:slug",
  handler: async (_request, reply) => {
    counter += 1;
    return reply.code(202).send({ id: `log_${String(counter).padStart(12, "0")}`, status: "queued" });
  },
});

const address = await app.listen({ port: 0, host: "127.0.0.1" });
process.send?.({ type: "ready", port: Number(new URL(address).port) });
process.on("disconnect", () => process.exit(0));
// Exit normally on the bench's SIGTERM, so that --cpu-prof (HELPER_NODE_ARGS) can write its profile.
process.on("SIGTERM", () => process.exit(0));
