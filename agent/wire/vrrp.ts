// VRRP advertisement codec: v2 (RFC 3768, IPv4 only) and v3 (RFC 5798, IPv4 and IPv6).
//
// Only the VRRP message is encoded: the kernel's raw socket writes the IP header. Decoding is split the
// same way: decodeIpv4Header() for what an IPv4 raw socket hands us, decodeVrrp() for the message.
// Policy checks (TTL/hop limit, VRID, auth, interval, address list against config) belong to the caller;
// this module only answers "is this a well-formed advertisement, and what does it say".
//
// Checksum forms, from the wire behaviour of keepalived 2.2.7:
//  - v2: RFC 1071 over the VRRP message alone ("plain").
//  - v3/IPv4: RFC 5798 §5.2.8 says over the message with the IPv4 pseudo-header ("pseudo"), which is
//    what keepalived sends; Cisco/Juniper and keepalived's `v3_checksum_as_v2` send "plain".
//  - v3/IPv6: always with the IPv6 pseudo-header.
import { fold, pseudoSumV4, pseudoSumV6, sum16, verifies } from "./checksum.ts";
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from "./ip.ts";
import { fail, ok, type Result } from "./result.ts";

export const VRRP_PROTO = 112;
export const VRRP_GROUP_V4 = "224.0.0.18";
export const VRRP_GROUP_V6 = "ff02::12";
/** Fixed header shared by both versions; v2 appends 8 auth bytes after the addresses. */
export const VRRP_HEADER_LEN = 8;
export const VRRP_AUTH_LEN = 8;
export const VRRP_TYPE_ADVERT = 1;
export const VRRP_AUTH_NONE = 0;
export const VRRP_AUTH_PASS = 1;
export const VRRP_AUTH_AH = 2;
/** v3 Max Adver Int is 12 bits of centiseconds. */
export const VRRP_V3_MAX_INTERVAL = 0x0fff;

export interface VrrpPacket {
  version: 2 | 3;
  type: 1;
  vrid: number;
  priority: number;
  /** v2: seconds (8 bits); v3: centiseconds (12 bits) */
  advertInterval: number;
  /** v2 only: 0 none, 1 simple text password (PASS), 2 AH; 0 for v3 */
  authType: number;
  /** v2 only: the 8 auth bytes (password zero padded / zeros); empty for v3 */
  authData: Uint8Array;
  family: 4 | 6;
  /** canonical text (RFC 5952 for IPv6) */
  addresses: string[];
}

/** plain = no pseudo-header (v2 and Cisco-style v3/IPv4), pseudo = with IPv4/IPv6 pseudo-header */
export type ChecksumForm = "plain" | "pseudo";

export interface DecodedVrrp {
  packet: VrrpPacket;
  /** Which checksum form verified; lets the caller learn and pin a peer's form. */
  checksum: ChecksumForm;
}

export interface VrrpDecodeContext {
  family: 4 | 6;
  /** Source and destination of the carrying IP packet: they enter the pseudo-header. */
  src: string;
  dst: string;
  /** Accept only this checksum form (v3/IPv4). Default: either, "pseudo" preferred. */
  checksum?: ChecksumForm;
}

/** Byte length of a VRRP message carrying `count` addresses. */
export function vrrpMessageLength(version: 2 | 3, family: 4 | 6, count: number): number {
  return VRRP_HEADER_LEN + count * (family === 4 ? 4 : 16) + (version === 2 ? VRRP_AUTH_LEN : 0);
}

/** keepalived's auth_pass handling: the first 8 bytes of the password, zero padded. */
export function vrrpPassword(password: string): Uint8Array {
  const out = new Uint8Array(VRRP_AUTH_LEN);
  out.set(new TextEncoder().encode(password).subarray(0, VRRP_AUTH_LEN));
  return out;
}

// Adverts repeat the same few source/destination addresses, so their parsed bytes are memoised to keep
// text parsing off the receive path. Bounded so spoofed sources cannot grow it without limit.
const addrCache = new Map<string, Uint8Array | null>();
const ADDR_CACHE_MAX = 1024;

function addrBytes(s: string, family: 4 | 6): Uint8Array | null {
  const key = family === 4 ? s : `6|${s}`;
  let b = addrCache.get(key);
  if (b === undefined) {
    b = family === 4 ? parseIPv4(s) : parseIPv6(s);
    if (addrCache.size >= ADDR_CACHE_MAX) addrCache.clear();
    addrCache.set(key, b);
  }
  return b;
}

