// ICMP / ICMPv6 sockets for PING_CHECK.
//
// First choice is the unprivileged "ping socket" (SOCK_DGRAM, IPPROTO_ICMP/ICMPV6), what keepalived
// uses: the kernel owns the echo id, matches replies to the socket and strips the IP header. It is only
// allowed when the process's group is inside net.ipv4.ping_group_range (keepalived rewrites that sysctl;
// vigil does not touch host settings), so on EACCES/EPERM we fall back to a raw socket, which needs
// CAP_NET_RAW and sees every ICMP packet of the host (the caller filters by id and sequence).
//
// Sockets are non-blocking; the caller drains them with recv() until it returns null.
import { buffer, check, closeFd, lastErrno, libc, SysError, setsockoptInt } from "./libc.ts";
import {
  AF_INET,
  AF_INET6,
  EAGAIN,
  SO_RCVBUF,
  SOCK_CLOEXEC,
  SOCK_DGRAM,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_SOCKET,
  sockaddrIn,
  sockaddrIn6,
  sockaddrToIp,
} from "./structs.ts";

export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

export interface IcmpRx {
  /** the ICMP message; for a raw IPv4 socket it still starts with the IPv4 header */
  data: Uint8Array;
  from: string;
}

export interface IcmpSocket {
  readonly family: 4 | 6;
  /** "dgram": ping socket (kernel-assigned echo id, no IP header); "raw": raw socket */
  readonly kind: "dgram" | "raw";
  readonly fd: number;
  /** Sends one ICMP message (type, code, checksum, id, seq, payload). Throws SysError. */
  send(msg: Uint8Array, dst: string): void;
  /** One received message, or null when none is queued. Throws SysError on other errors. */
  recv(): IcmpRx | null;
  close(): void;
}

const EACCES = 13;
const EPERM = 1;
const EPROTONOSUPPORT = 93;
const RX_SIZE = 2048;

function open(family: 4 | 6): { fd: number; kind: "dgram" | "raw" } {
  const af = family === 4 ? AF_INET : AF_INET6;
  const proto = family === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6;
  const flags = SOCK_NONBLOCK | SOCK_CLOEXEC;
  const fd = libc().socket(af, SOCK_DGRAM | flags, proto);
  if (fd >= 0) return { fd, kind: "dgram" };
  const e = lastErrno();
  if (e !== EACCES && e !== EPERM && e !== EPROTONOSUPPORT)
    throw new SysError("socket", e, "ICMP SOCK_DGRAM");
  return { fd: check("socket", libc().socket(af, SOCK_RAW | flags, proto), "ICMP SOCK_RAW"), kind: "raw" };
}

export function openIcmpSocket(family: 4 | 6): IcmpSocket {
  const { fd, kind } = open(family);
  try {
    // thousands of checks may share this socket: replies must not be dropped in a burst
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 256 * 1024, "SO_RCVBUF");
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  const rx = buffer(RX_SIZE);
  const from = buffer(28);
  const fromLen = buffer(4);
  const fromLenView = new DataView(fromLen.buffer);
  const dsts = new Map<string, Uint8Array>();
  let closed = false;
  return {
    family,
    kind,
    fd,
    send(msg: Uint8Array, dst: string): void {
      if (closed) throw new SysError("sendto", 9, "socket closed");
      let sa = dsts.get(dst);
      if (!sa) {
        sa = family === 4 ? sockaddrIn(dst) : sockaddrIn6(dst);
        if (dsts.size >= 1024) dsts.clear();
        dsts.set(dst, sa);
      }
      const b = msg.byteOffset === 0 && msg.byteLength === msg.buffer.byteLength ? msg : msg.slice();
      check("sendto", libc().sendto(fd, b, b.length, 0, sa, sa.length), dst);
    },
    recv(): IcmpRx | null {
      if (closed) return null;
      fromLenView.setUint32(0, from.length, true);
      const n = Number(libc().recvfrom(fd, rx, RX_SIZE, 0, from, fromLen));
      if (n < 0) {
        const e = lastErrno();
        if (e === EAGAIN) return null;
        throw new SysError("recvfrom", e, "ICMP");
      }
      return { data: rx.slice(0, n), from: sockaddrToIp(from, fromLenView.getUint32(0, true)) };
    },
    close(): void {
      if (closed) return;
      closed = true;
      closeFd(fd);
    },
  };
}
