// Test helpers: wrap codec output in the IP/Ethernet headers the kernel would add, and write classic
// pcap files so an independent dissector (tshark) can judge the bytes.
import { internetChecksum } from "../../agent/wire/checksum.ts";
import { parseIPv4, parseIPv6 } from "../../agent/wire/ip.ts";

export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;

/** "45 c0 00..." or "45c000..." -> bytes; whitespace ignored. */
export function hex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${s}`);
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

function addr(s: string, family: 4 | 6): Uint8Array {
  const b = family === 4 ? parseIPv4(s) : parseIPv6(s);
  if (!b) throw new Error(`not an IPv${family} address: ${s}`);
  return b;
}

/** IPv4 header (no options, DF clear) + payload, header checksum filled in. */
export function ipv4Packet(
  payload: Uint8Array,
  h: { src: string; dst: string; protocol: number; ttl?: number; tos?: number; id?: number },
): Uint8Array {
  const out = new Uint8Array(20 + payload.length);
  const total = out.length;
  out[0] = 0x45;
  out[1] = h.tos ?? 0xc0;
  out[2] = total >> 8;
  out[3] = total & 0xff;
  out[4] = ((h.id ?? 0) >> 8) & 0xff;
  out[5] = (h.id ?? 0) & 0xff;
  out[8] = h.ttl ?? 255;
  out[9] = h.protocol;
  out.set(addr(h.src, 4), 12);
  out.set(addr(h.dst, 4), 16);
  const c = internetChecksum(out, 0, 20);
  out[10] = c >> 8;
  out[11] = c & 0xff;
  out.set(payload, 20);
  return out;
}

/** IPv6 header + payload. */
export function ipv6Packet(
  payload: Uint8Array,
  h: { src: string; dst: string; nextHeader: number; hopLimit?: number; trafficClass?: number },
): Uint8Array {
  const out = new Uint8Array(40 + payload.length);
  const tc = h.trafficClass ?? 0xc0;
  out[0] = 0x60 | (tc >> 4);
  out[1] = (tc & 0x0f) << 4;
  out[4] = payload.length >> 8;
  out[5] = payload.length & 0xff;
  out[6] = h.nextHeader;
  out[7] = h.hopLimit ?? 255;
  out.set(addr(h.src, 6), 8);
  out.set(addr(h.dst, 6), 24);
  out.set(payload, 40);
  return out;
}

export function ethernetFrame(
  dst: Uint8Array,
  src: Uint8Array,
  ethertype: number,
  payload: Uint8Array,
): Uint8Array {
  const out = new Uint8Array(14 + payload.length);
  out.set(dst, 0);
  out.set(src, 6);
  out[12] = ethertype >> 8;
  out[13] = ethertype & 0xff;
  out.set(payload, 14);
  return out;
}

/** RFC 1112 §6.4 mapping: 01:00:5e + low 23 bits of the group. */
export function ipv4MulticastMac(group: string): Uint8Array {
  const b = addr(group, 4);
  return Uint8Array.of(0x01, 0x00, 0x5e, b[1]! & 0x7f, b[2]!, b[3]!);
}

/** RFC 2464 §7 mapping: 33:33 + low 32 bits of the group. */
export function ipv6MulticastMac(group: string): Uint8Array {
  const b = addr(group, 6);
  return Uint8Array.of(0x33, 0x33, b[12]!, b[13]!, b[14]!, b[15]!);
}

/** Classic pcap (microsecond, little-endian), one record per packet, timestamps 1 ms apart. */
export function pcapFile(linktype: number, packets: readonly Uint8Array[]): Uint8Array {
  const size = 24 + packets.reduce((n, p) => n + 16 + p.length, 0);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0xa1b2c3d4, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  // thiszone and sigfigs stay zero.
  v.setUint32(16, 65535, true);
  v.setUint32(20, linktype, true);
  let off = 24;
  packets.forEach((p, i) => {
    v.setUint32(off, 1_700_000_000 + Math.floor(i / 1000), true);
    v.setUint32(off + 4, (i % 1000) * 1000, true);
    v.setUint32(off + 8, p.length, true);
    v.setUint32(off + 12, p.length, true);
    out.set(p, off + 16);
    off += 16 + p.length;
  });
  return out;
}
