// Gratuitous ARP frames (sent on an AF_PACKET socket after taking over IPv4 VIPs) and MAC helpers.
//
// The frame matches keepalived 2.2.7 byte for byte up to its length: an ARP *request* from the VIP to
// itself, sender MAC = Ethernet source, target MAC = ff:ff:ff:ff:ff:ff (keepalived copies the interface
// broadcast address there, not zeros). keepalived hands the kernel 42 bytes and lets the NIC pad; we pad
// to the 60-byte Ethernet minimum ourselves so the frame on a veth (which never pads) is a legal one.
import { formatIPv4, parseIPv4 } from "./ip.ts";
import { fail, ok, type Result } from "./result.ts";

export const ETH_HEADER_LEN = 14;
/** Minimum Ethernet frame without FCS. */
export const ETH_MIN_FRAME = 60;
export const ETH_P_IP = 0x0800;
export const ETH_P_ARP = 0x0806;
export const ETH_P_IPV6 = 0x86dd;
export const ARPHRD_ETHER = 1;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
/** Ethernet/IPv4 ARP body: 8 fixed bytes + 2 * (6 + 4). */
export const ARP_LEN = 28;

const HEX = "0123456789abcdef";

/** Parses "aa:bb:cc:dd:ee:ff" (or "-" separated, any case); null unless exactly six 2-digit groups. */
export function parseMac(s: string): Uint8Array | null {
  if (s.length !== 17) return null;
  const sep = s[2];
  if (sep !== ":" && sep !== "-") return null;
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    const p = i * 3;
    if (i < 5 && s[p + 2] !== sep) return null;
    const hi = HEX.indexOf(s[p]!.toLowerCase());
    const lo = HEX.indexOf(s[p + 1]!.toLowerCase());
    if (hi < 0 || lo < 0) return null;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Lowercase colon form of the 6 bytes at `off`. */
export function formatMac(b: Uint8Array, off = 0): string {
  let s = "";
  for (let i = 0; i < 6; i++) {
    const v = b[off + i] ?? 0;
    if (i) s += ":";
    s += HEX[v >> 4]! + HEX[v & 0x0f]!;
  }
  return s;
}

/** The VRRP virtual MAC (RFC 5798 §7.3): 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6. */
export function virtualMac(vrid: number, family: 4 | 6): Uint8Array {
  return Uint8Array.of(0x00, 0x00, 0x5e, 0x00, family === 4 ? 0x01 : 0x02, vrid & 0xff);
}

export interface ArpPacket {
  ethDst: string;
  ethSrc: string;
  /** ARP_REQUEST or ARP_REPLY */
  op: number;
  senderMac: string;
  senderIp: string;
  targetMac: string;
  targetIp: string;
  /** Sender and target protocol addresses are equal: an announcement of the sender's own binding. */
  gratuitous: boolean;
}

/** Full Ethernet frame of a gratuitous ARP request for `ip`, as keepalived sends it. Throws on bad input. */
export function encodeGratuitousArp(srcMac: Uint8Array, ip: string): Uint8Array {
  if (srcMac.length !== 6) throw new RangeError(`MAC must be 6 bytes, got ${srcMac.length}`);
  const addr = parseIPv4(ip);
  if (!addr) throw new RangeError(`not an IPv4 address: ${ip}`);
  const f = new Uint8Array(ETH_MIN_FRAME);
  f.fill(0xff, 0, 6);
  f.set(srcMac, 6);
  f[12] = ETH_P_ARP >> 8;
  f[13] = ETH_P_ARP & 0xff;
  const a = ETH_HEADER_LEN;
  f[a + 1] = ARPHRD_ETHER;
  f[a + 2] = ETH_P_IP >> 8;
  f[a + 4] = 6;
  f[a + 5] = 4;
  f[a + 7] = ARP_REQUEST;
  f.set(srcMac, a + 8);
  f.set(addr, a + 14);
  f.fill(0xff, a + 18, a + 24);
  f.set(addr, a + 24);
  return f;
}

/**
 * Decodes an Ethernet frame carrying Ethernet/IPv4 ARP. Reasons: "too_short", "not_arp" (other
 * ethertype), "bad_arp" (not Ethernet/IPv4 address sizes, or an opcode other than request/reply).
 * Trailing bytes (padding) are ignored.
 */
export function decodeArp(frame: Uint8Array): Result<ArpPacket> {
  const len = frame.length;
  if (len < ETH_HEADER_LEN) return fail("too_short", `${len} bytes`);
  const ethertype = (frame[12]! << 8) | frame[13]!;
  if (ethertype !== ETH_P_ARP) return fail("not_arp", `ethertype 0x${ethertype.toString(16)}`);
  if (len < ETH_HEADER_LEN + ARP_LEN) return fail("too_short", `${len} bytes`);
  const a = ETH_HEADER_LEN;
  const hrd = (frame[a]! << 8) | frame[a + 1]!;
  const pro = (frame[a + 2]! << 8) | frame[a + 3]!;
  if (hrd !== ARPHRD_ETHER || pro !== ETH_P_IP || frame[a + 4] !== 6 || frame[a + 5] !== 4) {
    return fail("bad_arp", `hrd ${hrd} pro 0x${pro.toString(16)} hln ${frame[a + 4]} pln ${frame[a + 5]}`);
  }
  const op = (frame[a + 6]! << 8) | frame[a + 7]!;
  if (op !== ARP_REQUEST && op !== ARP_REPLY) return fail("bad_arp", `op ${op}`);
  const spa = (frame[a + 14]! << 24) | (frame[a + 15]! << 16) | (frame[a + 16]! << 8) | frame[a + 17]!;
  const tpa = (frame[a + 24]! << 24) | (frame[a + 25]! << 16) | (frame[a + 26]! << 8) | frame[a + 27]!;
  return ok({
    ethDst: formatMac(frame, 0),
    ethSrc: formatMac(frame, 6),
    op,
    senderMac: formatMac(frame, a + 8),
    senderIp: formatIPv4(frame, a + 14),
    targetMac: formatMac(frame, a + 18),
    targetIp: formatIPv4(frame, a + 24),
    gratuitous: spa === tpa,
  });
}
