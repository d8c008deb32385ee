// Typed sockets for the VRRP shell: raw IP protocol-112 sockets (IPv4/IPv6, multicast/unicast) and
// AF_PACKET sockets for gratuitous ARP / unsolicited NA frames.
//
// Each VrrpSocket is two kernel sockets, as keepalived does it:
//  - a receive socket, never bound to a unicast address in multicast mode (bound to the group instead,
//    so unicast VRRP is not mixed in) and bound to the local address in unicast mode; it is what the
//    PacketReader watches;
//  - a send socket bound to the source address, with a drop-all BPF filter and no receive buffer: a raw
//    socket receives every protocol-112 packet that matches its binding, and nobody reads this one.
// Share one VrrpSocket between all instances of the same (family, interface, source, mode).

import { isLinkLocalV6 } from "../agent/wire/ip.ts";
import { VRRP_GROUP_V4, VRRP_GROUP_V6 } from "../agent/wire/vrrp.ts";
import {
  addressOf,
  buffer,
  check,
  closeFd,
  cString,
  ifIndexToName,
  ifNameToIndex,
  libc,
  prctlDeathSignal,
  SysError,
  setsockoptBytes,
  setsockoptInt,
} from "./libc.ts";
import {
  AF_INET,
  AF_INET6,
  AF_PACKET,
  IP_ADD_MEMBERSHIP,
  IP_FREEBIND,
  IP_MULTICAST_ALL,
  IP_MULTICAST_IF,
  IP_MULTICAST_LOOP,
  IP_MULTICAST_TTL,
  IP_PKTINFO,
  IP_TOS,
  IP_TTL,
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_VRRP,
  IPV6_CHECKSUM,
  IPV6_FREEBIND,
  IPV6_JOIN_GROUP,
  IPV6_MULTICAST_ALL,
  IPV6_MULTICAST_HOPS,
  IPV6_MULTICAST_IF,
  IPV6_MULTICAST_LOOP,
  IPV6_RECVHOPLIMIT,
  IPV6_RECVPKTINFO,
  IPV6_TCLASS,
  IPV6_UNICAST_HOPS,
  ipMreqn,
  ipv6Mreq,
  SO_ATTACH_FILTER,
  SO_BINDTODEVICE,
  SO_RCVBUF,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOCKADDR_LL_LEN,
  SOL_SOCKET,
  sockaddrIn,
  sockaddrIn6,
  sockaddrLl,
} from "./structs.ts";

export { ifIndexToName, ifNameToIndex, prctlDeathSignal, SysError };

/** Internetwork control (CS6), RFC 5798 section 5.1.1.3 / keepalived */
export const VRRP_TOS = 0xc0;
export const VRRP_TTL = 255;

/** A received VRRP datagram. */
export interface RxPacket {
  family: 4 | 6;
  /** IPv4: the IP header as the kernel gives it, then the VRRP packet; IPv6: the VRRP packet only */
  data: Uint8Array;
  src: string;
  dst: string;
  /** IPv4 TTL (from the header) or IPv6 hop limit (from IPV6_HOPLIMIT) */
  ttl: number;
  ifindex: number;
}

export interface VrrpSocketOptions {
  family: 4 | 6;
  ifname: string;
  ifindex: number;
  /** source for sending (IPv6: the link-local address); in unicast mode also the address received on */
  src?: string;
  /** join the VRRP group and receive multicast only; false: receive unicast VRRP only */
  multicast: boolean;
  /** the multicast group (default 224.0.0.18 / ff02::12; keepalived's vrrp_mcast_group4/6) */
  group?: string;
  /** receive buffer in bytes (default 1 MiB, capped by net.core.rmem_max) */
  rcvbuf?: number;
}

export interface VrrpSocket {
  readonly family: 4 | 6;
  readonly ifindex: number;
  /** the fds to watch for received packets (kind "vrrp4" / "vrrp6" in the PacketReader) */
  readonly fds: number[];
  readonly kind: "vrrp4" | "vrrp6";
  /** Sends one VRRP packet (the kernel adds the IP header; IPv6 fills the checksum). Throws SysError. */
  send(payload: Uint8Array, dst: string): void;
  close(): void;
}

const ENOPROTOOPT = "ENOPROTOOPT";

function rawSocket(af: number, proto: number): number {
  return check("socket", libc().socket(af, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto), `af ${af}`);
}

