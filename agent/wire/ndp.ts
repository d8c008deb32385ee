// Unsolicited Neighbor Advertisements (RFC 4861 §7.2.6), sent on an AF_PACKET socket after taking over
// IPv6 VIPs, and a decoder for NS/NA frames (tests and the receive side).
//
// Shape follows keepalived 2.2.7: Ethernet to 33:33:00:00:00:01, IPv6 with traffic class and flow label
// zero, hop limit 255, to ff02::1; ICMPv6 136/0 with Override set, Solicited clear, Router set only when
// the interface forwards; one Target Link-Layer Address option. keepalived uses the VIP itself as the
// IPv6 source; RFC 4861 accepts any address of the sending interface, so the caller chooses.
import { ETH_HEADER_LEN, ETH_P_IPV6, formatMac } from "./arp.ts";
import { internetChecksum, pseudoSumV6, sum16, verifies } from "./checksum.ts";
import { formatIPv6, parseIPv6 } from "./ip.ts";
import { fail, ok, type Result } from "./result.ts";

export const IPPROTO_ICMPV6 = 58;
export const ND_NEIGHBOR_SOLICIT = 135;
export const ND_NEIGHBOR_ADVERT = 136;
export const ND_OPT_SOURCE_LINKADDR = 1;
export const ND_OPT_TARGET_LINKADDR = 2;
export const ND_NA_FLAG_ROUTER = 0x80;
export const ND_NA_FLAG_SOLICITED = 0x40;
export const ND_NA_FLAG_OVERRIDE = 0x20;
export const IPV6_HEADER_LEN = 40;
/** NS and NA share this fixed part: type, code, checksum, 4 bytes flags/reserved, 16-byte target. */
export const ND_FIXED_LEN = 24;
export const ALL_NODES_V6 = "ff02::1";

// ff02::1 and its RFC 2464 multicast MAC, built once.
const ALL_NODES_BYTES = parseIPv6(ALL_NODES_V6)!;
const ALL_NODES_MAC = Uint8Array.of(0x33, 0x33, 0x00, 0x00, 0x00, 0x01);
const NA_LEN = ND_FIXED_LEN + 8;

/**
 * Full Ethernet frame of an unsolicited NA announcing `target` at `srcMac`, with IPv6 source `src`
 * (keepalived passes the target itself; a link-local address is equally valid). Throws RangeError on a
 * malformed MAC or address.
 */
export function encodeUnsolicitedNa(
  srcMac: Uint8Array,
  src: string,
  target: string,
  opts?: { router?: boolean },
): Uint8Array {
  if (srcMac.length !== 6) throw new RangeError(`MAC must be 6 bytes, got ${srcMac.length}`);
  const s = parseIPv6(src);
  if (!s) throw new RangeError(`not an IPv6 address: ${src}`);
  const t = parseIPv6(target);
  if (!t) throw new RangeError(`not an IPv6 address: ${target}`);

  const f = new Uint8Array(ETH_HEADER_LEN + IPV6_HEADER_LEN + NA_LEN);
  f.set(ALL_NODES_MAC, 0);
  f.set(srcMac, 6);
  f[12] = ETH_P_IPV6 >> 8;
  f[13] = ETH_P_IPV6 & 0xff;

  const ip = ETH_HEADER_LEN;
  f[ip] = 0x60;
  f[ip + 4] = NA_LEN >> 8;
  f[ip + 5] = NA_LEN & 0xff;
  f[ip + 6] = IPPROTO_ICMPV6;
  // RFC 4861 §7.1.2: receivers drop NAs whose hop limit is not 255 (proof of on-link origin).
  f[ip + 7] = 255;
  f.set(s, ip + 8);
  f.set(ALL_NODES_BYTES, ip + 24);

  const icmp = ip + IPV6_HEADER_LEN;
  f[icmp] = ND_NEIGHBOR_ADVERT;
  // Override: replace whatever MAC neighbours cached for the VIP (the old master's).
  f[icmp + 4] = ND_NA_FLAG_OVERRIDE | (opts?.router ? ND_NA_FLAG_ROUTER : 0);
  f.set(t, icmp + 8);
  f[icmp + 24] = ND_OPT_TARGET_LINKADDR;
  f[icmp + 25] = 1;
  f.set(srcMac, icmp + 26);

  const c = icmpv6Checksum(f, icmp, icmp + NA_LEN, s, ALL_NODES_BYTES);
  f[icmp + 2] = c >> 8;
  f[icmp + 3] = c & 0xff;
  return f;
}

function icmpv6Checksum(f: Uint8Array, start: number, end: number, src: Uint8Array, dst: Uint8Array): number {
  return internetChecksum(f, start, end, pseudoSumV6(src, dst, end - start, IPPROTO_ICMPV6));
}

