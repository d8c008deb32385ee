import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { formatMac, parseMac } from "../../agent/wire/arp.ts";
import { internetChecksum, pseudoSumV6 } from "../../agent/wire/checksum.ts";
import { canonicalIp, parseIPv6 } from "../../agent/wire/ip.ts";
import { decodeNdpFrame, encodeUnsolicitedNa, type NdpMessage } from "../../agent/wire/ndp.ts";
import { DecodeError } from "../../agent/wire/result.ts";
import { ethernetFrame, hex, ipv6MulticastMac, ipv6Packet } from "./pcap.ts";

// keepalived 2.2.7 announcing 2001:db8::100 from 02:00:00:00:00:0a: note the IPv6 source is the VIP.
const KA_NA = hex(
  "333300000001 02000000000a 86dd" +
    "60000000 0020 3a ff 20010db8000000000000000000000100 ff020000000000000000000000000001" +
    "88 00 f723 20000000 20010db8000000000000000000000100 02 01 02000000000a",
);
const ETH = 14;
const IP = ETH;
const ICMP = IP + 40;

const mac = parseMac("02:00:00:00:00:0a")!;
const macBytes = fc.uint8Array({ minLength: 6, maxLength: 6 });
const v6addr = fc.ipV6().map((s) => canonicalIp(s)!);

const REASONS = [
  "too_short",
  "not_ipv6",
  "not_icmpv6",
  "bad_length",
  "bad_type",
  "bad_code",
  "bad_checksum",
  "bad_option",
];

function expectDecodeResult(r: ReturnType<typeof decodeNdpFrame>): void {
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(DecodeError);
    expect(REASONS).toContain(r.error.reason);
  }
}

function reason(f: Uint8Array): string {
  const r = decodeNdpFrame(f);
  return r.ok ? "ok" : r.error.reason;
}

/** Re-seals the ICMPv6 checksum after a test edits the message on purpose. */
function reseal(f: Uint8Array): Uint8Array {
  const plen = (f[IP + 4]! << 8) | f[IP + 5]!;
  f[ICMP + 2] = 0;
  f[ICMP + 3] = 0;
  const ps = pseudoSumV6(f.subarray(IP + 8, IP + 24), f.subarray(IP + 24, IP + 40), plen, 58);
  const c = internetChecksum(f, ICMP, ICMP + plen, ps);
  f[ICMP + 2] = c >> 8;
  f[ICMP + 3] = c & 0xff;
  return f;
}

/** A Neighbor Solicitation for `target` with a Source Link-Layer Address option, built by hand. */
function neighborSolicitation(srcMac: Uint8Array, src: string, target: string): Uint8Array {
  const t = parseIPv6(target)!;
  const group = `ff02::1:ff${t[13]!.toString(16).padStart(2, "0")}:${((t[14]! << 8) | t[15]!).toString(16)}`;
  const icmp = new Uint8Array(32);
  icmp[0] = 135;
  icmp.set(t, 8);
  icmp[24] = 1;
  icmp[25] = 1;
  icmp.set(srcMac, 26);
  const f = ethernetFrame(
    ipv6MulticastMac(group),
    srcMac,
    0x86dd,
    ipv6Packet(icmp, { src, dst: group, nextHeader: 58, trafficClass: 0 }),
  );
  return reseal(f);
}

describe("unsolicited NA", () => {
  test("matches keepalived 2.2.7 byte for byte", () => {
    expect(encodeUnsolicitedNa(mac, "2001:db8::100", "2001:db8::100")).toEqual(KA_NA);
  });

  test("decodes keepalived's frame", () => {
    const want: NdpMessage = {
      ethDst: "33:33:00:00:00:01",
      ethSrc: "02:00:00:00:00:0a",
      src: "2001:db8::100",
      dst: "ff02::1",
      hopLimit: 255,
      type: 136,
      router: false,
      solicited: false,
      override: true,
      target: "2001:db8::100",
      sourceLinkAddr: null,
      targetLinkAddr: "02:00:00:00:00:0a",
    };
    expect(decodeNdpFrame(KA_NA)).toEqual({ ok: true, value: want });
  });

  test("router flag and a link-local source", () => {
    const f = encodeUnsolicitedNa(mac, "fe80::ff:fe00:a", "2001:db8::100", { router: true });
    expect(f[ICMP + 4]).toBe(0xa0);
    const r = decodeNdpFrame(f);
    expect(r.ok && r.value).toMatchObject({
      router: true,
      override: true,
      solicited: false,
      src: "fe80::ff:fe00:a",
    });
  });

  test("encode rejects bad input", () => {
    expect(() => encodeUnsolicitedNa(new Uint8Array(7), "fe80::1", "2001:db8::1")).toThrow(RangeError);
    expect(() => encodeUnsolicitedNa(mac, "192.0.2.1", "2001:db8::1")).toThrow(RangeError);
    expect(() => encodeUnsolicitedNa(mac, "fe80::1", "2001:db8::x")).toThrow(RangeError);
  });

  test("round trip for any MAC, source, target and router flag", () => {
    fc.assert(
      fc.property(macBytes, v6addr, v6addr, fc.boolean(), (m, src, target, router) => {
        const r = decodeNdpFrame(encodeUnsolicitedNa(m, src, target, { router }));
        expect(r).toEqual({
          ok: true,
          value: {
            ethDst: "33:33:00:00:00:01",
            ethSrc: formatMac(m),
            src,
            dst: "ff02::1",
            hopLimit: 255,
            type: 136,
            router,
            solicited: false,
            override: true,
            target,
            sourceLinkAddr: null,
            targetLinkAddr: formatMac(m),
          },
        });
      }),
      { numRuns: 500 },
    );
  });
});