function pseudoSum(family: 4 | 6, src: string, dst: string, length: number): number | null {
  const s = addrBytes(src, family);
  const d = addrBytes(dst, family);
  if (!s || !d) return null;
  return family === 4 ? pseudoSumV4(s, d, VRRP_PROTO, length) : pseudoSumV6(s, d, length, VRRP_PROTO);
}

function checkByte(name: string, v: number, max = 0xff): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`VRRP ${name} out of range: ${v}`);
}

/**
 * Encodes the VRRP message (no IP header). Throws RangeError on a packet no peer could decode (bad field
 * ranges, address of the wrong family, v2 over IPv6): those are programming errors, not input errors.
 * `checksum` only chooses between the two forms v3/IPv4 can carry (default "pseudo", keepalived's);
 * v2 is always "plain" and v3/IPv6 always "pseudo", whatever is asked, because no peer accepts
 * anything else. For IPv6 the kernel may overwrite the checksum (IPV6_CHECKSUM); it is computed anyway
 * so the output is self-contained and testable.
 */
export function encodeVrrp(
  p: VrrpPacket,
  opts: { src: string; dst: string; checksum?: ChecksumForm },
): Uint8Array {
  const { version, family } = p;
  if (version !== 2 && version !== 3) throw new RangeError(`VRRP version must be 2 or 3: ${version}`);
  if (family !== 4 && family !== 6) throw new RangeError(`VRRP family must be 4 or 6: ${family}`);
  if (version === 2 && family === 6) throw new RangeError("VRRPv2 is IPv4 only");
  if (p.type !== VRRP_TYPE_ADVERT) throw new RangeError(`VRRP type must be 1: ${p.type}`);
  checkByte("vrid", p.vrid);
  checkByte("priority", p.priority);
  checkByte("advertInterval", p.advertInterval, version === 2 ? 0xff : VRRP_V3_MAX_INTERVAL);
  if (p.addresses.length > 0xff) throw new RangeError(`VRRP carries at most 255 addresses`);

  const count = p.addresses.length;
  const len = vrrpMessageLength(version, family, count);
  const out = new Uint8Array(len);
  out[0] = (version << 4) | VRRP_TYPE_ADVERT;
  out[1] = p.vrid;
  out[2] = p.priority;
  out[3] = count;
  if (version === 2) {
    checkByte("authType", p.authType);
    if (p.authData.length > VRRP_AUTH_LEN) throw new RangeError("VRRPv2 auth data is 8 bytes");
    out[4] = p.authType;
    out[5] = p.advertInterval;
  } else {
    // The top 4 bits are reserved and must be sent as zero (RFC 5798 §5.2.6).
    out[4] = (p.advertInterval >> 8) & 0x0f;
    out[5] = p.advertInterval & 0xff;
  }
  let off = VRRP_HEADER_LEN;
  for (const a of p.addresses) {
    const b = family === 4 ? parseIPv4(a) : parseIPv6(a);
    if (!b) throw new RangeError(`not an IPv${family} address: ${a}`);
    out.set(b, off);
    off += b.length;
  }
  if (version === 2) out.set(p.authData, off);
  setVrrpChecksum(out, { family, src: opts.src, dst: opts.dst, checksum: opts.checksum ?? "pseudo" });
  return out;
}

/**
 * Rewrites the checksum of an encoded message in place for another destination or form: unicast sends
 * one copy per peer and the pseudo-header differs per peer. The form is normalised as in encodeVrrp
 * (v2 plain, v3/IPv6 pseudo). Throws RangeError on unparsable addresses when the form needs them.
 */
export function setVrrpChecksum(
  msg: Uint8Array,
  opts: { family: 4 | 6; src: string; dst: string; checksum: ChecksumForm },
): void {
  const form = msg[0]! >> 4 === 2 ? "plain" : opts.family === 6 ? "pseudo" : opts.checksum;
  msg[6] = 0;
  msg[7] = 0;
  let acc = 0;
  if (form === "pseudo") {
    const ps = pseudoSum(opts.family, opts.src, opts.dst, msg.length);
    if (ps === null)
      throw new RangeError(`pseudo-header needs IPv${opts.family} src/dst: ${opts.src} ${opts.dst}`);
    acc = ps;
  }
  const c = ~fold(sum16(msg, 0, msg.length, acc)) & 0xffff;
  msg[6] = c >> 8;
  msg[7] = c & 0xff;
}

/**
 * Decodes and validates one VRRP message (the IP payload). Checks structure and checksum only.
 * Length reasons: "bad_length" when no address count could explain the size (a partial address, or the
 * v2 auth bytes missing), "bad_addr_count" when the size fits a different count than the one declared.
 */