export interface NdpMessage {
  ethDst: string;
  ethSrc: string;
  src: string;
  dst: string;
  /** Reported, not checked: RFC 4861 requires 255 and the caller enforces it. */
  hopLimit: number;
  type: 135 | 136;
  /** NA flags; all false for NS. */
  router: boolean;
  solicited: boolean;
  override: boolean;
  target: string;
  /** Source Link-Layer Address option (type 1), if present. */
  sourceLinkAddr: string | null;
  /** Target Link-Layer Address option (type 2), if present. */
  targetLinkAddr: string | null;
}

/**
 * Decodes an Ethernet frame carrying an ICMPv6 Neighbor Solicitation or Advertisement with no IPv6
 * extension headers. Reasons: "too_short", "not_ipv6" (ethertype or IP version), "not_icmpv6" (next
 * header), "bad_length" (payload length beyond the frame), "bad_type" (another ICMPv6 type),
 * "bad_code", "bad_checksum", "bad_option" (zero-length or overrunning option). Trailing bytes beyond
 * the IPv6 payload length (Ethernet padding) are ignored.
 */
export function decodeNdpFrame(frame: Uint8Array): Result<NdpMessage> {
  const len = frame.length;
  if (len < ETH_HEADER_LEN) return fail("too_short", `${len} bytes`);
  const ethertype = (frame[12]! << 8) | frame[13]!;
  if (ethertype !== ETH_P_IPV6) return fail("not_ipv6", `ethertype 0x${ethertype.toString(16)}`);
  const ip = ETH_HEADER_LEN;
  if (len < ip + IPV6_HEADER_LEN) return fail("too_short", `${len} bytes`);
  if (frame[ip]! >> 4 !== 6) return fail("not_ipv6", `version ${frame[ip]! >> 4}`);
  if (frame[ip + 6] !== IPPROTO_ICMPV6) return fail("not_icmpv6", `next header ${frame[ip + 6]}`);
  const plen = (frame[ip + 4]! << 8) | frame[ip + 5]!;
  const icmp = ip + IPV6_HEADER_LEN;
  const end = icmp + plen;
  if (end > len) return fail("bad_length", `payload length ${plen}, have ${len - icmp}`);
  if (plen < ND_FIXED_LEN) return fail("too_short", `ICMPv6 length ${plen}`);
  const rawType = frame[icmp]!;
  if (rawType !== ND_NEIGHBOR_SOLICIT && rawType !== ND_NEIGHBOR_ADVERT)
    return fail("bad_type", `type ${rawType}`);
  const type: 135 | 136 = rawType === ND_NEIGHBOR_SOLICIT ? 135 : 136;
  if (frame[icmp + 1] !== 0) return fail("bad_code", `code ${frame[icmp + 1]}`);
  // Source and destination sit back to back in the IPv6 header, so the pseudo-header sum is one run over
  // them plus length and next header: no copies on the receive path.
  const ps = sum16(frame, ip + 8, ip + 40, plen + IPPROTO_ICMPV6);
  if (!verifies(sum16(frame, icmp, end, ps))) return fail("bad_checksum");

  let sourceLinkAddr: string | null = null;
  let targetLinkAddr: string | null = null;
  for (let o = icmp + ND_FIXED_LEN; o < end; ) {
    if (o + 2 > end) return fail("bad_option", "truncated option header");
    const optLen = frame[o + 1]! * 8;
    if (optLen === 0 || o + optLen > end) return fail("bad_option", `length ${optLen} at ${o - icmp}`);
    const optType = frame[o]!;
    // Link-layer options on Ethernet are 8 bytes: type, length, 6-byte MAC.
    if (optLen >= 8) {
      if (optType === ND_OPT_SOURCE_LINKADDR) sourceLinkAddr = formatMac(frame, o + 2);
      else if (optType === ND_OPT_TARGET_LINKADDR) targetLinkAddr = formatMac(frame, o + 2);
    }
    o += optLen;
  }

  const flags = type === ND_NEIGHBOR_ADVERT ? frame[icmp + 4]! : 0;
  return ok({
    ethDst: formatMac(frame, 0),
    ethSrc: formatMac(frame, 6),
    src: formatIPv6(frame, ip + 8),
    dst: formatIPv6(frame, ip + 24),
    hopLimit: frame[ip + 7]!,
    type,
    router: (flags & ND_NA_FLAG_ROUTER) !== 0,
    solicited: (flags & ND_NA_FLAG_SOLICITED) !== 0,
    override: (flags & ND_NA_FLAG_OVERRIDE) !== 0,
    target: formatIPv6(frame, icmp + 8),
    sourceLinkAddr,
    targetLinkAddr,
  });
}
