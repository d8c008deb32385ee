import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  DNS_CLASS_IN,
  type DnsMessage,
  decodeDns,
  decodeDnsHeader,
  decodeFlags,
  decodeName,
  dnsType,
  encodeDns,
  encodeFlags,
  encodeName,
  encodeQuery,
  judgeReply,
  RCODE_NXDOMAIN,
} from "../../agent/wire/dns.ts";
import { hex } from "./pcap.ts";

const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const name = fc.array(label, { minLength: 0, maxLength: 6 }).map((ls) => ls.join("."));
const flags = fc.record({
  qr: fc.boolean(),
  opcode: fc.integer({ min: 0, max: 15 }),
  aa: fc.boolean(),
  tc: fc.boolean(),
  rd: fc.boolean(),
  ra: fc.boolean(),
  z: fc.integer({ min: 0, max: 7 }),
  rcode: fc.integer({ min: 0, max: 15 }),
});
const u16 = fc.integer({ min: 0, max: 0xffff });
const record = fc.record({
  name,
  type: u16,
  class: u16,
  ttl: fc.integer({ min: 0, max: 0xffffffff }),
  data: fc.uint8Array({ maxLength: 40 }),
});
const message: fc.Arbitrary<DnsMessage> = fc.record({
  id: u16,
  flags,
  questions: fc.array(fc.record({ name, type: u16, class: u16 }), { maxLength: 3 }),
  answers: fc.array(record, { maxLength: 3 }),
  authorities: fc.array(record, { maxLength: 2 }),
  additionals: fc.array(record, { maxLength: 2 }),
});

describe("DNS codec", () => {
  test("the query keepalived's DNS_CHECK sends (SOA for the root, RD set)", () => {
    // id 0x1234, flags 0x0100, qdcount 1, root name, type SOA (6), class IN
    expect(encodeQuery(0x1234, "", 6)).toEqual(hex("1234 0100 0001 0000 0000 0000 00 0006 0001"));
    expect(encodeQuery(1, "www.example.com", 1)).toEqual(
      hex("0001 0100 0001 0000 0000 0000 03777777 076578616d706c65 03636f6d 00 0001 0001"),
    );
  });

  test("types by keepalived's names", () => {
    expect(dnsType("soa")).toBe(6);
    expect(dnsType("AAAA")).toBe(28);
    expect(dnsType("DNSKEY")).toBe(48);
    expect(dnsType("BOGUS")).toBeNull();
    expect(dnsType(65)).toBe(65);
    expect(dnsType(0)).toBeNull();
  });

  test("names: bad labels are rejected, compression pointers followed, loops stopped", () => {
    expect(encodeName("a..b")).toBeNull();
    expect(encodeName("x".repeat(64))).toBeNull();
    expect(encodeName(`${"a".repeat(63)}.`.repeat(4))).toBeNull();
    expect(encodeName("example.com.")).toEqual(encodeName("example.com"));
    // "www" + pointer to offset 0 ("example.com")
    const buf = Uint8Array.from([...encodeName("example.com")!, 3, 119, 119, 119, 0xc0, 0]);
    const r = decodeName(buf, 13);
    expect(r.ok && r.value).toEqual({ name: "www.example.com", next: 19 });
    const loop = Uint8Array.of(0xc0, 0);
    const l = decodeName(loop, 0);
    expect(!l.ok && l.error.reason).toBe("bad_name");
  });

  test("flags round trip", () => {
    fc.assert(fc.property(flags, (f) => expect(decodeFlags(encodeFlags(f))).toEqual(f)));
  });

  test("messages round trip", () => {
    fc.assert(
      fc.property(message, (m) => {
        const b = encodeDns(m);
        expect(b).not.toBeNull();
        const d = decodeDns(b!);
        expect(d.ok).toBe(true);
        if (d.ok) expect(d.value).toEqual(m);
      }),
    );
  });

  test("decoders never throw and fail with a stable reason on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
        const d = decodeDns(b);
        if (!d.ok) expect(["too_short", "truncated", "bad_name"]).toContain(d.error.reason);
        decodeDnsHeader(b);
        judgeReply(b, 0);
      }),
    );
  });

  test("every truncation of a valid message is rejected, not misread", () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, cut) => {
        const b = encodeDns(m)!;
        if (b.length <= 12) return;
        const n = 12 + (cut % (b.length - 12));
        const needsMore =
          m.questions.length + m.answers.length + m.authorities.length + m.additionals.length > 0;
        if (needsMore) expect(decodeDns(b.subarray(0, n)).ok).toBe(false);
      }),
    );
  });
});

describe("DNS_CHECK reply verdict", () => {
  const reply = (id: number, qr: boolean, rcode: number, answers = 0) =>
    encodeDns({
      id,
      flags: { qr, opcode: 0, aa: true, tc: false, rd: true, ra: false, z: 0, rcode },
      questions: [{ name: "", type: 6, class: DNS_CLASS_IN }],
      answers: Array.from({ length: answers }, () => ({
        name: "",
        type: 6,
        class: DNS_CLASS_IN,
        ttl: 60,
        data: new Uint8Array(4),
      })),
      authorities: [],
      additionals: [],
    })!;

  test("as keepalived decides", () => {
    expect(judgeReply(reply(7, true, 0, 1), 7)).toEqual({ kind: "ok" });
    // answers are not required
    expect(judgeReply(reply(7, true, 0, 0), 7)).toEqual({ kind: "ok" });
    expect(judgeReply(reply(8, true, 0, 1), 7)).toEqual({ kind: "ignore", why: "wrong_id" });
    expect(judgeReply(reply(7, false, 0), 7)).toEqual({ kind: "ignore", why: "not_response" });
    expect(judgeReply(reply(7, true, RCODE_NXDOMAIN), 7)).toEqual({ kind: "fail", rcode: 3 });
    expect(judgeReply(new Uint8Array(11), 0)).toEqual({ kind: "ignore", why: "too_short" });
  });
});
