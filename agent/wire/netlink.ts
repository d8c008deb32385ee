// Netlink framing: message headers, attribute TLVs, error/ack messages. The one netlink codec of the
// project: rtnetlink (addresses, links) and generic netlink (IPVS) build on it.
// Pure: bytes in, values or DecodeError out; decoders never throw on bad input.
// Netlink is host byte order; every target we ship is little-endian.
import { errnoName } from "./errno.ts";
import { fail, ok, type Result } from "./result.ts";

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;

// message types below NLMSG_MIN_TYPE are control messages
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;
export const NLMSG_MIN_TYPE = 0x10;

// nlmsg_flags
export const NLM_F_REQUEST = 0x01;
export const NLM_F_MULTI = 0x02;
export const NLM_F_ACK = 0x04;
export const NLM_F_ECHO = 0x08;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP_FILTERED = 0x20;
// GET requests
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_ATOMIC = 0x400;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
// NEW requests
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
export const NLM_F_APPEND = 0x800;
// flags of an NLMSG_ERROR (ack) message
export const NLM_F_CAPPED = 0x100;
export const NLM_F_ACK_TLVS = 0x200;

// attribute type bits
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

// extended ack TLVs (inside NLMSG_ERROR when NLM_F_ACK_TLVS is set)
export const NLMSGERR_ATTR_MSG = 1;
export const NLMSGERR_ATTR_OFFS = 2;

export const align4 = (n: number): number => (n + 3) & ~3;

export interface NlMsgHeader {
  type: number;
  flags: number;
  /** 0 lets the socket assign one (NetlinkSocket.request does) */
  seq?: number;
  /** sender port id; 0 = kernel */
  pid?: number;
}

export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** bytes after the 16-byte header, up to nlmsg_len (padding excluded) */
  payload: Uint8Array;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** One netlink message: header + payload parts (each part is copied at a 4-byte aligned offset). */
export function encodeNlMsg(h: NlMsgHeader, ...parts: Uint8Array[]): Uint8Array {
  let len = NLMSG_HDRLEN;
  for (const p of parts) len = align4(len) + p.length;
  const out = new Uint8Array(align4(len));
  const dv = new DataView(out.buffer);
  dv.setUint32(0, len, true);
  dv.setUint16(4, h.type, true);
  dv.setUint16(6, h.flags, true);
  dv.setUint32(8, h.seq ?? 0, true);
  dv.setUint32(12, h.pid ?? 0, true);
  let o = NLMSG_HDRLEN;
  for (const p of parts) {
    o = align4(o);
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Splits a datagram into messages. The last message may omit its trailing alignment padding; anything
 * else that does not frame exactly is an error (a datagram is all-or-nothing: partial results would
 * hide a kernel/user-space mismatch).
 */
export function decodeNlMsgs(buf: Uint8Array): Result<NlMsg[]> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlMsg[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) return fail("netlink_short_header", `${buf.length - off} bytes`);
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN) return fail("netlink_bad_length", `nlmsg_len ${len}`);
    if (len > buf.length - off) return fail("netlink_truncated", `nlmsg_len ${len} > ${buf.length - off}`);
    out.push({
      type: dv.getUint16(off + 4, true),
      flags: dv.getUint16(off + 6, true),
      seq: dv.getUint32(off + 8, true),
      pid: dv.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return ok(out);
}

// ---------------------------------------------------------------------------------------------------
// attributes

/** An attribute to encode: bytes, or a list of children (encoded nested, with NLA_F_NESTED set). */
export interface NlAttrSpec {
  type: number;
  value: Uint8Array | readonly NlAttrSpec[];
}

export interface NlAttr {
  /** type with the NESTED / NET_BYTEORDER bits removed */
  type: number;
  nested: boolean;
  netByteOrder: boolean;
  value: Uint8Array;
}

function le(n: number, size: 1 | 2 | 4): Uint8Array {
  const b = new Uint8Array(size);
  const dv = new DataView(b.buffer);
  if (size === 1) dv.setUint8(0, n);
  else if (size === 2) dv.setUint16(0, n, true);
  else dv.setUint32(0, n >>> 0, true);
  return b;
}

const utf8 = new TextEncoder();

/** Attribute constructors for the usual payload kinds. */
export const nla = {
  bytes: (type: number, value: Uint8Array): NlAttrSpec => ({ type, value }),
  flag: (type: number): NlAttrSpec => ({ type, value: new Uint8Array(0) }),
  u8: (type: number, v: number): NlAttrSpec => ({ type, value: le(v & 0xff, 1) }),
  u16: (type: number, v: number): NlAttrSpec => ({ type, value: le(v & 0xffff, 2) }),
  u32: (type: number, v: number): NlAttrSpec => ({ type, value: le(v, 4) }),
  i32: (type: number, v: number): NlAttrSpec => ({ type, value: le(v | 0, 4) }),
  u64: (type: number, v: bigint): NlAttrSpec => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
    return { type, value: b };
  },
  /** network byte order u16 (ports in IPVS); the NET_BYTEORDER bit is not set, as the kernel expects */
  u16be: (type: number, v: number): NlAttrSpec => ({ type, value: Uint8Array.of((v >> 8) & 0xff, v & 0xff) }),
  u32be: (type: number, v: number): NlAttrSpec => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, false);
    return { type, value: b };
  },
  /** NUL-terminated string (NLA_STRING / NLA_NUL_STRING both accept it) */
  str: (type: number, s: string): NlAttrSpec => {
    const b = utf8.encode(s);
    const out = new Uint8Array(b.length + 1);
    out.set(b);
    return { type, value: out };
  },
  nested: (type: number, children: readonly NlAttrSpec[]): NlAttrSpec => ({ type, value: children }),
};

