/**
 * Hop-by-hop, proxy and CDN headers that are never forwarded (the product's documented list of 16),
 * plus the two that describe the original transfer rather than the webhook (see SET_BY_CLIENT).
 */
export const EXCLUDED_HEADERS: ReadonlySet<string> = new Set([
  "host",
  "connection",
  "proxy-connection",
  "transfer-encoding",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "upgrade",
  "cf-ray",
  "cf-visitor",
  "cf-connecting-ip",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
]);

/**
 * content-length: the HTTP client sets it from the bytes actually sent. expect: a sender's
 * `Expect: 100-continue` (curl sends it for larger bodies) was answered when the webhook arrived; the body
 * is already here, and undici refuses to send the header at all, so forwarding it failed every attempt.
 */
const SET_BY_CLIENT = new Set(["content-length", "expect"]);

/** Header names a `Connection` header lists: hop-by-hop for that one connection (RFC 9110 §7.6.1). */
function connectionOptions(received: Record<string, string | string[] | undefined>): Set<string> {
  const options = new Set<string>();
  for (const [name, value] of Object.entries(received)) {
    if (name.toLowerCase() !== "connection" || value === undefined) continue;
    for (const token of (Array.isArray(value) ? value.join(",") : value).split(",")) {
      const option = token.trim().toLowerCase();
      if (option) options.add(option);
    }
  }
  return options;
}

/**
 * Original headers minus the excluded ones and those the sender's `Connection` header names; Mitte's own
 * `x-mitte-*` headers cannot be spoofed by a sender.
 */
export function forwardableHeaders(
  received: Record<string, string | string[] | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  const hopByHop = connectionOptions(received);
  for (const [name, value] of Object.entries(received)) {
    const lower = name.toLowerCase();
    if (
      value === undefined ||
      EXCLUDED_HEADERS.has(lower) ||
      SET_BY_CLIENT.has(lower) ||
      hopByHop.has(lower) ||
      lower.startsWith("x-mitte-")
    )
      continue;
    out[lower] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** Appends the query string received at ingest to the target URL. */
export function targetUrlWithQuery(targetUrl: string, query: string): string {
  if (!query || query === "?") return targetUrl;
  const hashAt = targetUrl.indexOf("#");
  const base = hashAt === -1 ? targetUrl : targetUrl.slice(0, hashAt);
  return base.includes("?") ? `${base}&${query.slice(1)}` : `${base}${query}`;
}
