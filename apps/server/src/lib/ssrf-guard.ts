import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * Address policy for outbound HTTP (webhook delivery): decides, per resolved IP address, whether Mitte may
 * open a connection to it. Default rule: only globally routable unicast. Operators can allow-list CIDRs
 * (e.g. to deliver to services on a private network), but cloud metadata endpoints stay blocked regardless,
 * because reaching them from a multi-tenant gateway is the classic SSRF credential leak.
 */

/**
 * `reason` may name addresses (for a target the user typed as an IP literal, or for operators); `category`
 * never does, so that it can be shown for a name the user cannot see resolved: naming the address a host
 * name resolves to on Mitte's network would make delivery an oracle for its internal DNS.
 */
export type AddressVerdict = { allowed: true } | { allowed: false; reason: string; category: string };

export interface AddressPolicy {
  /** `address` is a bare IP literal (no brackets, no port), as returned by DNS or a URL hostname. */
  check(address: string): AddressVerdict;
}

type IP = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [IP, number];

const ALLOWED: AddressVerdict = { allowed: true };
const blocked = (reason: string, category = reason): AddressVerdict => ({ allowed: false, reason, category });

/** Instance-metadata services. Some are in link-local/ULA space, but an allow-list must never reach them. */
const METADATA_ADDRESSES = new Set(
  [
    "169.254.169.254", // AWS, GCP, Azure, OCI, DigitalOcean, ...
    "169.254.170.2", // AWS ECS task metadata / credentials
    "169.254.170.23", // AWS EKS Pod Identity credentials
    "169.254.0.23", // Tencent Cloud
    "100.100.100.200", // Alibaba Cloud
    "192.0.0.192", // Oracle Cloud (older metadata address)
    "168.63.129.16", // Azure WireServer / host agent (public address space, so also blocked without an allow-list)
    "fd00:ec2::254", // AWS IMDS over IPv6
    "fd00:ec2::23", // AWS EKS Pod Identity over IPv6
  ].map((a) => ipaddr.parse(a).toNormalizedString()),
);

const v6 = (cidr: string) => ipaddr.IPv6.parseCIDR(cidr);
// IPv6 forms that carry an IPv4 address in known bit positions; the IPv4 rules are applied to that address.
const IPV4_COMPATIBLE = v6("::/96"); // deprecated ::a.b.c.d
const IPV4_TRANSLATED = v6("::ffff:0:0:0/96"); // RFC 6145 ::ffff:0:a.b.c.d
const NAT64_WELL_KNOWN = v6("64:ff9b::/96"); // RFC 6052
const SIX_TO_FOUR = v6("2002::/16"); // RFC 3056: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD
// Forms whose embedded IPv4 we do not decode (prefix-dependent position, or obfuscated): always blocked.
const OPAQUE_EMBEDDINGS: [string, [ipaddr.IPv6, number]][] = [
  ["NAT64 local-use prefix 64:ff9b:1::/48", v6("64:ff9b:1::/48")],
  ["Teredo 2001::/32", v6("2001::/32")],
];
// IANA global unicast; anything outside (e.g. site-local fec0::/10, odd ::/8 forms) is not a public host.
const GLOBAL_UNICAST_V6 = v6("2000::/3");

const within = (ip: ipaddr.IPv6, cidr: [ipaddr.IPv6, number]) => ip.match(cidr);

function ipv4FromParts(high: number, low: number): ipaddr.IPv4 {
  return new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
}

/** The IPv4 address an IPv6 address embeds, with a label for messages; undefined if it embeds none. */
function embeddedIPv4(ip: ipaddr.IPv6): { ipv4: ipaddr.IPv4; via: string } | undefined {
  const p = ip.parts;
  if (within(ip, IPV4_TRANSLATED)) return { ipv4: ipv4FromParts(p[6]!, p[7]!), via: "IPv4-translated" };
  if (within(ip, NAT64_WELL_KNOWN)) return { ipv4: ipv4FromParts(p[6]!, p[7]!), via: "NAT64" };
  if (within(ip, SIX_TO_FOUR)) return { ipv4: ipv4FromParts(p[1]!, p[2]!), via: "6to4" };
  // :: and ::1 are unspecified/loopback in their own right, not IPv4-compatible addresses.
  const isUnspecifiedOrLoopback = p[6] === 0 && p[7]! <= 1;
  if (within(ip, IPV4_COMPATIBLE) && !isUnspecifiedOrLoopback) {
    return { ipv4: ipv4FromParts(p[6]!, p[7]!), via: "IPv4-compatible" };
  }
  return undefined;
}

const isMetadata = (ip: IP) => METADATA_ADDRESSES.has(ip.toNormalizedString());

