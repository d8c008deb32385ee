// DNS message codec (RFC 1035 §4), enough for DNS_CHECK and for test responders: header, questions and
// resource records with opaque RDATA. Names are decoded with compression pointers (loops rejected) and
// encoded without compression. Pure: no I/O, decoders never throw.
import { fail, ok, type Result } from "./result.ts";

export const DNS_HEADER_LEN = 12;
/** RFC 1035 §2.3.4 */
export const DNS_MAX_NAME = 255;
export const DNS_MAX_LABEL = 63;

/** Query types keepalived's DNS_CHECK knows by name (check_dns.c DNS_TYPE[]). */
export const DNS_TYPES: Readonly<Record<string, number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  RRSIG: 46,
  DNSKEY: 48,
};

export const DNS_CLASS_IN = 1;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;

export interface DnsFlags {
  qr: boolean;
  opcode: number;
  aa: boolean;
  tc: boolean;
  rd: boolean;
  ra: boolean;
  /** 3 reserved/AD/CD bits, kept as they came */
  z: number;
  rcode: number;
}

export interface DnsQuestion {
  /** dotted, without the trailing dot; "" is the root */
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: Uint8Array;
}

export interface DnsMessage {
  id: number;
  flags: DnsFlags;
  questions: DnsQuestion[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

export function encodeFlags(f: DnsFlags): number {
  return (
    ((f.qr ? 1 : 0) << 15) |
    ((f.opcode & 0xf) << 11) |
    ((f.aa ? 1 : 0) << 10) |
    ((f.tc ? 1 : 0) << 9) |
    ((f.rd ? 1 : 0) << 8) |
    ((f.ra ? 1 : 0) << 7) |
    ((f.z & 7) << 4) |
    (f.rcode & 0xf)
  );
}

export function decodeFlags(v: number): DnsFlags {
  return {
    qr: (v & 0x8000) !== 0,
    opcode: (v >> 11) & 0xf,
    aa: (v & 0x400) !== 0,
    tc: (v & 0x200) !== 0,
    rd: (v & 0x100) !== 0,
    ra: (v & 0x80) !== 0,
    z: (v >> 4) & 7,
    rcode: v & 0xf,
  };
}

/** A type mnemonic or number -> the type value; null when unknown. */
export function dnsType(t: string | number): number | null {
  if (typeof t === "number") return Number.isInteger(t) && t > 0 && t <= 0xffff ? t : null;
  const v = DNS_TYPES[t.toUpperCase()];
  return v ?? null;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Wire form of a name; null when a label is empty or too long, or the name exceeds 255 bytes. */
export function encodeName(name: string): Uint8Array | null {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  if (trimmed === "") return Uint8Array.of(0);
  const parts: number[] = [];
  for (const label of trimmed.split(".")) {
    const b = enc.encode(label);
    if (b.length === 0 || b.length > DNS_MAX_LABEL) return null;
    parts.push(b.length, ...b);
  }
  parts.push(0);
  if (parts.length > DNS_MAX_NAME) return null;
  return Uint8Array.from(parts);
}

/** Reads a (possibly compressed) name at `off`: the name and the offset after it in the message. */
export function decodeName(buf: Uint8Array, off: number): Result<{ name: string; next: number }> {
  const labels: string[] = [];
  let pos = off;
  let next = -1;
  let jumps = 0;
  let total = 1;
  for (;;) {
    if (pos >= buf.length) return fail("truncated", "name");
    const len = buf[pos]!;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= buf.length) return fail("truncated", "pointer");
      if (next < 0) next = pos + 2;
      // a message of at most 64 KiB cannot hold more distinct pointers than this without a loop
      if (++jumps > 128) return fail("bad_name", "pointer loop");
      pos = ((len & 0x3f) << 8) | buf[pos + 1]!;
      continue;
    }
    if ((len & 0xc0) !== 0) return fail("bad_name", "label type");
    if (len === 0) {
      if (next < 0) next = pos + 1;
      break;
    }
    if (pos + 1 + len > buf.length) return fail("truncated", "label");
    total += len + 1;
    if (total > DNS_MAX_NAME) return fail("bad_name", "too long");
    labels.push(dec.decode(buf.subarray(pos + 1, pos + 1 + len)));
    pos += 1 + len;
  }
  return ok({ name: labels.join("."), next });
}

export function encodeDns(m: DnsMessage): Uint8Array | null {
  const chunks: Uint8Array[] = [];
  const head = new Uint8Array(DNS_HEADER_LEN);
  const hv = new DataView(head.buffer);
  hv.setUint16(0, m.id & 0xffff);
  hv.setUint16(2, encodeFlags(m.flags));
  hv.setUint16(4, m.questions.length);
  hv.setUint16(6, m.answers.length);
  hv.setUint16(8, m.authorities.length);
  hv.setUint16(10, m.additionals.length);
  chunks.push(head);
  for (const q of m.questions) {
    const n = encodeName(q.name);
    if (!n) return null;
    const t = new Uint8Array(4);
    const tv = new DataView(t.buffer);
    tv.setUint16(0, q.type);
    tv.setUint16(2, q.class);
    chunks.push(n, t);
  }
  for (const r of [...m.answers, ...m.authorities, ...m.additionals]) {
    const n = encodeName(r.name);
    if (!n || r.data.length > 0xffff) return null;
    const t = new Uint8Array(10);
    const tv = new DataView(t.buffer);
    tv.setUint16(0, r.type);
    tv.setUint16(2, r.class);
    tv.setUint32(4, r.ttl >>> 0);
    tv.setUint16(8, r.data.length);
    chunks.push(n, t, r.data);
  }
  let len = 0;
  for (const c of chunks) len += c.length;
  const out = new Uint8Array(len);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** The query keepalived's DNS_CHECK sends: one question, class IN, RD set (check_dns.c dns_make_query). */
export function encodeQuery(id: number, name: string, type: number): Uint8Array | null {
  return encodeDns({
    id,
    flags: { qr: false, opcode: 0, aa: false, tc: false, rd: true, ra: false, z: 0, rcode: 0 },
    questions: [{ name, type, class: DNS_CLASS_IN }],
    answers: [],
    authorities: [],
    additionals: [],
  });
}

export interface DnsHeader {
  id: number;
  flags: DnsFlags;
  qdcount: number;
  ancount: number;
  nscount: number;
  arcount: number;
}

/** Just the fixed header: all DNS_CHECK looks at (id, QR, RCODE). */
export function decodeDnsHeader(buf: Uint8Array): Result<DnsHeader> {
  if (buf.length < DNS_HEADER_LEN) return fail("too_short", `${buf.length} bytes`);
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return ok({
    id: v.getUint16(0),
    flags: decodeFlags(v.getUint16(2)),
    qdcount: v.getUint16(4),
    ancount: v.getUint16(6),
    nscount: v.getUint16(8),
    arcount: v.getUint16(10),
  });
}

export function decodeDns(buf: Uint8Array): Result<DnsMessage> {
  const h = decodeDnsHeader(buf);
  if (!h.ok) return h;
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = DNS_HEADER_LEN;
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < h.value.qdcount; i++) {
    const n = decodeName(buf, off);
    if (!n.ok) return n;
    off = n.value.next;
    if (off + 4 > buf.length) return fail("truncated", "question");
    questions.push({ name: n.value.name, type: v.getUint16(off), class: v.getUint16(off + 2) });
    off += 4;
  }
  const sections: DnsRecord[][] = [[], [], []];
  const counts = [h.value.ancount, h.value.nscount, h.value.arcount];
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < counts[s]!; i++) {
      const n = decodeName(buf, off);
      if (!n.ok) return n;
      off = n.value.next;
      if (off + 10 > buf.length) return fail("truncated", "record");
      const rdlen = v.getUint16(off + 8);
      if (off + 10 + rdlen > buf.length) return fail("truncated", "rdata");
      sections[s]!.push({
        name: n.value.name,
        type: v.getUint16(off),
        class: v.getUint16(off + 2),
        ttl: v.getUint32(off + 4),
        data: buf.slice(off + 10, off + 10 + rdlen),
      });
      off += 10 + rdlen;
    }
  }
  return ok({
    id: h.value.id,
    flags: h.value.flags,
    questions,
    answers: sections[0]!,
    authorities: sections[1]!,
    additionals: sections[2]!,
  });
}

export type DnsVerdict =
  | { kind: "ignore"; why: "too_short" | "wrong_id" | "not_response" }
  | { kind: "ok" }
  | { kind: "fail"; rcode: number };

/**
 * What DNS_CHECK makes of a datagram (check_dns.c dns_recv_thread): shorter than a header, another id,
 * or QR clear -> keep waiting; RCODE != 0 -> failure; otherwise success (answers are not required).
 */
export function judgeReply(buf: Uint8Array, id: number): DnsVerdict {
  const h = decodeDnsHeader(buf);
  if (!h.ok) return { kind: "ignore", why: "too_short" };
  if (h.value.id !== id) return { kind: "ignore", why: "wrong_id" };
  if (!h.value.flags.qr) return { kind: "ignore", why: "not_response" };
  if (h.value.flags.rcode !== RCODE_NOERROR) return { kind: "fail", rcode: h.value.flags.rcode };
  return { kind: "ok" };
}