function attrLength(a: NlAttrSpec): number {
  if (a.value instanceof Uint8Array) return NLA_HDRLEN + a.value.length;
  let n = NLA_HDRLEN;
  for (const c of a.value) n += align4(attrLength(c));
  return n;
}

function writeAttr(out: Uint8Array, dv: DataView, off: number, a: NlAttrSpec): number {
  const len = attrLength(a);
  if (len > 0xffff) throw new RangeError(`netlink attribute ${a.type} too long (${len} bytes)`);
  const nested = !(a.value instanceof Uint8Array);
  dv.setUint16(off, len, true);
  dv.setUint16(off + 2, (a.type & NLA_TYPE_MASK) | (nested ? NLA_F_NESTED : 0), true);
  if (a.value instanceof Uint8Array) {
    out.set(a.value, off + NLA_HDRLEN);
  } else {
    let o = off + NLA_HDRLEN;
    for (const c of a.value) o = writeAttr(out, dv, o, c);
  }
  return off + align4(len);
}

/** Encodes attributes back to back, each padded to 4 bytes. Throws RangeError above 64 KiB (a bug). */
export function encodeAttrs(attrs: readonly NlAttrSpec[]): Uint8Array {
  let n = 0;
  for (const a of attrs) n += align4(attrLength(a));
  const out = new Uint8Array(n);
  const dv = new DataView(out.buffer);
  let o = 0;
  for (const a of attrs) o = writeAttr(out, dv, o, a);
  return out;
}

/**
 * Decodes a run of attributes. A trailing fragment shorter than an attribute header is tolerated
 * (the kernel's nla_for_each_attr does the same); a header claiming more bytes than remain is not.
 */
export function decodeAttrs(buf: Uint8Array): Result<NlAttr[]> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: NlAttr[] = [];
  let off = 0;
  while (buf.length - off >= NLA_HDRLEN) {
    const len = dv.getUint16(off, true);
    const rawType = dv.getUint16(off + 2, true);
    if (len < NLA_HDRLEN) return fail("nla_bad_length", `nla_len ${len}`);
    if (len > buf.length - off) return fail("nla_truncated", `nla_len ${len} > ${buf.length - off}`);
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      netByteOrder: (rawType & NLA_F_NET_BYTEORDER) !== 0,
      value: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return ok(out);
}

const utf8d = new TextDecoder("utf-8", { fatal: false });

/**
 * Attributes by type, with typed readers. Readers return undefined when the attribute is absent or
 * has the wrong size, so decoders decide what is required. A repeated type keeps the first occurrence
 * (use all() for lists).
 */
export class AttrSet {
  private readonly byType = new Map<number, NlAttr>();

  constructor(readonly list: readonly NlAttr[]) {
    for (const a of list) if (!this.byType.has(a.type)) this.byType.set(a.type, a);
  }

  static parse(buf: Uint8Array): Result<AttrSet> {
    const r = decodeAttrs(buf);
    return r.ok ? ok(new AttrSet(r.value)) : r;
  }

