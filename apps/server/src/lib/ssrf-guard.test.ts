import { describe, expect, it } from "vitest";
import { createAddressPolicy, parseCidrList } from "./ssrf-guard.js";

describe("createAddressPolicy without allow-list", () => {
  const policy = createAddressPolicy([]);

  it.each([
    ["127.0.0.1", /loopback/],
    ["::1", /loopback/],
    ["::ffff:127.0.0.1", /loopback/],
    ["::ffff:7f00:1", /loopback/],
    ["::7f00:1", /IPv4-compatible.*loopback/],
    ["::ffff:0:7f00:1", /IPv4-translated.*loopback/],
    ["169.254.169.254", /metadata/],
    ["169.254.170.2", /metadata/],
    ["fd00:ec2::254", /metadata/],
    ["169.254.1.1", /linkLocal/],
    ["10.0.0.1", /private/],
    ["172.16.5.4", /private/],
    ["192.168.1.1", /private/],
    ["100.64.0.1", /carrierGradeNat/],
    ["0.0.0.0", /unspecified/],
    ["::", /unspecified/],
    ["fd00::1", /uniqueLocal/],
    ["fe80::1", /linkLocal/],
    ["fe80::1%eth0", /linkLocal/],
    ["fec0::1", /SiteLocal/],
    ["4000::1", /outside IPv6 global unicast/],
    ["64:ff9b::a9fe:a9fe", /NAT64 form of cloud metadata/],
    ["64:ff9b::a00:1", /NAT64 form of 10\.0\.0\.1: private/],
    ["64:ff9b:1::808:808", /local-use/],
    ["2002:7f00:1::1", /6to4 form of 127\.0\.0\.1: loopback/],
    ["2002:a9fe:a9fe::1", /6to4 form of cloud metadata/],
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", /Teredo/],
    ["224.0.0.1", /multicast/],
    ["ff02::1", /multicast/],
    ["255.255.255.255", /broadcast/],
    ["240.0.0.1", /reserved/],
    ["192.0.0.8", /reserved/],
    ["192.0.2.10", /reserved/],
    ["198.18.0.1", /reserved/],
    ["2001:db8::1", /reserved/],
    ["not-an-ip", /not an IP/],
  ])("blocks %s", (address, reason) => {
    const verdict = policy.check(address);
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toMatch(reason);
  });

  it.each([
    "93.184.216.34",
    "8.8.8.8",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
  ])("allows %s", (address) => {
    expect(policy.check(address)).toEqual({ allowed: true });
  });
});

describe("createAddressPolicy with allow-list", () => {
  it("admits loopback (also IPv4-mapped) for 127.0.0.0/8 but nothing else private", () => {
    const policy = createAddressPolicy(["127.0.0.0/8"]);
    expect(policy.check("127.0.0.1").allowed).toBe(true);
    expect(policy.check("127.0.0.2").allowed).toBe(true);
    expect(policy.check("::ffff:127.0.0.1").allowed).toBe(true);
    expect(policy.check("::ffff:7f00:1").allowed).toBe(true);
    expect(policy.check("10.0.0.1").allowed).toBe(false);
    expect(policy.check("::1").allowed).toBe(false);
  });

  it("treats a bare address as a single host and ::ffff:a.b.c.d/n as an IPv4 range", () => {
    const policy = createAddressPolicy(["127.0.0.1", "::ffff:10.0.0.0/104"]);
    expect(policy.check("::ffff:127.0.0.1").allowed).toBe(true);
    expect(policy.check("127.0.0.2").allowed).toBe(false);
    expect(policy.check("10.1.2.3").allowed).toBe(true);
  });

  it("admits IPv6 ranges", () => {
    const policy = createAddressPolicy(["fd00:1234::/32", "::1/128"]);
    expect(policy.check("fd00:1234::5").allowed).toBe(true);
    expect(policy.check("::1").allowed).toBe(true);
    expect(policy.check("fd00:1235::5").allowed).toBe(false);
  });

  it("never admits cloud metadata endpoints, whatever the allow-list says", () => {
    const policy = createAddressPolicy(["169.254.0.0/16", "0.0.0.0/0", "::/0", "fd00::/8"]);
    for (const address of [
      "169.254.169.254",
      "169.254.170.2",
      "::ffff:169.254.169.254",
      "::a9fe:a9fe",
      "64:ff9b::a9fe:a9fe",
      "2002:a9fe:a9fe::",
      "fd00:ec2::254",
      "169.254.170.23",
      "fd00:ec2::23",
      "169.254.0.23",
      "192.0.0.192",
      "168.63.129.16",
    ]) {
      expect(policy.check(address).allowed, address).toBe(false);
    }
    expect(policy.check("169.254.1.1").allowed).toBe(true);
  });

  it("blocks Azure's WireServer, a public-space address, without any allow-list", () => {
    expect(createAddressPolicy().check("168.63.129.16")).toEqual({
      allowed: false,
      reason: "cloud metadata endpoint",
      category: "cloud metadata endpoint",
    });
  });

  it("judges IPv6 forms that embed an IPv4 address by that address, not by an IPv6 allow-list entry", () => {
    const policy = createAddressPolicy(["::/0", "64:ff9b::/96", "2002::/16"]);
    for (const address of ["64:ff9b::a00:1", "::ffff:0:7f00:1", "2002:0a00:0001::1", "::a00:1"]) {
      expect(policy.check(address).allowed, address).toBe(false);
    }
    expect(policy.check("64:ff9b::808:808").allowed).toBe(true); // 8.8.8.8: public either way
    expect(policy.check("fd00::1").allowed).toBe(true); // a plain IPv6 address the entry does cover
    expect(createAddressPolicy(["10.0.0.0/8"]).check("64:ff9b::a00:1").allowed).toBe(true);
  });

  it.each(["10/8", "10.0.0.0/33", "not-a-cidr", "10.0.0.0/8/8", "::1/129", "10.0.0.0/-1", "fe80::1%eth0/64"])(
    "rejects invalid entry %s with its name in the message",
    (entry) => {
      expect(() => createAddressPolicy(["127.0.0.0/8", entry])).toThrow(entry);
    },
  );
});

describe("parseCidrList", () => {
  it("splits, trims and drops empty entries", () => {
    expect(parseCidrList(" 10.0.0.0/8, ,fd00::/8,")).toEqual(["10.0.0.0/8", "fd00::/8"]);
    expect(parseCidrList("")).toEqual([]);
    expect(parseCidrList(undefined)).toEqual([]);
  });
});
