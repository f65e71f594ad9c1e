import { describe, expect, it } from "vitest";
import { EXCLUDED_HEADERS, forwardableHeaders, targetUrlWithQuery } from "./forward-headers.js";

describe("forwarded headers", () => {
  it("drops exactly the documented 16 hop-by-hop/proxy headers plus content-length and expect", () => {
    expect(EXCLUDED_HEADERS.size).toBe(16);
    const received: Record<string, string> = {
      "content-type": "application/json",
      "x-keep": "1",
      "content-length": "10",
      expect: "100-continue",
    };
    for (const name of EXCLUDED_HEADERS) received[name] = "drop";
    expect(forwardableHeaders(received)).toEqual({ "content-type": "application/json", "x-keep": "1" });
  });

  it("joins repeated headers and strips spoofed x-mitte-* headers", () => {
    expect(
      forwardableHeaders({ "x-multi": ["a", "b"], "X-Mitte-Signature": "forged", "x-mitte-test": "true" }),
    ).toEqual({ "x-multi": "a, b" });
  });

  it("drops the headers the sender's Connection header declares hop-by-hop", () => {
    expect(
      forwardableHeaders({
        connection: "keep-alive, X-Trace-Hop , x-debug",
        "x-trace-hop": "1",
        "X-Debug": "on",
        "x-keep": "yes",
      }),
    ).toEqual({ "x-keep": "yes" });
  });

  it.each([
    ["http://t/hook", "", "http://t/hook"],
    ["http://t/hook", "?a=1", "http://t/hook?a=1"],
    ["http://t/hook?k=v", "?a=1", "http://t/hook?k=v&a=1"],
    ["http://t/hook#frag", "?a=1", "http://t/hook?a=1"],
  ])("%s + %s → %s", (target, query, expected) => {
    expect(targetUrlWithQuery(target, query)).toBe(expected);
  });
});
