import { afterEach, describe, expect, it, vi } from "vitest";
import {
  detectSource,
  type IncomingHeaders,
  isSourceId,
  MAX_DETECTION_BODY_BYTES,
  type SourceId,
  sourceIds,
  sourceNames,
} from "./source-detection.js";

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

const svixHeaders = {
  "content-type": "application/json",
  "user-agent": "Svix-Webhooks/1.62.0",
  "svix-id": "msg_2mYkYB1y7pJq3sLzK3Z8Yb2Q9bT",
  "svix-timestamp": "1723456789",
  "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
} satisfies IncomingHeaders;

interface ProviderCase {
  name: string;
  expected: SourceId;
  headers: IncomingHeaders;
  body?: Buffer;
}

const providerCases: ProviderCase[] = [
  {
    name: "Stripe",
    expected: "stripe",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
      "stripe-signature":
        "t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
    },
    body: json({ id: "evt_1", object: "event", type: "payment_intent.succeeded" }),
  },
  {
    name: "Shopify",
    expected: "shopify",
    headers: {
      "content-type": "application/json",
      "user-agent": "Shopify-Captain-Hook",
      "x-shopify-topic": "orders/create",
      "x-shopify-hmac-sha256": "XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM=",
      "x-shopify-shop-domain": "example.myshopify.com",
      "x-shopify-api-version": "2024-07",
      "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    },
  },
  {
    name: "Paddle",
    expected: "paddle",
    headers: {
      "content-type": "application/json",
      "paddle-signature": "ts=1671552777;h1=eb4d0dc8853be92b7f063b9f3ba5233eb920a09459b6e6b2c26705b4364db151",
    },
  },
  {
    name: "Lemon Squeezy",
    expected: "lemon-squeezy",
    headers: {
      "content-type": "application/json",
      "x-event-name": "order_created",
      "x-signature": "a3d7c2e4b1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4",
    },
  },
  {
    name: "PayPal",
    expected: "paypal",
    headers: {
      "content-type": "application/json",
      "paypal-transmission-id": "69cd13f0-d67a-11e5-baa3-778b53f4ae55",
      "paypal-transmission-time": "2016-02-18T20:01:35Z",
      "paypal-transmission-sig":
        "lmI95Jx3Y9nhR5SJWlHVIWpg4AgFk7n9bCHSRxbrd8A9zrhdu2rMyFrmz+Zjh3s3boXB07VXCXUZy/UFzUlnGJn0wDugt7FlSvdKeIJenLRemUxYCPVoEZzg9VFNqOa48gMkvF+XTpxBeUx/kWy6B5cp7GkT2+pOowfRK7OaynuxUoKW3JcMWw272VKjLTtTAShncla7tGF+55rxyt2KNZIIqxNMJ48RDZheGU5w1npu9dZHnPgTXB9iomeVRoD8O/jhRpnKsGrDschyNdkeh81BJJMH4Ctc6lnCCquoP/GzCzz33MMsNdid7vL/NIWaCsekQpW26FpWPi/tfj8nLA==",
      "paypal-cert-url":
        "https://api.sandbox.paypal.com/v1/notifications/certs/CERT-360caa42-fca2a594-1d93a270",
      "paypal-auth-algo": "SHA256withRSA",
    },
  },
  {
    name: "Square",
    expected: "square",
    headers: {
      "content-type": "application/json",
      "square-version": "2024-07-17",
      "x-square-hmacsha256-signature": "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=",
    },
  },
  {
    name: "GitHub",
    expected: "github",
    headers: {
      "content-type": "application/json",
      "user-agent": "GitHub-Hookshot/044aadd",
      "x-github-event": "push",
      "x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
      "x-github-hook-id": "292430182",
      "x-hub-signature": "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6",
      "x-hub-signature-256": "sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c",
    },
  },
  {
    name: "GitLab",
    expected: "gitlab",
    headers: {
      "content-type": "application/json",
      "user-agent": "GitLab/17.5.0",
      "x-gitlab-event": "Push Hook",
      "x-gitlab-token": "my-secret-token",
      "x-gitlab-instance": "https://gitlab.com",
      "x-gitlab-webhook-uuid": "16cb3b76-0b0c-4b4f-a1bf-6b1e1e3e3a3f",
    },
  },
  {
    name: "Bitbucket",
    expected: "bitbucket",
    headers: {
      "content-type": "application/json",
      "user-agent": "Bitbucket-Webhooks/2.0",
      "x-event-key": "repo:push",
      "x-hook-uuid": "{cb8a8f80-5c4b-4c2c-a4b0-6e3e9fa8a1d4}",
      "x-request-uuid": "7d0c1d5a-8a7b-4a2c-9a1b-2c3d4e5f6a7b",
      "x-attempt-number": "1",
    },
  },
  {
    name: "Slack",
    expected: "slack",
    headers: {
      "content-type": "application/json",
      "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
      "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
      "x-slack-request-timestamp": "1531420618",
    },
  },
  {
    name: "Discord",
    expected: "discord",
    headers: {
      "content-type": "application/json",
      "user-agent": "Discord-Interactions/1.0 (+https://discord.com)",
      "x-signature-ed25519":
        "2fe3ba2a27d8a6d2b0e8f5e1a3b2c4d6e8f0a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3",
      "x-signature-timestamp": "1723456789",
    },
  },
  {
    name: "Twilio",
    expected: "twilio",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "user-agent": "TwilioProxy/1.1",
      "x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
      "i-twilio-idempotency-token": "2f3c1c4e-1e5a-4b7a-9c2d-3e4f5a6b7c8d",
    },
  },
  {
    name: "SendGrid (signed event webhook)",
    expected: "sendgrid",
    headers: {
      "content-type": "application/json",
      "user-agent": "SendGrid Event API",
      "x-twilio-email-event-webhook-signature":
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==",
      "x-twilio-email-event-webhook-timestamp": "1723456789",
    },
    body: json([
      {
        email: "example@test.com",
        timestamp: 1513299569,
        event: "delivered",
        sg_event_id: "sg_event_id",
        sg_message_id: "sg_message_id",
      },
    ]),
  },
  {
    name: "Resend",
    expected: "resend",
    headers: svixHeaders,
    body: json({
      type: "email.delivered",
      created_at: "2024-02-22T23:41:12.126Z",
      data: { email_id: "56761188-7520-42d8-8898-ff6fc54ce618", to: ["delivered@resend.dev"] },
    }),
  },
  {
    name: "Mailgun",
    expected: "mailgun",
    headers: { "content-type": "application/json", "user-agent": "mailgun/treq-16.12.0" },
    body: json({
      signature: {
        timestamp: "1529006854",
        token: "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
        signature: "d2271d12299f6592d9d44cd9d250f0704e4674c30d79d07c47a66f95ce71cf55",
      },
      "event-data": { event: "delivered", timestamp: 1529006854.329574, id: "DACSsAdVSeGpLid7TN03WA" },
    }),
  },
  {
    name: "Linear",
    expected: "linear",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "Linear-Webhook",
      "linear-delivery": "234d1a4e-b617-4388-90fe-adc3633d6b72",
      "linear-event": "Issue",
      "linear-signature": "766e1d90a96e2f5ecec342a99c5552999dd95d49250171b902d703fd674f5086",
    },
  },
  {
    name: "Jira",
    expected: "jira",
    headers: {
      "content-type": "application/json; charset=UTF-8",
      "user-agent": "Atlassian Webhook HTTP Client",
      "x-atlassian-webhook-identifier": "1142573046373215234",
      "x-atlassian-webhook-retry": "0",
    },
  },
  {
    name: "Jira (Data Center, user-agent only)",
    expected: "jira",
    headers: { "content-type": "application/json", "user-agent": "Atlassian Webhook HTTP Client" },
  },
  {
    name: "Vercel",
    expected: "vercel",
    headers: {
      "content-type": "application/json",
      "x-vercel-signature": "1d3a0b8d2e4c6f8a0b2c4d6e8f0a1b3c5d7e9f1a",
    },
  },
  {
    name: "Netlify",
    expected: "netlify",
    headers: {
      "content-type": "application/json",
      "user-agent": "Netlify",
      "x-netlify-event": "deploy_created",
      "x-webhook-signature": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJuZXRsaWZ5In0.c2lnbmF0dXJl",
    },
  },
  {
    name: "Supabase",
    expected: "supabase",
    headers: { "content-type": "application/json", "user-agent": "pg_net/0.10.0" },
    body: json({
      type: "INSERT",
      table: "profiles",
      record: { id: 1, username: "alice" },
      schema: "public",
      old_record: null,
    }),
  },
  {
    name: "PagerDuty",
    expected: "pagerduty",
    headers: {
      "content-type": "application/json",
      "user-agent": "PagerDuty-Webhook/V3.0",
      "x-pagerduty-signature": "v1=f0ba1a8e9ef5ba3fa1f5c0c5a1d2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0",
      "x-webhook-id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
      "x-webhook-subscription": "PY1OKR0",
    },
  },
  {
    name: "Clerk",
    expected: "clerk",
    headers: svixHeaders,
    body: json({
      data: { id: "user_29w83sxmDNGwOuEthce5gg56FcC", object: "user" },
      object: "event",
      type: "user.created",
      timestamp: 1654012591835,
      instance_id: "ins_123",
    }),
  },
  {
    name: "Auth0 (log stream, JSON array)",
    expected: "auth0",
    headers: { "content-type": "application/json", authorization: "Bearer log-stream-token" },
    body: json([
      {
        log_id: "90020230726131118200088000000000000001223372038981421504",
        data: {
          date: "2023-07-26T13:11:14.360Z",
          type: "s",
          client_id: "zxPFD7BlvbiwfAzvi6WZNxDwhwFjyiV5",
          user_id: "auth0|123",
        },
      },
    ]),
  },
  {
    name: "AWS SNS",
    expected: "aws-sns",
    headers: {
      "content-type": "text/plain; charset=UTF-8",
      "user-agent": "Amazon Simple Notification Service Agent",
      "x-amz-sns-message-type": "Notification",
      "x-amz-sns-message-id": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
      "x-amz-sns-topic-arn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
    },
  },
  {
    name: "Google Cloud (Pub/Sub push)",
    expected: "google-cloud",
    headers: {
      "content-type": "application/json",
      "user-agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
      authorization: "Bearer eyJhbGciOiJSUzI1NiJ9.e30.sig",
    },
    body: json({
      message: {
        data: "SGVsbG8gQ2xvdWQgUHViL1N1YiEgSGVyZSBpcyBteSBtZXNzYWdlIQ==",
        messageId: "2070443601311540",
      },
      subscription: "projects/myproject/subscriptions/mysubscription",
    }),
  },
  {
    name: "Azure Event Grid",
    expected: "azure-event-grid",
    headers: {
      "content-type": "application/json",
      "aeg-event-type": "Notification",
      "aeg-subscription-name": "MYSUBSCRIPTION",
      "aeg-delivery-count": "0",
      "aeg-data-version": "1.0",
      "aeg-metadata-version": "1",
    },
  },
  {
    name: "Figma",
    expected: "figma",
    headers: { "content-type": "application/json" },
    body: json({
      event_type: "FILE_UPDATE",
      file_key: "a1b2c3",
      file_name: "Design system",
      passcode: "secret-passcode",
      timestamp: "2024-08-12T10:00:00Z",
      webhook_id: "22",
    }),
  },
  {
    name: "Notion",
    expected: "notion",
    headers: {
      "content-type": "application/json",
      "x-notion-signature": "sha256=461e8cbcba8a75c3edd866f0e71280f5a85cbf21eff040ebd10fe266df38a735",
    },
  },
  {
    name: "Calendly",
    expected: "calendly",
    headers: {
      "content-type": "application/json",
      "calendly-webhook-signature":
        "t=1723456789,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
    },
  },
  {
    name: "HubSpot",
    expected: "hubspot",
    headers: {
      "content-type": "application/json",
      "x-hubspot-signature-v3": "fwAt2pTHC2mpP3lMvqBD1QpVxJbEtYKRTu/crs8h8BE=",
      "x-hubspot-request-timestamp": "1723456789000",
    },
  },
  {
    name: "Zoom",
    expected: "zoom",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "user-agent": "Zoom Marketplace/1.1a",
      "x-zm-signature": "v0=a05d830fa017433bc47887f835a00b9ff33d3882f22f63a2986a8e4e2d3bc2cc",
      "x-zm-request-timestamp": "1723456789",
    },
  },
  {
    name: "Intercom",
    expected: "intercom",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      "user-agent": "intercom-parrot-service-client/1.0",
      "x-hub-signature": "sha1=21ff2e149e0fdcac6f947740f6177f6434bda921",
    },
    body: json({ type: "notification_event", topic: "user.created", app_id: "a86dr8yl", data: {} }),
  },
  {
    name: "Typeform",
    expected: "typeform",
    headers: {
      "content-type": "application/json",
      "user-agent": "Typeform Webhooks",
      "typeform-signature": "sha256=7lkH2GX1vzjbjCXu9+MuvGMeIVbvQ4/C9bQbVgZNmXk=",
    },
  },
  {
    name: "Svix",
    expected: "svix",
    headers: svixHeaders,
    body: json({ type: "invoice.paid", data: { id: "inv_1" } }),
  },
  // Extra variants of providers that have more than one fingerprint.
  {
    name: "SendGrid (unsigned, array body)",
    expected: "sendgrid",
    headers: { "content-type": "application/json" },
    body: json([
      {
        email: "a@example.com",
        timestamp: 1513299569,
        event: "processed",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
      },
      { email: "b@example.com", timestamp: 1513299570, event: "open" },
    ]),
  },
  {
    name: "Google Cloud (Pub/Sub body, no user-agent)",
    expected: "google-cloud",
    headers: { "content-type": "application/json" },
    body: json({ message: { data: "e30=", messageId: "1" }, subscription: "projects/p/subscriptions/s" }),
  },
  {
    name: "Svix (Standard Webhooks headers)",
    expected: "svix",
    headers: {
      "content-type": "application/json",
      "webhook-id": "msg_2mYkYB1y7pJq3sLzK3Z8Yb2Q9bT",
      "webhook-timestamp": "1723456789",
      "webhook-signature": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
    },
  },
];

