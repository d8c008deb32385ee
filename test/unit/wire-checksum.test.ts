import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  finish,
  fold,
  internetChecksum,
  pseudoSumV4,
  pseudoSumV6,
  sum16,
  verifies,
} from "../../agent/wire/checksum.ts";
import { hex } from "./pcap.ts";

// Reference: the textbook loop, folding after every word, over a plain number array.
function naiveChecksum(bytes: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    s += ((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0);
    s = (s & 0xffff) + (s >>> 16);
  }
  return ~s & 0xffff;
}

const anyIPv4 = fc.uint8Array({ minLength: 4, maxLength: 4 });
const anyIPv6 = fc.uint8Array({ minLength: 16, maxLength: 16 });
// fc.integer stops at 2^31 - 1; the IPv6 pseudo-header length is a full 32 bits.
const u32 = fc.tuple(fc.nat(0xffff), fc.nat(0xffff)).map(([hi, lo]) => hi * 0x10000 + lo);

describe("internet checksum", () => {
  test("RFC 1071 §3 worked example", () => {
    // 0001 + f203 + f4f5 + f6f7 = 2ddf0 -> ddf2 after the end-around carry.
    const b = hex("00 01 f2 03 f4 f5 f6 f7");
    expect(fold(sum16(b))).toBe(0xddf2);
    expect(internetChecksum(b)).toBe(0x220d);
  });

  test("known IPv4 header checksum", () => {
    const h = hex("4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7");
    expect(internetChecksum(h)).toBe(0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    expect(verifies(sum16(h))).toBe(true);
  });

  test("odd length pads the last byte with zero", () => {
    expect(internetChecksum(hex("01"))).toBe(~0x0100 & 0xffff);
    expect(internetChecksum(hex("0102 03"))).toBe(internetChecksum(hex("0102 0300")));
  });

  test("empty input and all-zero input", () => {
    expect(internetChecksum(new Uint8Array(0))).toBe(0xffff);
    expect(internetChecksum(new Uint8Array(10))).toBe(0xffff);
    expect(fold(0)).toBe(0);
    expect(verifies(0)).toBe(false);
  });

  test("fold handles sums beyond 32 bits", () => {
    expect(fold(0xffff * 0x10000 + 0xffff)).toBe(0xffff);
    expect(fold(2 ** 40)).toBe(fold(2 ** 40 % 0xffff));
    expect(finish(0x1_0000)).toBe(~1 & 0xffff);
  });

  test("matches the reference on random data and sub-ranges", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), fc.nat(), (b, x, y) => {
        const start = b.length ? x % (b.length + 1) : 0;
        const end = start + (b.length - start ? y % (b.length - start + 1) : 0);
        expect(internetChecksum(b, start, end)).toBe(naiveChecksum([...b.subarray(start, end)]));
      }),
      { numRuns: 500 },
    );
  });

  test("sums over even-length segments compose", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), (b, x) => {
        const k = (x % (b.length + 1)) & ~1;
        expect(fold(sum16(b, k, b.length, sum16(b, 0, k)))).toBe(fold(sum16(b)));
      }),
    );
  });

  test("a filled-in checksum verifies, and any single-byte change breaks it", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 4, maxLength: 200 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (raw, at, flip) => {
          const b = raw.length % 2 ? Uint8Array.of(...raw, 0) : raw.slice();
          b[0] = 0;
          b[1] = 0;
          const c = internetChecksum(b);
          b[0] = c >> 8;
          b[1] = c & 0xff;
          expect(verifies(sum16(b))).toBe(true);
          const i = at % b.length;
          b[i] = b[i]! ^ flip;
          expect(verifies(sum16(b))).toBe(false);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("IPv4 pseudo-header sum equals the sum of the RFC 768 layout", () => {
    fc.assert(
      fc.property(
        anyIPv4,
        anyIPv4,
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 0xffff }),
        (s, d, p, l) => {
          const ph = new Uint8Array(12);
          ph.set(s, 0);
          ph.set(d, 4);
          ph[9] = p;
          ph[10] = l >> 8;
          ph[11] = l & 0xff;
          expect(fold(pseudoSumV4(s, d, p, l))).toBe(fold(sum16(ph)));
        },
      ),
    );
  });

  test("IPv6 pseudo-header sum equals the sum of the RFC 8200 layout", () => {
    fc.assert(
      fc.property(anyIPv6, anyIPv6, u32, fc.integer({ min: 0, max: 255 }), (s, d, l, nh) => {
        const ph = new Uint8Array(40);
        ph.set(s, 0);
        ph.set(d, 16);
        new DataView(ph.buffer).setUint32(32, l);
        ph[39] = nh;
        expect(fold(pseudoSumV6(s, d, l, nh))).toBe(fold(sum16(ph)));
      }),
    );
  });
});
