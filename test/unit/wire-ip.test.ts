import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  canonicalIp,
  compareIp,
  familyOf,
  formatIPv4,
  formatIPv6,
  formatIp,
  isLinkLocalV6,
  isMulticastIp,
  parseIPv4,
  parseIPv6,
  parseIp,
} from "../../agent/wire/ip.ts";

// WHATWG URL serialises IPv6 hosts with RFC 5952's rules (lowercase, no leading zeros, longest zero run
// of two or more compressed, first run on a tie): an independent oracle for formatIPv6.
function whatwgIPv6(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

const v4bytes = fc.uint8Array({ minLength: 4, maxLength: 4 });
const v6bytes = fc.uint8Array({ minLength: 16, maxLength: 16 });
// Zero-heavy addresses so compression ties and runs are actually exercised.
const v6sparse = fc
  .array(fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
    minLength: 8,
    maxLength: 8,
  })
  .map((g) => {
    const b = new Uint8Array(16);
    g.forEach((x, i) => {
      b[i * 2] = x >> 8;
      b[i * 2 + 1] = x & 0xff;
    });
    return b;
  });

describe("ip", () => {
  test("familyOf", () => {
    expect(familyOf("192.0.2.1")).toBe(4);
    expect(familyOf("2001:db8::1")).toBe(6);
    expect(familyOf("::ffff:192.0.2.1")).toBe(6);
    expect(familyOf("192.0.2")).toBeNull();
    expect(familyOf("")).toBeNull();
    expect(familyOf("2001:db8::g")).toBeNull();
  });

  test("parseIPv4 rejects what is not dotted-quad", () => {
    expect(parseIPv4("192.0.2.1")).toEqual(Uint8Array.of(192, 0, 2, 1));
    for (const bad of ["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", " 1.2.3.4", "2001:db8::1", "a.b.c.d"]) {
      expect(parseIPv4(bad)).toBeNull();
    }
  });

  test("parseIPv6 forms", () => {
    expect(parseIPv6("::")).toEqual(new Uint8Array(16));
    expect(formatIPv6(parseIPv6("::1")!)).toBe("::1");
    expect(formatIPv6(parseIPv6("1::")!)).toBe("1::");
    expect(formatIPv6(parseIPv6("2001:DB8:0:0:1:0:0:1")!)).toBe("2001:db8::1:0:0:1");
    expect(formatIPv6(parseIPv6("2001:db8:0000:0000:0000:0000:0000:0001")!)).toBe("2001:db8::1");
    // Embedded IPv4 tails are accepted and printed as hex groups.
    expect(formatIPv6(parseIPv6("::ffff:192.0.2.1")!)).toBe("::ffff:c000:201");
    expect(formatIPv6(parseIPv6("1:2:3:4:5:6:192.0.2.1")!)).toBe("1:2:3:4:5:6:c000:201");
    for (const bad of ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "192.0.2.1", ":1", "1:"]) {
      expect(parseIPv6(bad)).toBeNull();
    }
  });

  test("RFC 5952 formatting rules", () => {
    const cases: [string, string][] = [
      ["2001:db8:0:0:0:0:2:1", "2001:db8::2:1"], // §4.2.1 longest run
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // §4.2.2 no single-group compression
      ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // §4.2.3 longest run wins
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // §4.2.3 first run on a tie
      ["2001:DB8::AAAA", "2001:db8::aaaa"], // §4.3 lowercase
      ["2001:db8::0001", "2001:db8::1"], // §4.1 no leading zeros
      ["fe80:0:0:0:0:0:0:0", "fe80::"],
      ["0:0:0:0:0:0:0:1", "::1"],
    ];
    for (const [input, want] of cases) expect(canonicalIp(input)).toBe(want);
  });

  test("formatIPv6 agrees with the WHATWG serialiser", () => {
    fc.assert(
      fc.property(fc.oneof(v6bytes, v6sparse), (b) => {
        expect(formatIPv6(b)).toBe(whatwgIPv6(b));
      }),
      { numRuns: 1000 },
    );
  });

  test("bytes -> text -> bytes is the identity", () => {
    fc.assert(
      fc.property(v4bytes, (b) => {
        expect(parseIPv4(formatIPv4(b))).toEqual(b);
      }),
    );
    fc.assert(
      fc.property(fc.oneof(v6bytes, v6sparse), (b) => {
        expect(parseIPv6(formatIPv6(b))).toEqual(b);
      }),
    );
  });

  test("canonicalIp is idempotent on generated addresses of any spelling", () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (s) => {
        const c = canonicalIp(s);
        expect(c).not.toBeNull();
        expect(canonicalIp(c!)).toBe(c);
        expect(parseIp(c!)).toEqual(parseIp(s));
      }),
      { numRuns: 500 },
    );
  });

  test("formatIp reads at an offset and picks the family by remaining length", () => {
    const b = Uint8Array.of(9, 9, 192, 0, 2, 7);
    expect(formatIp(b, 2)).toBe("192.0.2.7");
    const v6 = new Uint8Array(18);
    v6.set(parseIPv6("2001:db8::7")!, 2);
    expect(formatIp(v6, 2)).toBe("2001:db8::7");
    expect(formatIp(v6, 2, 4)).toBe("32.1.13.184");
  });

  test("compareIp orders as unsigned big-endian integers", () => {
    expect(compareIp(parseIp("192.0.2.10")!, parseIp("192.0.2.9")!)).toBeGreaterThan(0);
    expect(compareIp(parseIp("192.0.2.9")!, parseIp("192.0.2.10")!)).toBeLessThan(0);
    expect(compareIp(parseIp("2001:db8::1")!, parseIp("2001:db8::1")!)).toBe(0);
    fc.assert(
      fc.property(v4bytes, v4bytes, (a, b) => {
        const na = new DataView(a.buffer).getUint32(0);
        const nb = new DataView(b.buffer).getUint32(0);
        expect(Math.sign(compareIp(a, b))).toBe(Math.sign(na - nb));
      }),
    );
  });

  test("isLinkLocalV6 covers fe80::/10 only", () => {
    expect(isLinkLocalV6(parseIp("fe80::1")!)).toBe(true);
    expect(isLinkLocalV6(parseIp("febf:ffff::1")!)).toBe(true);
    expect(isLinkLocalV6(parseIp("fec0::1")!)).toBe(false);
    expect(isLinkLocalV6(parseIp("2001:db8::1")!)).toBe(false);
    expect(isLinkLocalV6(parseIp("192.0.2.1")!)).toBe(false);
  });

  test("parsers never throw on arbitrary strings", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (s) => {
        const b = parseIp(s);
        expect(b === null || b.length === 4 || b.length === 16).toBe(true);
        canonicalIp(s);
        familyOf(s);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("isMulticastIp", () => {
  test.each([
    ["224.0.0.18", true],
    ["239.255.255.255", true],
    ["223.255.255.255", false],
    ["240.0.0.1", false],
    ["192.0.2.1", false],
    ["ff02::12", true],
    ["FF05::1", true],
    ["fe80::1", false],
    ["2001:db8::1", false],
  ])("%s: %p", (a, want) => {
    expect(isMulticastIp(a)).toBe(want);
  });
});
