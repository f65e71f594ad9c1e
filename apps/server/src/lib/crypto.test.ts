import { createHmac, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createSecretBox, signWebhook, verifyWebhookSignature } from "./crypto.js";

describe("webhook signature", () => {
  it("is HMAC-SHA256 over `{t}.{body}` keyed with the whole whsec_ string", () => {
    const secret = "whsec_your_secret_here";
    const body = Buffer.from('{"hello":"world"}');
    const expected = createHmac("sha256", secret).update(`1739487600.${body.toString()}`).digest("hex");
    expect(signWebhook(secret, 1739487600, body)).toBe(`t=1739487600,v1=${expected}`);
  });

  it("verifies within ±300 s and rejects tampering", () => {
    const body = Buffer.from("payload");
    const header = signWebhook("whsec_k", 1000, body);
    expect(verifyWebhookSignature("whsec_k", header, body, 1300)).toBe(true);
    expect(verifyWebhookSignature("whsec_k", header, body, 1301)).toBe(false);
    expect(verifyWebhookSignature("whsec_k", header, Buffer.from("payloaD"), 1000)).toBe(false);
    expect(verifyWebhookSignature("whsec_k", "t=x,v1=y", body, 1000)).toBe(false);
  });
});

describe("secret box", () => {
  it("round-trips and never stores the plaintext", () => {
    const box = createSecretBox(randomBytes(32));
    const sealed = box.seal("whsec_abc");
    expect(sealed).not.toContain("abc");
    expect(box.open(sealed)).toBe("whsec_abc");
    expect(box.seal("whsec_abc")).not.toBe(sealed);
  });

  it("refuses a sealed value under another key", () => {
    const sealed = createSecretBox(randomBytes(32)).seal("whsec_abc");
    expect(() => createSecretBox(randomBytes(32)).open(sealed)).toThrow();
  });
});