afterEach(() => {
  vi.restoreAllMocks();
});

describe("detectSource — one fingerprint per provider", () => {
  it.each(providerCases)("$name → $expected", ({ headers, body, expected }) => {
    expect(detectSource(headers, body)).toBe(expected);
  });

  it("covers all 34 published providers, each with a display name", () => {
    expect(sourceIds).toHaveLength(34);
    const covered = new Set(providerCases.map((c) => c.expected));
    expect([...sourceIds].filter((id) => !covered.has(id))).toEqual([]);
    for (const id of sourceIds) {
      expect(sourceNames[id]).toMatch(/\S/);
      expect(isSourceId(id)).toBe(true);
    }
    expect(Object.keys(sourceNames).sort()).toEqual([...sourceIds].sort());
    expect(isSourceId("not-a-provider")).toBe(false);
  });
});

describe("detectSource — no match", () => {
  it("returns null without headers", () => {
    expect(detectSource({})).toBeNull();
    expect(detectSource({}, Buffer.alloc(0))).toBeNull();
  });

  it("returns null for a generic JSON request", () => {
    expect(detectSource({ "content-type": "application/json" })).toBeNull();
    expect(detectSource({ "content-type": "application/json" }, json({ event: "ping", id: 1 }))).toBeNull();
    expect(
      detectSource(
        { "content-type": "application/json", "user-agent": "curl/8.5.0", "content-length": "2" },
        Buffer.from("{}"),
      ),
    ).toBeNull();
  });

  it("ignores undefined header values", () => {
    expect(detectSource({ "stripe-signature": undefined, "x-github-event": undefined })).toBeNull();
  });
});

