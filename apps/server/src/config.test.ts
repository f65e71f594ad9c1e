import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

describe("config", () => {
  it("has documented defaults", () => {
    const config = loadConfig({});
    expect(config.http.port).toBe(3000);
    expect(config.http.requestTimeoutMs).toBe(30_000);
    expect(config.storage.dataDir).toBe("./data");
    expect(config.ingest).toEqual({
      maxPayloadBytes: 10 * 1024 * 1024,
      rateLimitEndpointPerMin: 100,
      rateLimitIpPerMin: 200,
      rateLimitBlockMs: 120_000,
    });
    expect(config.delivery.timeoutMs).toBe(30_000);
    expect(config.delivery.allowPrivateTargets).toEqual([]);
  });

  it("parses lists and treats empty strings as unset", () => {
    const config = loadConfig({
      MITTE_ALLOW_PRIVATE_TARGETS: " 127.0.0.1/32, ::1/128 ,",
      PORT: " ",
      MITTE_DELIVERY_TIMEOUT_MS: "",
    });
    expect(config.delivery.timeoutMs).toBe(30_000);
    expect(config.delivery.allowPrivateTargets).toEqual(["127.0.0.1/32", "::1/128"]);
    expect(config.http.port).toBe(3000);
  });

  it("fails at boot naming the variable", () => {
    expect(() => loadConfig({ PORT: "eighty" })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: "0x10" })).toThrow(/PORT: expected a whole number/);
    expect(() => loadConfig({ MITTE_DELIVERY_TIMEOUT_MS: "1e4" })).toThrow(/MITTE_DELIVERY_TIMEOUT_MS/);
    expect(loadConfig({ PORT: " 8080 " }).http.port).toBe(8080);
    expect(() => loadConfig({ MITTE_DELIVERY_TIMEOUT_MS: "5" })).toThrow(/MITTE_DELIVERY_TIMEOUT_MS/);
    expect(() => loadConfig({ MITTE_REQUEST_TIMEOUT_MS: "0" })).toThrow(/MITTE_REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ MITTE_ALLOW_PRIVATE_TARGETS: "127.0.0.1/32,notacidr" })).toThrow(
      /MITTE_ALLOW_PRIVATE_TARGETS: invalid CIDR in private-target allow-list: "notacidr"/,
    );
  });
});