/** SO_BINDTODEVICE: the socket sends and receives through that interface only. */
export function bindToDevice(fd: number, ifname: string): void {
  setsockoptBytes(fd, SOL_SOCKET, SO_BINDTODEVICE, cString(ifname), `SO_BINDTODEVICE ${ifname}`);
}

function bindAddr(fd: number, sa: Uint8Array, what: string): void {
  check("bind", libc().bind(fd, sa, sa.length), what);
}

/** Optional socket options that older kernels lack: ENOPROTOOPT is not fatal for them. */
function setOptional(fd: number, level: number, name: number, value: number, what: string): void {
  try {
    setsockoptInt(fd, level, name, value, what);
  } catch (e) {
    if (!(e instanceof SysError && e.code === ENOPROTOOPT)) throw e;
  }
}

// classic BPF "ret #0": the kernel drops every packet before queueing it
const DROP_ALL = (() => {
  const insn = buffer(8);
  new DataView(insn.buffer).setUint16(0, 0x06, true); // BPF_RET | BPF_K, k = 0
  return insn;
})();

function attachDropAll(fd: number): void {
  const prog = buffer(16); // struct sock_fprog { u16 len; pad; struct sock_filter *filter }
  const dv = new DataView(prog.buffer);
  dv.setUint16(0, 1, true);
  dv.setBigUint64(8, BigInt(addressOf(DROP_ALL)), true);
  setsockoptBytes(fd, SOL_SOCKET, SO_ATTACH_FILTER, prog, "SO_ATTACH_FILTER");
}

function sockaddrFor(family: 4 | 6, addr: string, ifindex: number): Uint8Array {
  if (family === 4) return sockaddrIn(addr);
  // the scope id only matters for link-local and multicast addresses; the kernel ignores it otherwise
  return sockaddrIn6(addr, ifindex);
}