describe("detectSource — shared Svix headers (Clerk vs Resend vs Svix)", () => {
  it.each<{ name: string; body: Buffer | undefined; expected: SourceId }>([
    {
      name: "Clerk user.created",
      body: json({ object: "event", type: "user.created", data: {} }),
      expected: "clerk",
    },
    { name: "Clerk session.ended", body: json({ type: "session.ended", data: {} }), expected: "clerk" },
    {
      name: "Clerk organizationMembership.created",
      body: json({ type: "organizationMembership.created", data: {} }),
      expected: "clerk",
    },
    {
      name: "Clerk email.created",
      body: json({ object: "event", type: "email.created" }),
      expected: "clerk",
    },
    { name: "Resend email.bounced", body: json({ type: "email.bounced", data: {} }), expected: "resend" },
    { name: "Resend contact.created", body: json({ type: "contact.created", data: {} }), expected: "resend" },
    { name: "Resend domain.updated", body: json({ type: "domain.updated", data: {} }), expected: "resend" },
    { name: "other Svix customer", body: json({ type: "payment.succeeded" }), expected: "svix" },
    { name: "no body", body: undefined, expected: "svix" },
    { name: "body without type", body: json({ data: {} }), expected: "svix" },
    { name: "array body", body: json([{ type: "user.created" }]), expected: "svix" },
    { name: "non-JSON body", body: Buffer.from("type=user.created"), expected: "svix" },
    { name: "malformed JSON body", body: Buffer.from('{"type": "user.'), expected: "svix" },
  ])("$name → $expected", ({ body, expected }) => {
    expect(detectSource(svixHeaders, body)).toBe(expected);
  });
});

