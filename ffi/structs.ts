// C struct layouts for Linux on 64-bit little-endian targets (x86_64, aarch64): socket addresses,
// ancillary data, pollfd. Byte-level only; pointers are filled in by the callers in ffi/.
import { formatIp, parseIp } from "../agent/wire/ip.ts";
import { buffer } from "./libc.ts";

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;

export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;

export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_ERROR = 4;
export const SO_RCVTIMEO = 20;
export const SO_BINDTODEVICE = 25;
export const SO_ATTACH_FILTER = 26;
export const SO_RCVBUFFORCE = 33;

export const IPPROTO_IP = 0;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_VRRP = 112;

export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_PKTINFO = 8;
export const IP_FREEBIND = 15;
export const IP_MULTICAST_IF = 32;
export const IP_MULTICAST_TTL = 33;
export const IP_MULTICAST_LOOP = 34;
export const IP_ADD_MEMBERSHIP = 35;
export const IP_MULTICAST_ALL = 49;

export const IPV6_CHECKSUM = 7;
export const IPV6_UNICAST_HOPS = 16;
export const IPV6_MULTICAST_IF = 17;
export const IPV6_MULTICAST_HOPS = 18;
export const IPV6_MULTICAST_LOOP = 19;
export const IPV6_JOIN_GROUP = 20;
export const IPV6_MULTICAST_ALL = 29;
export const IPV6_RECVPKTINFO = 49;
export const IPV6_PKTINFO = 50;
export const IPV6_RECVHOPLIMIT = 51;
export const IPV6_HOPLIMIT = 52;
export const IPV6_TCLASS = 67;
export const IPV6_FREEBIND = 78;

export const SOL_NETLINK = 270;
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_CAP_ACK = 10;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

export const MSG_PEEK = 0x2;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;

export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

export const EAGAIN = 11;
export const EINTR = 4;
export const ENOBUFS = 105;

export const SOCKADDR_IN_LEN = 16;
export const SOCKADDR_IN6_LEN = 28;
export const SOCKADDR_LL_LEN = 20;
export const SOCKADDR_NL_LEN = 12;

/** Network-order 16-bit value as the int that socket(AF_PACKET, ..., proto) expects (htons). */
export function htons(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

function addrBytes(addr: string, family: 4 | 6): Uint8Array {
  const b = parseIp(addr);
  if (!b || b.length !== (family === 4 ? 4 : 16)) throw new TypeError(`not an IPv${family} address: ${addr}`);
  return b;
}

export function sockaddrIn(addr: string, port = 0): Uint8Array {
  const b = buffer(SOCKADDR_IN_LEN);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false);
  b.set(addrBytes(addr, 4), 4);
  return b;
}

export function sockaddrIn6(addr: string, scopeId = 0, port = 0): Uint8Array {
  const b = buffer(SOCKADDR_IN6_LEN);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, AF_INET6, true);
  dv.setUint16(2, port, false);
  b.set(addrBytes(addr, 6), 8);
  dv.setUint32(24, scopeId >>> 0, true);
  return b;
}

/** sockaddr_ll for sending a complete Ethernet frame out of ifindex. */
export function sockaddrLl(ifindex: number, ethertype: number, dstMac: Uint8Array): Uint8Array {
  const b = buffer(SOCKADDR_LL_LEN);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, AF_PACKET, true);
  dv.setUint16(2, ethertype, false);
  dv.setInt32(4, ifindex, true);
  // sll_hatype, sll_pkttype stay 0 for sending
  b[11] = Math.min(dstMac.length, 8);
  b.set(dstMac.subarray(0, 8), 12);
  return b;
}

export function sockaddrNl(groups = 0, pid = 0): Uint8Array {
  const b = buffer(SOCKADDR_NL_LEN);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, AF_NETLINK, true);
  dv.setUint32(4, pid >>> 0, true);
  dv.setUint32(8, groups >>> 0, true);
  return b;
}

/** struct ip_mreqn { in_addr multiaddr; in_addr address; int ifindex } */
export function ipMreqn(group: string | null, ifindex: number): Uint8Array {
  const b = buffer(12);
  if (group) b.set(addrBytes(group, 4), 0);
  new DataView(b.buffer).setInt32(8, ifindex, true);
  return b;
}

/** struct ipv6_mreq { in6_addr multiaddr; int ifindex } */
export function ipv6Mreq(group: string, ifindex: number): Uint8Array {
  const b = buffer(20);
  b.set(addrBytes(group, 6), 0);
  new DataView(b.buffer).setInt32(16, ifindex, true);
  return b;
}

/** Source address of a received sockaddr_in / sockaddr_in6 (scope id dropped: the ifindex says it). */
export function sockaddrToIp(b: Uint8Array, len: number): string {
  const family = b[0]! | (b[1]! << 8);
  if (family === AF_INET && len >= SOCKADDR_IN_LEN) return formatIp(b, 4, 4);
  if (family === AF_INET6 && len >= SOCKADDR_IN6_LEN) return formatIp(b, 8, 6);
  return "";
}

export interface PktInfo {
  ifindex?: number;
  /** header destination address (IP_PKTINFO ipi_addr / IPV6_PKTINFO ipi6_addr) */
  dst?: string;
  hopLimit?: number;
}

const CMSG_HDR = 16;
const align8 = (n: number): number => (n + 7) & ~7;

/** Walks the control buffer of a recvmsg (64-bit cmsghdr: size_t len, int level, int type). */
export function parseCmsgs(ctl: Uint8Array, len: number): PktInfo {
  const out: PktInfo = {};
  const dv = new DataView(ctl.buffer, ctl.byteOffset, Math.min(len, ctl.byteLength));
  let off = 0;
  while (off + CMSG_HDR <= dv.byteLength) {
    const clen = Number(dv.getBigUint64(off, true));
    if (clen < CMSG_HDR || off + clen > dv.byteLength) break;
    const level = dv.getInt32(off + 8, true);
    const type = dv.getInt32(off + 12, true);
    const data = off + CMSG_HDR;
    const dlen = clen - CMSG_HDR;
    if (level === IPPROTO_IP && type === IP_PKTINFO && dlen >= 12) {
      // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr }
      out.ifindex = dv.getInt32(data, true);
      out.dst = formatIp(ctl, data + 8, 4);
    } else if (level === IPPROTO_IPV6 && type === IPV6_PKTINFO && dlen >= 20) {
      // struct in6_pktinfo { in6_addr addr; int ifindex }
      out.dst = formatIp(ctl, data, 6);
      out.ifindex = dv.getInt32(data + 16, true);
    } else if (level === IPPROTO_IPV6 && type === IPV6_HOPLIMIT && dlen >= 4) {
      out.hopLimit = dv.getInt32(data, true);
    }
    off += align8(clen);
  }
  return out;
}

/** struct pollfd array helpers: { int fd; short events; short revents } */
export class PollSet {
  readonly buf: Uint8Array;
  private readonly dv: DataView;
  count = 0;

  constructor(readonly capacity: number) {
    this.buf = buffer(capacity * 8);
    this.dv = new DataView(this.buf.buffer);
  }
  set(i: number, fd: number, events: number): void {
    this.dv.setInt32(i * 8, fd, true);
    this.dv.setInt16(i * 8 + 4, events, true);
    this.dv.setInt16(i * 8 + 6, 0, true);
  }
  fd(i: number): number {
    return this.dv.getInt32(i * 8, true);
  }
  revents(i: number): number {
    return this.dv.getUint16(i * 8 + 6, true);
  }
}