  has(type: number): boolean {
    return this.byType.has(type);
  }
  bytes(type: number): Uint8Array | undefined {
    return this.byType.get(type)?.value;
  }
  all(type: number): NlAttr[] {
    return this.list.filter((a) => a.type === type);
  }
  u8(type: number): number | undefined {
    const v = this.bytes(type);
    return v && v.length >= 1 ? v[0] : undefined;
  }
  u16(type: number): number | undefined {
    const v = this.bytes(type);
    return v && v.length >= 2 ? new DataView(v.buffer, v.byteOffset, 2).getUint16(0, true) : undefined;
  }
  u32(type: number): number | undefined {
    const v = this.bytes(type);
    return v && v.length >= 4 ? new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true) : undefined;
  }
  i32(type: number): number | undefined {
    const v = this.bytes(type);
    return v && v.length >= 4 ? new DataView(v.buffer, v.byteOffset, 4).getInt32(0, true) : undefined;
  }
  u64(type: number): bigint | undefined {
    const v = this.bytes(type);
    return v && v.length >= 8 ? new DataView(v.buffer, v.byteOffset, 8).getBigUint64(0, true) : undefined;
  }
  u16be(type: number): number | undefined {
    const v = this.bytes(type);
    return v && v.length >= 2 ? (v[0]! << 8) | v[1]! : undefined;
  }
  /** string up to the first NUL (kernel strings are NUL-terminated; tolerate a missing NUL) */
  str(type: number): string | undefined {
    const v = this.bytes(type);
    if (!v) return undefined;
    const nul = v.indexOf(0);
    return utf8d.decode(nul >= 0 ? v.subarray(0, nul) : v);
  }
  nested(type: number): Result<AttrSet> | undefined {
    const v = this.bytes(type);
    return v ? AttrSet.parse(v) : undefined;
  }
}

// ---------------------------------------------------------------------------------------------------
// errors and acks

/** A kernel-reported failure of a netlink request. */
export class NetlinkError extends Error {
  override readonly name = "NetlinkError";
  constructor(
    /** symbolic errno: "EEXIST", "EADDRNOTAVAIL", ... */
    readonly code: string,
    /** positive errno */
    readonly errno: number,
    /** extended ack text from the kernel, when it gave one */
    readonly extAck?: string,
    /** message type of the request that failed */
    readonly requestType?: number,
  ) {
    super(
      `netlink: ${code}${extAck ? `: ${extAck}` : ""}${requestType !== undefined ? ` (type ${requestType})` : ""}`,
    );
  }
}

export interface NlAck {
  /** 0 for an ACK, otherwise the positive errno */
  errno: number;
  code: string;
  /** header of the request the kernel answers */
  request: { type: number; flags: number; seq: number; pid: number };
  extAck?: string;
  /** byte offset of the offending attribute in the request, if the kernel pointed at one */
  badAttrOffset?: number;
}

/** Decodes the payload of an NLMSG_ERROR message (an ACK when errno is 0). */
export function decodeNlAck(msg: NlMsg): Result<NlAck> {
  if (msg.type !== NLMSG_ERROR) return fail("netlink_not_error", `type ${msg.type}`);
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) return fail("netlink_short_error", `${p.length} bytes`);
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const err = dv.getInt32(0, true);
  // the kernel sends -errno; a positive value is meaningless, treat it as malformed
  if (err > 0) return fail("netlink_bad_errno", String(err));
  const errno = err === 0 ? 0 : -err; // not -0: callers compare with ===
  const origLen = dv.getUint32(4, true);
  const request = {
    type: dv.getUint16(8, true),
    flags: dv.getUint16(10, true),
    seq: dv.getUint32(12, true),
    pid: dv.getUint32(16, true),
  };
  const ack: NlAck = { errno, code: errno === 0 ? "OK" : errnoName(errno), request };
  if (msg.flags & NLM_F_ACK_TLVS) {
    // the original request is echoed whole unless CAPPED (then only its header)
    const echoed = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : Math.max(NLMSG_HDRLEN, origLen);
    const tlvStart = 4 + align4(echoed);
    if (tlvStart <= p.length) {
      const tlvs = AttrSet.parse(p.subarray(tlvStart));
      if (!tlvs.ok) return tlvs;
      const text = tlvs.value.str(NLMSGERR_ATTR_MSG);
      if (text) ack.extAck = text;
      const offs = tlvs.value.u32(NLMSGERR_ATTR_OFFS);
      if (offs !== undefined) ack.badAttrOffset = offs;
    }
  }
  return ok(ack);
}

export function ackToError(ack: NlAck): NetlinkError {
  return new NetlinkError(ack.code, ack.errno, ack.extAck, ack.request.type);
}
