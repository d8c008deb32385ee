// Receive-side checks (RFC 5798 §7.1, RFC 3768 §7.1) as keepalived 2.2.7's vrrp_check_packet applies them.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type ValidateConfig, validateAdvert } from "../../agent/vrrp/validate.ts";
import { type VrrpPacket, vrrpPassword } from "../../agent/wire/vrrp.ts";

const VIPS = ["192.0.2.100", "192.0.2.101"];

function cfg(over: Partial<ValidateConfig> = {}): ValidateConfig {
  return {
    vrid: 51,
    version: 3,
    family: 4,
    advertIntervalMs: 1000,
    vipCount: VIPS.length,
    vips: VIPS,
    unicast: false,
    unicastPeers: [],
    checkUnicastSrc: false,
    ...over,
  };
}

function pkt(over: Partial<VrrpPacket> = {}): VrrpPacket {
  return {
    version: 3,
    type: 1,
    vrid: 51,
    priority: 100,
    advertInterval: 100,
    authType: 0,
    authData: new Uint8Array(0),
    family: 4,
    addresses: [...VIPS],
    ...over,
  };
}

const v2 = (over: Partial<VrrpPacket> = {}) =>
  pkt({ version: 2, advertInterval: 1, authData: new Uint8Array(8), ...over });

const MC = { ttl: 255, src: "192.0.2.2", dst: "224.0.0.18" };
const UC = { ttl: 64, src: "192.0.2.2", dst: "192.0.2.10" };

describe("validateAdvert", () => {
  // [case, config, packet, rx, expected reason (null = accepted), logged]
  const rows: [string, Partial<ValidateConfig>, VrrpPacket, typeof MC, string | null, boolean][] = [
    ["a good v3 advert", {}, pkt(), MC, null, false],
    ["a good v2 advert", { version: 2 }, v2(), MC, null, false],
    ["another VRID: silent", {}, pkt({ vrid: 52 }), MC, "vrid", false],
    ["another family", {}, pkt({ family: 6 }), MC, "family", true],
    ["TTL 254 (multicast)", {}, pkt(), { ...MC, ttl: 254 }, "ttl", true],
    ["TTL unknown (-1): not checked", {}, pkt(), { ...MC, ttl: -1 }, null, false],
    ["TTL 64 in unicast: not checked (keepalived)", { unicast: true }, pkt(), UC, null, false],
    ["version 2 on a v3 instance", {}, v2(), MC, "version", true],
    ["version 3 on a v2 instance", { version: 2 }, pkt(), MC, "version", true],
    // v3: any interval is accepted and learnt
    ["v3 with another interval", {}, pkt({ advertInterval: 250 }), MC, null, false],
    // v2 (RFC 3768 §7.1, keepalived): another interval is dropped and logged
    ["v2 with another interval", { version: 2 }, v2({ advertInterval: 2 }), MC, "interval", true],
    [
      "v2 with the same non-default interval",
      { version: 2, advertIntervalMs: 3000 },
      v2({ advertInterval: 3 }),
      MC,
      null,
      false,
    ],
    ["type 2", {}, pkt({ type: 2 as 1 }), MC, "type", true],
    ["one address too few", {}, pkt({ addresses: [VIPS[0]!] }), MC, "addr_count", true],
    ["one address too many", {}, pkt({ addresses: [...VIPS, "192.0.2.102"] }), MC, "addr_count", true],
    ["same count, another address", {}, pkt({ addresses: [VIPS[0]!, "192.0.2.199"] }), MC, "addr_list", true],
    ["same addresses in another order", {}, pkt({ addresses: [VIPS[1]!, VIPS[0]!] }), MC, null, false],
    ["unicast advert on a multicast instance", {}, pkt(), { ...MC, dst: "192.0.2.10" }, "dst_type", true],
    [
      "multicast advert on a unicast instance",
      { unicast: true },
      pkt(),
      { ...UC, dst: "224.0.0.18" },
      "dst_type",
      true,
    ],
    [
      "IPv6 multicast/unicast mismatch: silent (keepalived's dispatcher)",
      { family: 6, vips: ["2001:db8::100"], vipCount: 1 },
      pkt({ family: 6, addresses: ["2001:db8::100"] }),
      { ttl: 255, src: "fe80::2", dst: "fe80::1" },
      "dst_type",
      false,
    ],
    [
      "IPv6 good",
      { family: 6, vips: ["2001:db8::100"], vipCount: 1 },
      pkt({ family: 6, addresses: ["2001:db8::100"] }),
      { ttl: 255, src: "fe80::2", dst: "ff02::12" },
      null,
      false,
    ],
    [
      "check_unicast_src: a peer",
      { unicast: true, checkUnicastSrc: true, unicastPeers: ["192.0.2.2"] },
      pkt(),
      UC,
      null,
      false,
    ],
    [
      "check_unicast_src: not a peer",
      { unicast: true, checkUnicastSrc: true, unicastPeers: ["192.0.2.3"] },
      pkt(),
      UC,
      "unicast_src",
      true,
    ],
    [
      "unicast source not checked without check_unicast_src",
      { unicast: true, unicastPeers: ["192.0.2.3"] },
      pkt(),
      UC,
      null,
      false,
    ],
    [
      "check_unicast_src: TTL outside the peer's range",
      {
        unicast: true,
        checkUnicastSrc: true,
        unicastPeers: ["192.0.2.2"],
        peerTtl: { "192.0.2.2": { min: 250, max: 255 } },
      },
      pkt(),
      UC,
      "ttl",
      true,
    ],
    // keepalived's order: TTL before version, version before auth, count before the address list
    ["bad TTL and bad version: ttl", {}, v2(), { ...MC, ttl: 1 }, "ttl", true],
    ["bad version and bad count: version", {}, v2({ addresses: [] }), MC, "version", true],
  ];
  test.each(rows)("%s", (_n, c, p, rx, reason, log) => {
    const r = validateAdvert(cfg(c), p, rx);
    if (reason === null) expect(r).toEqual({ ok: true });
    else expect(r).toEqual({ ok: false, reason: reason as never, log });
  });
});

