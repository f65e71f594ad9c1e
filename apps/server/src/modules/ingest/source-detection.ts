/**
 * Source detection: guess which provider sent an ingested webhook ("header fingerprinting").
 *
 * Provenance of the fingerprints: Mitte's own docs spell out only two of them — `stripe-signature` → Stripe
 * and `x-github-event` → GitHub. Every other rule below comes from the providers' public webhook docs and
 * the third-party references collected in the spec's "Appendix A — candidate provider fingerprints", NOT
 * from Mitte's documentation. Treat them as best-effort heuristics: a wrong or missing badge is harmless,
 * a crash or a slow ingest path is not.
 *
 * How it works:
 * 1. Header pass (every request): walk a precomputed, ordered rule table — specific fingerprints before
 *    generic ones — and return the first match. Lookups are `headers[name] !== undefined`; a precomputed
 *    Set of fingerprint header names lets requests without any of them skip straight to the few
 *    user-agent rules. The only string inspection is a precompiled case-insensitive RegExp test on
 *    `user-agent`. No per-request allocation beyond what the engine does for `for…in`.
 * 2. Body pass (only when the headers are inconclusive): either no header rule matched, or only the shared
 *    Svix / Standard Webhooks fingerprint matched (Clerk and Resend deliver through Svix). Then, and only
 *    for bodies up to 256 KiB whose first non-whitespace byte is `{` or `[`, the body is JSON-parsed
 *    inside try/catch and its shape inspected. Nothing here ever throws.
 */

export const sourceIds = [
  "stripe",
  "shopify",
  "paddle",
  "lemon-squeezy",
  "paypal",
  "square",
  "github",
  "gitlab",
  "bitbucket",
  "slack",
  "discord",
  "twilio",
  "sendgrid",
  "resend",
  "mailgun",
  "linear",
  "jira",
  "vercel",
  "netlify",
  "supabase",
  "pagerduty",
  "clerk",
  "auth0",
  "aws-sns",
  "google-cloud",
  "azure-event-grid",
  "figma",
  "notion",
  "calendly",
  "hubspot",
  "zoom",
  "intercom",
  "typeform",
  "svix",
] as const;

/** Provider id, kebab-case. One per provider in the published list (34). */
export type SourceId = (typeof sourceIds)[number];

/** Display names, as used for the log-inspector badge. */
export const sourceNames: Readonly<Record<SourceId, string>> = Object.freeze({
  stripe: "Stripe",
  shopify: "Shopify",
  paddle: "Paddle",
  "lemon-squeezy": "Lemon Squeezy",
  paypal: "PayPal",
  square: "Square",
  github: "GitHub",
  gitlab: "GitLab",
  bitbucket: "Bitbucket",
  slack: "Slack",
  discord: "Discord",
  twilio: "Twilio",
  sendgrid: "SendGrid",
  resend: "Resend",
  mailgun: "Mailgun",
  linear: "Linear",
  jira: "Jira",
  vercel: "Vercel",
  netlify: "Netlify",
  supabase: "Supabase",
  pagerduty: "PagerDuty",
  clerk: "Clerk",
  auth0: "Auth0",
  "aws-sns": "AWS SNS",
  "google-cloud": "Google Cloud",
  "azure-event-grid": "Azure Event Grid",
  figma: "Figma",
  notion: "Notion",
  calendly: "Calendly",
  hubspot: "HubSpot",
  zoom: "Zoom",
  intercom: "Intercom",
  typeform: "Typeform",
  svix: "Svix",
});

const sourceIdSet: ReadonlySet<string> = new Set(sourceIds);

export function isSourceId(value: unknown): value is SourceId {
  return typeof value === "string" && sourceIdSet.has(value);
}

/** Request headers as Node's `IncomingMessage#headers` gives them (lowercase names). */
export type IncomingHeaders = Record<string, string | string[] | undefined>;

/** Bodies larger than this are never parsed for detection. */
export const MAX_DETECTION_BODY_BYTES = 256 * 1024;

// ---------------------------------------------------------------------------------------------------------
// Header rules
// ---------------------------------------------------------------------------------------------------------

interface HeaderRule {
  readonly source: SourceId;
  /** Every one of these headers must be present. */
  readonly all: readonly string[];
  /** At least one of these headers must be present (ignored when empty). */
  readonly any: readonly string[];
  /** Case-insensitive substring test the `user-agent` header must pass (precompiled, stateless: no `g`). */
  readonly userAgent: RegExp | null;
}

interface RuleSpec {
  all?: readonly string[];
  any?: readonly string[];
  userAgent?: string;
}