describe("detectSource — x-hub-signature", () => {
  const hub = {
    "content-type": "application/json",
    "x-hub-signature": "sha1=21ff2e149e0fdcac6f947740f6177f6434bda921",
  };

  it("is not Intercom without an Intercom user-agent", () => {
    expect(detectSource(hub)).toBeNull();
    expect(detectSource({ ...hub, "user-agent": "Bitbucket-Webhooks/2.0" })).toBeNull();
    expect(detectSource({ ...hub, "user-agent": "WebSub/1.0 hub" })).toBeNull();
  });

  it("is GitHub when GitHub's event header is present (legacy sha1 signature)", () => {
    expect(detectSource({ ...hub, "x-github-event": "ping", "user-agent": "GitHub-Hookshot/abc" })).toBe(
      "github",
    );
  });

  it("matches the Intercom user-agent case-insensitively and in array form", () => {
    expect(detectSource({ ...hub, "user-agent": "Intercom-Parrot-Service-Client/1.0" })).toBe("intercom");
    expect(detectSource({ ...hub, "user-agent": ["intercom-parrot-service-client/1.0"] })).toBe("intercom");
  });
});

describe("detectSource — specific before generic", () => {
  it("x-signature alone is not Lemon Squeezy, and Discord's ed25519 header is not Lemon Squeezy", () => {
    expect(detectSource({ "x-signature": "abc" })).toBeNull();
    expect(detectSource({ "x-signature-ed25519": "ab", "x-signature-timestamp": "1" })).toBe("discord");
  });

  it("x-event-key alone is not Bitbucket", () => {
    expect(detectSource({ "x-event-key": "repo:push" })).toBeNull();
    expect(detectSource({ "x-event-key": "repo:push", "x-request-uuid": "u" })).toBe("bitbucket");
  });

  it("SendGrid's signed header wins over the Twilio family", () => {
    expect(detectSource({ "x-twilio-email-event-webhook-signature": "sig" })).toBe("sendgrid");
  });

  it("a provider header wins over a body shape", () => {
    const figmaBody = json({ passcode: "p", event_type: "PING" });
    expect(detectSource({ "stripe-signature": "t=1,v1=a" }, figmaBody)).toBe("stripe");
  });
});