describe("v2 authentication (RFC 3768 §5.3.6, keepalived)", () => {
  const pass = (p: string) => ({ version: 2 as const, auth: { type: "PASS" as const, pass: p } });

  test("PASS: the right password", () => {
    expect(
      validateAdvert(cfg(pass("secret")), v2({ authType: 1, authData: vrrpPassword("secret") }), MC),
    ).toEqual({ ok: true });
  });

  test("PASS: only the first 8 bytes count, zero padded", () => {
    expect(
      validateAdvert(cfg(pass("12345678xyz")), v2({ authType: 1, authData: vrrpPassword("12345678") }), MC),
    ).toEqual({ ok: true });
    const padded = new Uint8Array(8);
    padded.set([0x61, 0x62]);
    expect(validateAdvert(cfg(pass("ab")), v2({ authType: 1, authData: padded }), MC)).toEqual({ ok: true });
  });

  const bad: [string, Partial<ValidateConfig>, Partial<VrrpPacket>][] = [
    ["wrong password", pass("secret"), { authType: 1, authData: vrrpPassword("Secret") }],
    ["no auth received, PASS expected", pass("secret"), { authType: 0 }],
    ["PASS received, none expected", { version: 2 }, { authType: 1, authData: vrrpPassword("secret") }],
    ["invalid auth type 3", { version: 2 }, { authType: 3 }],
    [
      "AH (cannot be verified on this path)",
      { version: 2, auth: { type: "AH", pass: "k" } },
      { authType: 2 },
    ],
  ];
  test.each(bad)("%s: dropped as auth", (_n, c, p) => {
    expect(validateAdvert(cfg(c), v2(p), MC)).toEqual({ ok: false, reason: "auth", log: true });
  });

  test("keepalived ignores auth without a password, and for v3", () => {
    expect(validateAdvert(cfg(pass("")), v2(), MC)).toEqual({ ok: true });
    expect(validateAdvert(cfg({ auth: { type: "PASS", pass: "secret" } }), pkt(), MC)).toEqual({ ok: true });
  });

  test("property: any password other than ours (8-byte prefix) is refused", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ minLength: 1, maxLength: 12 }), (sent, ours) => {
        const r = validateAdvert(cfg(pass(ours)), v2({ authType: 1, authData: vrrpPassword(sent) }), MC);
        const same = vrrpPassword(sent).every((b, i) => b === vrrpPassword(ours)[i]);
        expect(r.ok).toBe(same);
      }),
    );
  });
});