function openReceive(o: VrrpSocketOptions): number {
  const af = o.family === 4 ? AF_INET : AF_INET6;
  const fd = rawSocket(af, IPPROTO_VRRP);
  try {
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, o.rcvbuf ?? 1 << 20, "SO_RCVBUF");
    // without this a raw socket also gets multicast groups joined by any other socket of the host
    if (o.family === 4) setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
    else setOptional(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL");
    bindToDevice(fd, o.ifname);
    if (o.multicast) {
      if (o.family === 4) {
        const group = o.group ?? VRRP_GROUP_V4;
        setsockoptBytes(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, ipMreqn(group, o.ifindex), "IP_ADD_MEMBERSHIP");
        bindAddr(fd, sockaddrIn(group), group);
      } else {
        const group = o.group ?? VRRP_GROUP_V6;
        setsockoptBytes(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, ipv6Mreq(group, o.ifindex), "IPV6_JOIN_GROUP");
        bindAddr(fd, sockaddrIn6(group, o.ifindex), group);
      }
    } else if (o.src) {
      // the unicast source may not be configured yet (e.g. comes with a VIP); bind anyway
      if (o.family === 4) setsockoptInt(fd, IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND");
      else setOptional(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1, "IPV6_FREEBIND");
      bindAddr(fd, sockaddrFor(o.family, o.src, o.ifindex), o.src);
    }
    if (o.family === 4) {
      setsockoptInt(fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
    } else {
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
      // the kernel verifies the VRRP checksum (offset 6) and drops bad packets before queueing them
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, 6, "IPV6_CHECKSUM");
    }
    return fd;
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

function openSend(o: VrrpSocketOptions): number {
  const af = o.family === 4 ? AF_INET : AF_INET6;
  const fd = rawSocket(af, IPPROTO_VRRP);
  try {
    attachDropAll(fd);
    setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, 0, "SO_RCVBUF");
    if (o.family === 4) {
      setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_ALL, 0, "IP_MULTICAST_ALL");
      setsockoptInt(fd, IPPROTO_IP, IP_TOS, VRRP_TOS, "IP_TOS");
      setsockoptInt(fd, IPPROTO_IP, IP_TTL, VRRP_TTL, "IP_TTL");
      setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_TTL, VRRP_TTL, "IP_MULTICAST_TTL");
      setsockoptBytes(fd, IPPROTO_IP, IP_MULTICAST_IF, ipMreqn(null, o.ifindex), "IP_MULTICAST_IF");
      setsockoptInt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, 0, "IP_MULTICAST_LOOP");
    } else {
      setOptional(fd, IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0, "IPV6_MULTICAST_ALL");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_CHECKSUM, 6, "IPV6_CHECKSUM");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_TCLASS, VRRP_TOS, "IPV6_TCLASS");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, VRRP_TTL, "IPV6_UNICAST_HOPS");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, VRRP_TTL, "IPV6_MULTICAST_HOPS");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, o.ifindex, "IPV6_MULTICAST_IF");
      setsockoptInt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, 0, "IPV6_MULTICAST_LOOP");
    }
    bindToDevice(fd, o.ifname);
    if (o.src) {
      // the kernel builds the IP header, so the bound address is the advert's source
      if (o.family === 4) setsockoptInt(fd, IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND");
      else setOptional(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1, "IPV6_FREEBIND");
      const b = sockaddrFor(o.family, o.src, o.ifindex);
      if (o.family === 6) {
        // a global IPv6 source must not carry a scope id
        const isLl = isLinkLocalV6(b.subarray(8, 24));
        if (!isLl) new DataView(b.buffer).setUint32(24, 0, true);
      }
      bindAddr(fd, b, o.src);
    }
    return fd;
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

/** Opens the receive and send sockets of one VRRP endpoint. Throws SysError (EPERM without CAP_NET_RAW). */
export function openVrrpSocket(opts: VrrpSocketOptions): VrrpSocket {
  const rx = openReceive(opts);
  let tx: number;
  try {
    tx = openSend(opts);
  } catch (e) {
    closeFd(rx);
    throw e;
  }
  const dsts = new Map<string, Uint8Array>();
  let closed = false;
  return {
    family: opts.family,
    ifindex: opts.ifindex,
    fds: [rx],
    kind: opts.family === 4 ? "vrrp4" : "vrrp6",
    send(payload: Uint8Array, dst: string): void {
      if (closed) throw new SysError("sendto", 9, "socket closed");
      let sa = dsts.get(dst);
      if (!sa) {
        sa = sockaddrFor(opts.family, dst, opts.ifindex);
        if (dsts.size >= 64) dsts.clear();
        dsts.set(dst, sa);
      }
      check("sendto", libc().sendto(tx, payload, payload.length, 0, sa, sa.length), dst);
    },
    close(): void {
      if (closed) return;
      closed = true;
      closeFd(rx);
      closeFd(tx);
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// AF_PACKET

export interface PacketSocket {
  readonly fd: number;
  readonly ifindex: number;
  /** Sends a complete Ethernet frame (dst MAC, src MAC, ethertype, payload). Throws SysError. */
  sendFrame(frame: Uint8Array): void;
  close(): void;
}

export interface PacketSocketOptions {
  /**
   * Also receive frames of this ethertype arriving on ifindex (watch `fd` with kind "frame").
   * Without it the socket is send-only: protocol 0 makes the kernel deliver nothing to it.
   */
  receiveEthertype?: number;
}

export function openPacketSocket(ifindex: number, opts: PacketSocketOptions = {}): PacketSocket {
  const fd = check(
    "socket",
    libc().socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
    "AF_PACKET",
  );
  try {
    if (opts.receiveEthertype !== undefined) {
      // binding with a protocol registers the socket for that ethertype on this interface only,
      // so nothing from other interfaces is queued in between socket() and bind()
      const sa = buffer(SOCKADDR_LL_LEN);
      const dv = new DataView(sa.buffer);
      dv.setUint16(0, AF_PACKET, true);
      dv.setUint16(2, opts.receiveEthertype, false);
      dv.setInt32(4, ifindex, true);
      check("bind", libc().bind(fd, sa, sa.length), `AF_PACKET ifindex ${ifindex}`);
    }
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  let closed = false;
  return {
    fd,
    ifindex,
    sendFrame(frame: Uint8Array): void {
      if (closed) throw new SysError("sendto", 9, "socket closed");
      if (frame.length < 14) throw new SysError("sendto", 22, "frame shorter than an Ethernet header");
      const ethertype = (frame[12]! << 8) | frame[13]!;
      const sa = sockaddrLl(ifindex, ethertype, frame.subarray(0, 6));
      check(
        "sendto",
        libc().sendto(fd, frame, frame.length, 0, sa, sa.length),
        `AF_PACKET ifindex ${ifindex}`,
      );
    },
    close(): void {
      if (closed) return;
      closed = true;
      closeFd(fd);
    },
  };
}