describe("detectSource — body safety", () => {
  it.each([
    ["truncated object", "{"],
    ["truncated array", "[1, 2"],
    ["unterminated string", '{"message": "abc'],
    ["trailing garbage", '{"passcode": "p", "event_type": "PING"} trailing'],
    ["JSON lines", '{"log_id": "1", "data": {}}\n{"log_id": "2", "data": {}}'],
    ["deeply nested", "[".repeat(200_000)],
    ["deeply nested, closed", `${"[".repeat(100_000)}${"]".repeat(100_000)}`],
    ["invalid UTF-8", Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
    ["null members", '{"signature": null, "event-data": null, "message": null}'],
    ["array of nulls", '[null, 1, "x"]'],
    ["empty array", "[]"],
    ["__proto__ key", '{"__proto__": {"passcode": "p"}, "event_type": "x"}'],
  ])("%s never throws and yields null", (_name, raw) => {
    const body = typeof raw === "string" ? Buffer.from(raw) : raw;
    expect(() => detectSource({ "content-type": "application/json" }, body)).not.toThrow();
    expect(detectSource({ "content-type": "application/json" }, body)).toBeNull();
  });

  it("does not parse bodies that do not start with { or [", () => {
    const parse = vi.spyOn(JSON, "parse");
    expect(detectSource({}, Buffer.from('"{\\"passcode\\": \\"p\\"}"'))).toBeNull();
    expect(detectSource({}, Buffer.from("signature=abc&event-data=x"))).toBeNull();
    expect(detectSource({}, Buffer.from("   \n\t  "))).toBeNull();
    expect(parse).not.toHaveBeenCalled();
  });

  it("tolerates leading whitespace and a UTF-8 BOM", () => {
    const figma = JSON.stringify({ passcode: "p", event_type: "PING" });
    expect(detectSource({}, Buffer.from(` \r\n\t${figma}`))).toBe("figma");
    expect(detectSource({}, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(figma)]))).toBe(
      "figma",
    );
  });

  it("does not touch the body when a header rule matched", () => {
    const parse = vi.spyOn(JSON, "parse");
    expect(detectSource({ "x-github-event": "push" }, Buffer.from('{"passcode": "p"'))).toBe("github");
    expect(parse).not.toHaveBeenCalled();
  });

  it("does not parse a 1 MiB body (returns null fast)", () => {
    const prefix =
      '{"signature": {"timestamp": "1", "token": "t", "signature": "s"}, "event-data": {}, "pad": "';
    const suffix = '"}';
    const size = 1024 * 1024;
    const body = Buffer.from(prefix + "x".repeat(size - prefix.length - suffix.length) + suffix);
    expect(body.length).toBe(size);
    // Sanity: the same shape, small, is Mailgun.
    expect(detectSource({}, Buffer.from(`${prefix}x${suffix}`))).toBe("mailgun");

    const parse = vi.spyOn(JSON, "parse");
    const started = performance.now();
    expect(detectSource({ "content-type": "application/json" }, body)).toBeNull();
    expect(performance.now() - started).toBeLessThan(50);
    expect(parse).not.toHaveBeenCalled();
  });

  it("parses up to exactly 256 KiB and not one byte more", () => {
    const make = (size: number): Buffer => {
      const prefix = '{"passcode": "p", "event_type": "PING", "pad": "';
      const suffix = '"}';
      return Buffer.from(prefix + "x".repeat(size - prefix.length - suffix.length) + suffix);
    };
    expect(detectSource({}, make(MAX_DETECTION_BODY_BYTES))).toBe("figma");
    expect(detectSource({}, make(MAX_DETECTION_BODY_BYTES + 1))).toBeNull();
  });
});