describe("NDP decode", () => {
  test("neighbor solicitation with a source link-layer option", () => {
    const f = neighborSolicitation(mac, "fe80::ff:fe00:a", "2001:db8::100");
    const r = decodeNdpFrame(f);
    expect(r.ok && r.value).toMatchObject({
      type: 135,
      dst: "ff02::1:ff00:100",
      ethDst: "33:33:ff:00:01:00",
      target: "2001:db8::100",
      sourceLinkAddr: "02:00:00:00:00:0a",
      targetLinkAddr: null,
      router: false,
      override: false,
    });
  });

  test("Ethernet padding after the IPv6 payload is ignored", () => {
    const padded = Uint8Array.of(...KA_NA, 0, 0, 0, 0, 0, 0);
    expect(decodeNdpFrame(padded)).toEqual(decodeNdpFrame(KA_NA));
  });

  test("unknown options are skipped", () => {
    const f = new Uint8Array(KA_NA.length + 8);
    f.set(KA_NA);
    f[IP + 5] = 40;
    f[KA_NA.length] = 200; // an unknown option, one 8-byte unit
    f[KA_NA.length + 1] = 1;
    const r = decodeNdpFrame(reseal(f));
    expect(r.ok && r.value.targetLinkAddr).toBe("02:00:00:00:00:0a");
  });

  test("each stable reason", () => {
    const edit = (i: number, v: number, sealed = false) => {
      const f = KA_NA.slice();
      f[i] = v;
      return sealed ? reseal(f) : f;
    };
    expect(reason(KA_NA.subarray(0, 10))).toBe("too_short");
    expect(reason(KA_NA.subarray(0, 53))).toBe("too_short");
    expect(reason(edit(12, 0x08))).toBe("not_ipv6");
    expect(reason(edit(IP, 0x40))).toBe("not_ipv6");
    expect(reason(edit(IP + 6, 17))).toBe("not_icmpv6");
    expect(reason(KA_NA.subarray(0, KA_NA.length - 1))).toBe("bad_length");
    expect(reason(edit(IP + 5, 16))).toBe("too_short");
    expect(reason(edit(ICMP, 134, true))).toBe("bad_type");
    expect(reason(edit(ICMP + 1, 1, true))).toBe("bad_code");
    expect(reason(edit(ICMP + 3, 0))).toBe("bad_checksum");
    expect(reason(edit(ICMP + 25, 0, true))).toBe("bad_option");
    expect(reason(edit(ICMP + 25, 2, true))).toBe("bad_option");
    const cut = KA_NA.slice(0, KA_NA.length - 6);
    cut[IP + 5] = 26; // 2 bytes of option: header only
    expect(reason(reseal(cut))).toBe("bad_option");
    const odd = KA_NA.slice(0, KA_NA.length - 7);
    odd[IP + 5] = 25; // 1 byte of option: not even a header
    expect(reason(reseal(odd))).toBe("bad_option");
  });

  test("single-byte corruption of anything the checksum or header checks cover is detected", () => {
    // Not covered by design: the MACs (no FCS here), traffic class/flow label, payload length (it bounds
    // what is summed, so a shorter length can coincide), and the hop limit (the caller checks 255).
    const covered = (i: number, len: number) =>
      i === 12 || i === 13 || i === IP + 6 || (i >= IP + 8 && i < len);
    fc.assert(
      fc.property(
        macBytes,
        v6addr,
        v6addr,
        fc.boolean(),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (m, s, t, rt, at, x) => {
          const f = encodeUnsolicitedNa(m, s, t, { router: rt });
          const i = at % f.length;
          f[i] = f[i]! ^ x;
          const r = decodeNdpFrame(f);
          expectDecodeResult(r);
          if (covered(i, f.length)) expect(r.ok).toBe(false);
        },
      ),
      { numRuns: 3000 },
    );
  });

  test("arbitrary bytes give a value or a DecodeError, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (b, plausible) => {
        if (plausible && b.length >= 62) {
          b[12] = 0x86;
          b[13] = 0xdd;
          b[IP] = 0x60;
          b[IP + 4] = 0;
          b[IP + 5] = Math.min(b[IP + 5]!, b.length - ICMP);
          b[IP + 6] = 58;
          b[ICMP] = 135 + (b[ICMP]! & 1);
          b[ICMP + 1] = 0;
        }
        expectDecodeResult(decodeNdpFrame(b));
      }),
      { numRuns: 3000 },
    );
  });

  test("mutated and truncated valid frames never throw; truncation always fails", () => {
    fc.assert(
      fc.property(
        macBytes,
        v6addr,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        fc.boolean(),
        (m, t, edits, cut, sealed) => {
          const f = encodeUnsolicitedNa(m, "fe80::1", t);
          const short = decodeNdpFrame(f.subarray(0, cut % f.length));
          expectDecodeResult(short);
          expect(short.ok).toBe(false);
          for (const [at, v] of edits) f[at % f.length] = v;
          // Resealing lets mutations of the option area reach the option parser.
          if (sealed && f[IP + 4] === 0 && f[IP + 5]! >= 24 && ICMP + f[IP + 5]! <= f.length) reseal(f);
          expectDecodeResult(decodeNdpFrame(f));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
