import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { internetChecksum } from "../../agent/wire/checksum.ts";
import { decodeIcmp, encodeEcho, stripIpv4Header } from "../../agent/wire/icmp.ts";
import { hex } from "./pcap.ts";

describe("ICMP echo codec", () => {
  test("a known echo request (as ping sends it)", () => {
    const b = encodeEcho({ family: 4, reply: false, id: 0x1234, seq: 1, payload: hex("61626364") });
    expect(b).toEqual(hex("0800 2104 1234 0001 61626364"));
    expect(internetChecksum(b)).toBe(0);
  });

  test("ICMPv6 leaves the checksum to the kernel", () => {
    const b = encodeEcho({ family: 6, reply: false, id: 1, seq: 2, payload: new Uint8Array(0) });
    expect(b).toEqual(hex("8000 0000 0001 0002"));
  });

  test("round trip, both families, with checksum verified for v4", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<4 | 6>(4, 6),
        fc.boolean(),
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ maxLength: 64 }),
        (family, reply, id, seq, payload) => {
          const d = decodeIcmp(encodeEcho({ family, reply, id, seq, payload }), {
            family,
            verifyChecksum: true,
          });
          expect(d.ok && d.value).toEqual({ kind: "echo", family, reply, id, seq, payload });
        },
      ),
    );
  });

  test("a flipped bit fails the v4 checksum", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 32 }), fc.nat(), (payload, bit) => {
        const b = encodeEcho({ family: 4, reply: true, id: 7, seq: 9, payload });
        const i = bit % (b.length * 8);
        b[i >> 3]! ^= 1 << (i & 7);
        const d = decodeIcmp(b, { family: 4, verifyChecksum: true });
        // flipping a type bit may also make it a non-echo message; it must never pass as our echo
        if (d.ok) expect(d.value.kind === "echo" && d.value.id === 7 && d.value.seq === 9).toBe(false);
      }),
    );
  });

  test("other types are reported, garbage never throws", () => {
    const unreach = decodeIcmp(hex("0303 0000 00000000"), { family: 4 });
    expect(unreach.ok && unreach.value).toEqual({ kind: "other", family: 4, type: 3, code: 3 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.constantFrom<4 | 6>(4, 6), (b, family) => {
        decodeIcmp(b, { family, verifyChecksum: true });
        stripIpv4Header(b);
      }),
    );
    expect(decodeIcmp(new Uint8Array(7), { family: 4 }).ok).toBe(false);
  });

  test("stripIpv4Header honours IHL", () => {
    const ip = new Uint8Array(24 + 8);
    ip[0] = 0x46;
    ip[24] = 0;
    expect(stripIpv4Header(ip)?.length).toBe(8);
    expect(stripIpv4Header(Uint8Array.of(0x60, ...new Uint8Array(30)))).toBeNull();
    expect(stripIpv4Header(Uint8Array.of(0x4f, ...new Uint8Array(30)))).toBeNull();
  });
});