/**
 * IPv4-mapped (::ffff:a.b.c.d) is the same host as a.b.c.d: evaluate and allow-list it as IPv4.
 * A zone id (fe80::1%eth0) is dropped so it cannot dodge the exact-match metadata lookup.
 */
function normalize(ip: IP): IP {
  if (ip.kind() === "ipv4") return ip;
  const ip6 = ip as ipaddr.IPv6;
  return ip6.isIPv4MappedAddress() ? ip6.toIPv4Address() : new ipaddr.IPv6(ip6.parts);
}

function parseAllowEntry(entry: string): Cidr {
  const invalid = () => new Error(`invalid CIDR in private-target allow-list: "${entry}"`);
  const [addressPart = "", prefixPart, ...rest] = entry.trim().split("/");
  if (rest.length > 0 || (prefixPart !== undefined && !/^\d{1,3}$/.test(prefixPart))) throw invalid();
  let address: IP;
  // Four-part decimal only: ipaddr.js would otherwise read "10/8" as 0.0.0.10/8.
  if (ipaddr.IPv4.isValidFourPartDecimal(addressPart)) address = ipaddr.IPv4.parse(addressPart);
  else if (ipaddr.IPv6.isValid(addressPart) && !addressPart.includes("%"))
    address = ipaddr.IPv6.parse(addressPart);
  else throw invalid();
  const maxPrefix = address.kind() === "ipv4" ? 32 : 128;
  const prefix = prefixPart === undefined ? maxPrefix : Number(prefixPart); // bare address = single host
  if (prefix > maxPrefix) throw invalid();
  // ::ffff:127.0.0.0/104 means 127.0.0.0/8: match it against normalized (IPv4) addresses.
  if (address.kind() === "ipv6" && (address as ipaddr.IPv6).isIPv4MappedAddress() && prefix >= 96) {
    return [(address as ipaddr.IPv6).toIPv4Address(), prefix - 96];
  }
  return [address, prefix];
}

/** Splits the comma-separated `MITTE_ALLOW_PRIVATE_TARGETS` value; validation happens in createAddressPolicy. */
export function parseCidrList(csv: string | undefined): string[] {
  return (csv ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Throws on an invalid allow-list entry, naming it, so a typo fails at startup rather than silently. */
export function createAddressPolicy(allowedCidrs: readonly string[] = []): AddressPolicy {
  const allowList = allowedCidrs.map(parseAllowEntry);
  const isAllowListed = (ip: IP) =>
    allowList.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));

  function evaluate(ip: IP): AddressVerdict {
    if (isMetadata(ip)) return blocked("cloud metadata endpoint");
    if (ip.kind() === "ipv4") {
      if (isAllowListed(ip)) return ALLOWED;
      const range = (ip as ipaddr.IPv4).range();
      return range === "unicast" ? ALLOWED : blocked(`${range} address`);
    }

    const ip6 = ip as ipaddr.IPv6;
    const embedded = embeddedIPv4(ip6);
    if (embedded && isMetadata(embedded.ipv4)) {
      return blocked(
        `${embedded.via} form of cloud metadata endpoint ${embedded.ipv4}`,
        "cloud metadata endpoint",
      );
    }
    for (const [label, cidr] of OPAQUE_EMBEDDINGS) {
      if (within(ip6, cidr)) return blocked(`${label} may embed any IPv4 address`);
    }
    // The IPv4 address decides, against the IPv4 rules and allow-list: an IPv6 entry such as ::/0 means
    // "IPv6 hosts", not 10.0.0.1 or 127.0.0.1 reached through their NAT64 or translated forms.
    if (embedded) {
      const inner = evaluate(embedded.ipv4);
      return inner.allowed
        ? ALLOWED
        : blocked(`${embedded.via} form of ${embedded.ipv4}: ${inner.reason}`, inner.category);
    }
    if (isAllowListed(ip6)) return ALLOWED;
    const range = ip6.range();
    if (range !== "unicast") return blocked(`${range} address`);
    return within(ip6, GLOBAL_UNICAST_V6) ? ALLOWED : blocked("outside IPv6 global unicast 2000::/3");
  }

  return {
    check(address) {
      let ip: IP;
      try {
        ip = ipaddr.parse(address);
      } catch {
        return blocked("not an IP address");
      }
      return evaluate(normalize(ip));
    },
  };
}

/**
 * The reason `url`'s host is refused when that host is an IP literal (any spelling the URL parser
 * normalises, e.g. http://2130706433/ → 127.0.0.1), else null. Lets an endpoint be refused when it is saved;
 * names are still resolved and checked at every connection, since what they resolve to can change.
 */
export function blockedIpLiteral(url: string, policy: AddressPolicy): string | null {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  } catch {
    return null;
  }
  if (isIP(host) === 0) return null;
  const verdict = policy.check(host);
  return verdict.allowed ? null : verdict.reason;
}
