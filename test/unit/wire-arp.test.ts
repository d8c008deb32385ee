import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  ARP_REPLY,
  ARP_REQUEST,
  decodeArp,
  ETH_MIN_FRAME,
  encodeGratuitousArp,
  formatMac,
  parseMac,
  virtualMac,
} from "../../agent/wire/arp.ts";
import { canonicalIp } from "../../agent/wire/ip.ts";
import { DecodeError } from "../../agent/wire/result.ts";
import { hex } from "./pcap.ts";

// keepalived 2.2.7 announcing 192.0.2.100 from 02:00:00:00:00:0a (captured on a veth, so unpadded).
const KA_GARP = hex(
  "ffffffffffff 02000000000a 0806" + "0001 0800 06 04 0001 02000000000a c0000264 ffffffffffff c0000264",
);

const macBytes = fc.uint8Array({ minLength: 6, maxLength: 6 });
const v4addr = fc.ipV4().map((s) => canonicalIp(s)!);

function expectDecodeResult(r: ReturnType<typeof decodeArp>): void {
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(DecodeError);
    expect(["too_short", "not_arp", "bad_arp"]).toContain(r.error.reason);
  }
}

describe("MAC helpers", () => {
  test("parse and format", () => {
    expect(parseMac("02:00:00:00:00:0a")).toEqual(Uint8Array.of(2, 0, 0, 0, 0, 10));
    expect(parseMac("AA-BB-CC-DD-EE-FF")).toEqual(Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff));
    expect(formatMac(Uint8Array.of(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f))).toBe("aa:bb:cc:dd:ee:0f");
    expect(formatMac(Uint8Array.of(9, 9, 1, 2, 3, 4, 5, 6), 2)).toBe("01:02:03:04:05:06");
    for (const bad of [
      "",
      "02:00:00:00:00",
      "02:00:00:00:00:0a:0b",
      "02:00:00-00:00:0a",
      "0g:00:00:00:00:00",
      "2:0:0:0:0:a",
    ]) {
      expect(parseMac(bad)).toBeNull();
    }
  });

  test("round trip and no throw on arbitrary text", () => {
    fc.assert(
      fc.property(macBytes, (b) => {
        expect(parseMac(formatMac(b))).toEqual(b);
        expect(parseMac(formatMac(b).toUpperCase())).toEqual(b);
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (s) => {
        const b = parseMac(s);
        expect(b === null || b.length === 6).toBe(true);
      }),
    );
  });

  test("VRRP virtual MAC (RFC 5798 §7.3)", () => {
    expect(formatMac(virtualMac(51, 4))).toBe("00:00:5e:00:01:33");
    expect(formatMac(virtualMac(255, 6))).toBe("00:00:5e:00:02:ff");
  });
});

describe("gratuitous ARP", () => {
  const mac = parseMac("02:00:00:00:00:0a")!;

  test("matches keepalived 2.2.7 byte for byte, then zero padding to 60", () => {
    const f = encodeGratuitousArp(mac, "192.0.2.100");
    expect(f.length).toBe(ETH_MIN_FRAME);
    expect(f.subarray(0, KA_GARP.length)).toEqual(KA_GARP);
    expect(f.subarray(KA_GARP.length).every((x) => x === 0)).toBe(true);
  });

  test("decodes keepalived's frame", () => {
    const r = decodeArp(KA_GARP);
    expect(r).toEqual({
      ok: true,
      value: {
        ethDst: "ff:ff:ff:ff:ff:ff",
        ethSrc: "02:00:00:00:00:0a",
        op: ARP_REQUEST,
        senderMac: "02:00:00:00:00:0a",
        senderIp: "192.0.2.100",
        targetMac: "ff:ff:ff:ff:ff:ff",
        targetIp: "192.0.2.100",
        gratuitous: true,
      },
    });
  });

  test("ordinary request and reply are not gratuitous", () => {
    const f = encodeGratuitousArp(mac, "192.0.2.100");
    f[14 + 27] = 1; // target 192.0.2.1
    f[14 + 7] = ARP_REPLY;
    const r = decodeArp(f);
    expect(r.ok && r.value.gratuitous).toBe(false);
    expect(r.ok && r.value.op).toBe(ARP_REPLY);
  });

  test("encode rejects bad input", () => {
    expect(() => encodeGratuitousArp(new Uint8Array(5), "192.0.2.1")).toThrow(RangeError);
    expect(() => encodeGratuitousArp(mac, "2001:db8::1")).toThrow(RangeError);
  });

  test("decode rejects with stable reasons", () => {
    const reason = (b: Uint8Array) => {
      const r = decodeArp(b);
      return r.ok ? "ok" : r.error.reason;
    };
    expect(reason(KA_GARP.subarray(0, 13))).toBe("too_short");
    expect(reason(KA_GARP.subarray(0, 41))).toBe("too_short");
    const ip = KA_GARP.slice();
    ip[13] = 0x00;
    expect(reason(ip)).toBe("not_arp");
    for (const [i, v] of [
      [15, 6], // hardware type IEEE 802
      [16, 0x86], // protocol type IPv6
      [18, 8], // hardware length
      [19, 16], // protocol length
      [21, 3], // RARP opcode
    ] as const) {
      const b = KA_GARP.slice();
      b[i] = v;
      expect(reason(b)).toBe("bad_arp");
    }
  });

  test("round trip for any MAC and address", () => {
    fc.assert(
      fc.property(macBytes, v4addr, (m, ip) => {
        const r = decodeArp(encodeGratuitousArp(m, ip));
        expect(r.ok).toBe(true);
        if (!r.ok) return;
        const mt = formatMac(m);
        expect(r.value).toEqual({
          ethDst: "ff:ff:ff:ff:ff:ff",
          ethSrc: mt,
          op: ARP_REQUEST,
          senderMac: mt,
          senderIp: ip,
          targetMac: "ff:ff:ff:ff:ff:ff",
          targetIp: ip,
          gratuitous: true,
        });
      }),
    );
  });

  test("arbitrary bytes give a value or a DecodeError, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), (b, plausible) => {
        if (plausible && b.length >= 14) {
          b[12] = 0x08;
          b[13] = 0x06;
        }
        expectDecodeResult(decodeArp(b));
      }),
      { numRuns: 3000 },
    );
  });

  test("mutated and truncated valid frames never throw", () => {
    fc.assert(
      fc.property(
        macBytes,
        v4addr,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        (m, ip, edits, cut) => {
          const f = encodeGratuitousArp(m, ip);
          for (const [at, v] of edits) f[at % f.length] = v;
          expectDecodeResult(decodeArp(f));
          const short = decodeArp(f.subarray(0, cut % 42));
          expect(short.ok).toBe(false);
          expectDecodeResult(short);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