function rule(source: SourceId, spec: RuleSpec): HeaderRule {
  const all = Object.freeze((spec.all ?? []).map((h) => h.toLowerCase()));
  const any = Object.freeze((spec.any ?? []).map((h) => h.toLowerCase()));
  const userAgent =
    spec.userAgent === undefined
      ? null
      : new RegExp(spec.userAgent.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i");
  if (all.length === 0 && any.length === 0 && userAgent === null) {
    throw new Error(`source-detection: empty rule for ${source}`);
  }
  return Object.freeze({ source, all, any, userAgent });
}

/**
 * Ordered: first match wins. Provider-specific header names first; combinations that share a header with
 * another provider next; user-agent-only and generic/shared fingerprints (Svix, Standard Webhooks) last.
 */
const HEADER_RULES: readonly HeaderRule[] = Object.freeze([
  // Documented by Mitte.
  rule("stripe", { all: ["stripe-signature"] }),
  rule("github", { any: ["x-github-event", "x-github-delivery", "x-github-hook-id"] }),

  // Payments.
  rule("shopify", { any: ["x-shopify-topic", "x-shopify-hmac-sha256", "x-shopify-webhook-id"] }),
  rule("paddle", { all: ["paddle-signature"] }),
  rule("lemon-squeezy", { all: ["x-signature", "x-event-name"] }),
  rule("paypal", { any: ["paypal-transmission-id", "paypal-transmission-sig"] }),
  rule("square", { any: ["x-square-hmacsha256-signature", "x-square-signature"] }),

  // Git & CI/CD. Bitbucket before Jira: both are Atlassian, Bitbucket's pair is the more specific one.
  rule("gitlab", { any: ["x-gitlab-event", "x-gitlab-token"] }),
  rule("bitbucket", { all: ["x-event-key"], any: ["x-request-uuid", "x-hook-uuid"] }),

  // Communication. SendGrid's signed-mode header before Twilio's (SendGrid is a Twilio company).
  rule("slack", { any: ["x-slack-signature", "x-slack-request-timestamp"] }),
  rule("discord", { all: ["x-signature-ed25519"] }),
  rule("sendgrid", {
    any: ["x-twilio-email-event-webhook-signature", "x-twilio-email-event-webhook-timestamp"],
  }),
  rule("twilio", { all: ["x-twilio-signature"] }),

  // DevTools.
  rule("linear", { any: ["linear-signature", "linear-delivery", "linear-event"] }),
  rule("jira", { all: ["x-atlassian-webhook-identifier"] }),
  rule("vercel", { all: ["x-vercel-signature"] }),
  rule("netlify", { all: ["x-netlify-event"] }),
  rule("pagerduty", { all: ["x-pagerduty-signature"] }),

  // Cloud.
  rule("aws-sns", { any: ["x-amz-sns-message-type", "x-amz-sns-topic-arn", "x-amz-sns-message-id"] }),
  rule("azure-event-grid", { any: ["aeg-event-type", "aeg-subscription-name"] }),

  // Other.
  rule("notion", { all: ["x-notion-signature"] }),
  rule("calendly", { all: ["calendly-webhook-signature"] }),
  rule("hubspot", { any: ["x-hubspot-signature", "x-hubspot-signature-v3"] }),
  rule("zoom", { any: ["x-zm-signature", "x-zm-request-timestamp"] }),
  rule("typeform", { all: ["typeform-signature"] }),
  // x-hub-signature is also sent by old GitHub (matched above) and others: only Intercom with its user-agent.
  rule("intercom", { all: ["x-hub-signature"], userAgent: "intercom" }),

  // User-agent-only fingerprints.
  rule("jira", { userAgent: "atlassian webhook http client" }),
  rule("google-cloud", { userAgent: "apis-google" }),

  // Generic / shared. Netlify's JWS header has a generic name, so it comes late.
  rule("netlify", { all: ["x-webhook-signature"] }),
  // Svix-delivered (Clerk, Resend, Svix itself) — refined from the body when possible.
  rule("svix", { all: ["svix-id", "svix-signature"] }),
  // Standard Webhooks (the spec Svix publishes): same header trio without the "svix-" prefix.
  rule("svix", { all: ["webhook-id", "webhook-signature"] }),
]);

function firstValue(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : value?.[0];
}

function matches(r: HeaderRule, headers: IncomingHeaders): boolean {
  for (let i = 0; i < r.all.length; i++) {
    if (headers[r.all[i]!] === undefined) return false;
  }
  if (r.any.length > 0) {
    let found = false;
    for (let i = 0; i < r.any.length; i++) {
      if (headers[r.any[i]!] !== undefined) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  if (r.userAgent !== null) {
    const ua = firstValue(headers["user-agent"]);
    if (ua === undefined || !r.userAgent.test(ua)) return false;
  }
  return true;
}

/** Every header name some rule requires; `user-agent` excluded (nearly every request carries one). */
const FINGERPRINT_HEADERS: ReadonlySet<string> = new Set(HEADER_RULES.flatMap((r) => [...r.all, ...r.any]));

/** Rules that only look at `user-agent`; the only ones that can match without a fingerprint header. */
const USER_AGENT_ONLY_RULES: readonly HeaderRule[] = Object.freeze(
  HEADER_RULES.filter((r) => r.all.length === 0 && r.any.length === 0),
);

function walk(rules: readonly HeaderRule[], headers: IncomingHeaders): SourceId | null {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i]!;
    if (matches(r, headers)) return r.source;
  }
  return null;
}

function detectFromHeaders(headers: IncomingHeaders): SourceId | null {
  // Fast path: a typical request has ~10 headers, the table ~60 names. One Set probe per request header
  // tells whether any fingerprint header is there at all; if not, only the user-agent rules can match.
  let hasFingerprintHeader = false;
  for (const name in headers) {
    if (FINGERPRINT_HEADERS.has(name)) {
      hasFingerprintHeader = true;
      break;
    }
  }
  return walk(hasFingerprintHeader ? HEADER_RULES : USER_AGENT_ONLY_RULES, headers);
}

// ---------------------------------------------------------------------------------------------------------
// Body inspection (cheap, bounded, never throws)
// ---------------------------------------------------------------------------------------------------------

type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Parse the body as JSON if it is small and looks like a JSON object/array; otherwise `undefined`. */
function parseSmallJson(body: Buffer | undefined): unknown {
  if (body === undefined || body.length === 0 || body.length > MAX_DETECTION_BODY_BYTES) return undefined;
  let i = 0;
  // UTF-8 byte-order mark.
  if (body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) i = 3;
  while (i < body.length) {
    const b = body[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) break;
    i++;
  }
  const first = body[i];
  if (first !== 0x7b /* { */ && first !== 0x5b /* [ */) return undefined;
  try {
    return JSON.parse(body.toString("utf8", i));
  } catch {
    return undefined;
  }
}

const CLERK_TYPE_PREFIXES: readonly string[] = [
  "user.",
  "session.",
  "organization.",
  "organizationMembership.",
  "organizationInvitation.",
  "organizationDomain.",
  "role.",
  "permission.",
  "sms.",
  "waitlistEntry.",
];
const RESEND_TYPE_PREFIXES: readonly string[] = ["email.", "contact.", "domain."];

function hasPrefix(value: string, prefixes: readonly string[]): boolean {
  for (let i = 0; i < prefixes.length; i++) {
    if (value.startsWith(prefixes[i]!)) return true;
  }
  return false;
}

/** Svix delivers for Clerk and Resend; tell them apart by the event `type`. */
function refineSvix(json: unknown): SourceId {
  if (!isObject(json)) return "svix";
  const type = json.type;
  if (typeof type !== "string") return "svix";
  // Clerk's envelope is `{ data, object: "event", type }`; its only `email.*` event is `email.created`.
  if (hasPrefix(type, CLERK_TYPE_PREFIXES) || type === "email.created") return "clerk";
  if (hasPrefix(type, RESEND_TYPE_PREFIXES)) return "resend";
  return "svix";
}

function isSendGridEvent(item: unknown): boolean {
  if (!isObject(item)) return false;
  if (typeof item.sg_event_id === "string" || typeof item.sg_message_id === "string") return true;
  return typeof item.event === "string" && typeof item.email === "string" && item.timestamp !== undefined;
}

/** Auth0 log-stream record: `{ log_id, data: { date, type, ... } }`. */
function isAuth0LogRecord(item: unknown): boolean {
  return isObject(item) && typeof item.log_id === "string" && isObject(item.data);
}

function detectFromBodyShape(json: unknown): SourceId | null {
  if (Array.isArray(json)) {
    const item: unknown = json[0];
    if (isSendGridEvent(item)) return "sendgrid";
    if (isAuth0LogRecord(item)) return "auth0";
    return null;
  }
  if (!isObject(json)) return null;

  // Mailgun: signature embedded in the body next to the event.
  const signature = json.signature;
  if (isObject(signature) && isObject(json["event-data"]) && typeof signature.token === "string") {
    return "mailgun";
  }
  // Figma: passcode echoed in the body.
  if (typeof json.passcode === "string" && typeof json.event_type === "string") return "figma";
  // Google Cloud Pub/Sub push.
  if (isObject(json.message) && typeof json.subscription === "string") return "google-cloud";
  // Supabase database webhook (`record` is null on DELETE, `old_record` null on INSERT).
  if (
    typeof json.type === "string" &&
    typeof json.table === "string" &&
    typeof json.schema === "string" &&
    "record" in json
  ) {
    return "supabase";
  }
  // Auth0 log stream in "JSON object" format.
  if (isAuth0LogRecord(json)) return "auth0";
  return null;
}

// ---------------------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------------------

/**
 * Identify the provider that sent a webhook. Pure and synchronous; never throws.
 *
 * @param headers request headers with lowercase names, as Node gives them
 * @param body raw request body; only looked at when the headers are inconclusive (see file header)
 * @returns the provider id, or `null` when nothing matched
 */
export function detectSource(headers: IncomingHeaders, body?: Buffer): SourceId | null {
  const fromHeaders = detectFromHeaders(headers);
  if (fromHeaders !== null && fromHeaders !== "svix") return fromHeaders;
  try {
    const json = parseSmallJson(body);
    if (fromHeaders === "svix") return json === undefined ? "svix" : refineSvix(json);
    return json === undefined ? null : detectFromBodyShape(json);
  } catch {
    return fromHeaders;
  }
}