export function decodeVrrp(buf: Uint8Array, ctx: VrrpDecodeContext): Result<DecodedVrrp> {
  const len = buf.length;
  if (len < VRRP_HEADER_LEN) return fail("too_short", `${len} bytes`);
  const b0 = buf[0]!;
  const rawVersion = b0 >> 4;
  const family = ctx.family;
  if (rawVersion !== 2 && rawVersion !== 3) return fail("bad_version", `version ${rawVersion}`);
  const version: 2 | 3 = rawVersion === 2 ? 2 : 3;
  if (version === 2 && family !== 4) return fail("bad_version", "VRRPv2 over IPv6");
  if ((b0 & 0x0f) !== VRRP_TYPE_ADVERT) return fail("bad_type", `type ${b0 & 0x0f}`);

  const count = buf[3]!;
  const addrLen = family === 4 ? 4 : 16;
  const tail = version === 2 ? VRRP_AUTH_LEN : 0;
  const addrBytesLen = len - VRRP_HEADER_LEN - tail;
  if (addrBytesLen < 0 || addrBytesLen % addrLen !== 0) return fail("bad_length", `${len} bytes`);
  if (addrBytesLen !== count * addrLen) {
    return fail("bad_addr_count", `count ${count}, room for ${addrBytesLen / addrLen}`);
  }

  const sum = sum16(buf, 0, len);
  let form: ChecksumForm;
  if (version === 2) {
    if (!verifies(sum)) return fail("bad_checksum", "v2");
    form = "plain";
  } else {
    const want = ctx.checksum;
    const ps = pseudoSum(family, ctx.src, ctx.dst, len);
    // Prefer "pseudo" when both verify (a pseudo-header summing to zero): it is the RFC form.
    if (want !== "plain" && ps !== null && verifies(sum + ps)) form = "pseudo";
    else if (want !== "pseudo" && family === 4 && verifies(sum)) form = "plain";
    else return fail("bad_checksum", ps === null ? "unparsable src/dst in context" : `v3/IPv${family}`);
  }

  const addresses = new Array<string>(count);
  let off = VRRP_HEADER_LEN;
  for (let i = 0; i < count; i++, off += addrLen) {
    addresses[i] = family === 4 ? formatIPv4(buf, off) : formatIPv6(buf, off);
  }
  const packet: VrrpPacket = {
    version,
    type: VRRP_TYPE_ADVERT,
    vrid: buf[1]!,
    priority: buf[2]!,
    advertInterval: version === 2 ? buf[5]! : ((buf[4]! & 0x0f) << 8) | buf[5]!,
    authType: version === 2 ? buf[4]! : 0,
    // Copied so the packet outlives a reused receive buffer.
    authData: version === 2 ? buf.slice(off, off + VRRP_AUTH_LEN) : new Uint8Array(0),
    family,
    addresses,
  };
  return ok({ packet, checksum: form });
}

export interface Ipv4Header {
  /** Header length in bytes (the IHL field × 4): the VRRP message starts at buf[ihl]. */
  ihl: number;
  ttl: number;
  protocol: number;
  /** Total datagram length from the header; the payload is buf[ihl, totalLength). */
  totalLength: number;
  src: string;
  dst: string;
  tos: number;
}

/**
 * Decodes the IPv4 header a raw IPv4 socket delivers in front of each datagram. The kernel has already
 * verified the header checksum, so it is not recomputed here.
 */
export function decodeIpv4Header(buf: Uint8Array): Result<Ipv4Header> {
  const len = buf.length;
  if (len < 20) return fail("too_short", `${len} bytes`);
  const b0 = buf[0]!;
  if (b0 >> 4 !== 4) return fail("bad_ip_header", `version ${b0 >> 4}`);
  const ihl = (b0 & 0x0f) * 4;
  if (ihl < 20) return fail("bad_ip_header", `header length ${ihl}`);
  if (len < ihl) return fail("too_short", `${len} bytes, header length ${ihl}`);
  const totalLength = (buf[2]! << 8) | buf[3]!;
  if (totalLength < ihl || totalLength > len) {
    return fail("bad_ip_header", `total length ${totalLength}, have ${len}`);
  }
  return ok({
    ihl,
    ttl: buf[8]!,
    protocol: buf[9]!,
    totalLength,
    src: formatIPv4(buf, 12),
    dst: formatIPv4(buf, 16),
    tos: buf[1]!,
  });
}
