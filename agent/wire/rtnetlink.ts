// rtnetlink messages for addresses (RTM_*ADDR, ifaddrmsg) and links (RTM_*LINK, ifinfomsg): request
// builders and typed decoders. Pure; framing comes from netlink.ts.
import { formatIp, parseIp } from "./ip.ts";
import {
  AttrSet,
  encodeAttrs,
  encodeNlMsg,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  type NlAttrSpec,
  type NlMsg,
  nla,
} from "./netlink.ts";
import { fail, ok, type Result } from "./result.ts";

export const RTM_NEWLINK = 16;
export const RTM_DELLINK = 17;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const RTM_NEWADDR = 20;
export const RTM_DELADDR = 21;
export const RTM_GETADDR = 22;

export const AF_UNSPEC = 0;
export const AF_INET = 2;
export const AF_INET6 = 10;

/** legacy multicast group bitmask for sockaddr_nl.nl_groups */
export const RTMGRP_LINK = 0x1;
export const RTMGRP_IPV4_IFADDR = 0x10;
export const RTMGRP_IPV6_IFADDR = 0x100;
/** group numbers (NETLINK_ADD_MEMBERSHIP) of the same groups */
export const RTNLGRP_LINK = 1;
export const RTNLGRP_IPV4_IFADDR = 5;
export const RTNLGRP_IPV6_IFADDR = 9;

// ifaddrmsg attributes
export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
export const IFA_LABEL = 3;
export const IFA_BROADCAST = 4;
export const IFA_ANYCAST = 5;
export const IFA_CACHEINFO = 6;
export const IFA_MULTICAST = 7;
export const IFA_FLAGS = 8;

// address flags; those above 0xff only fit in the IFA_FLAGS attribute
export const IFA_F_SECONDARY = 0x01;
export const IFA_F_NODAD = 0x02;
export const IFA_F_OPTIMISTIC = 0x04;
export const IFA_F_DADFAILED = 0x08;
export const IFA_F_HOMEADDRESS = 0x10;
export const IFA_F_DEPRECATED = 0x20;
export const IFA_F_TENTATIVE = 0x40;
export const IFA_F_PERMANENT = 0x80;
export const IFA_F_MANAGETEMPADDR = 0x100;
export const IFA_F_NOPREFIXROUTE = 0x200;
export const IFA_F_MCAUTOJOIN = 0x400;
export const IFA_F_STABLE_PRIVACY = 0x800;

export const RT_SCOPE_UNIVERSE = 0;
export const RT_SCOPE_SITE = 200;
export const RT_SCOPE_LINK = 253;
export const RT_SCOPE_HOST = 254;
export const RT_SCOPE_NOWHERE = 255;

// ifinfomsg attributes
export const IFLA_ADDRESS = 1;
export const IFLA_BROADCAST = 2;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFLA_LINK = 5;
export const IFLA_MASTER = 10;
export const IFLA_OPERSTATE = 16;
export const IFLA_LINKINFO = 18;
export const IFLA_INFO_KIND = 1;
/** asks the kernel to skip per-link statistics in dumps (RTEXT_FILTER_SKIP_STATS) */
export const IFLA_EXT_MASK = 29;
export const RTEXT_FILTER_SKIP_STATS = 1 << 3;

// link flags (ifi_flags)
export const IFF_UP = 0x1;
export const IFF_BROADCAST = 0x2;
export const IFF_LOOPBACK = 0x8;
export const IFF_POINTOPOINT = 0x10;
export const IFF_RUNNING = 0x40;
export const IFF_NOARP = 0x80;
export const IFF_PROMISC = 0x100;
export const IFF_MULTICAST = 0x1000;
export const IFF_LOWER_UP = 0x10000;
export const IFF_DORMANT = 0x20000;

/** RFC 2863 operational states, indexed by IFLA_OPERSTATE value */
export const OPERSTATES = [
  "unknown",
  "notpresent",
  "down",
  "lowerlayerdown",
  "testing",
  "dormant",
  "up",
] as const;
export type OperState = (typeof OPERSTATES)[number];

export function operStateName(v: number | undefined): OperState {
  return (v !== undefined ? OPERSTATES[v] : undefined) ?? "unknown";
}

const IFADDRMSG_LEN = 8;
const IFINFOMSG_LEN = 16;

// ---------------------------------------------------------------------------------------------------
// addresses

export interface AddrMessage {
  family: 4 | 6;
  prefixLen: number;
  /** IFA_FLAGS when present (full 32 bits), else the 8-bit ifa_flags */
  flags: number;
  scope: number;
  ifindex: number;
  /** IFA_ADDRESS: the prefix address (IPv6), or the peer on point-to-point links */
  address?: string;
  /** IFA_LOCAL: the interface's own address (IPv4; IPv6 only on point-to-point) */
  local?: string;
  label?: string;
  broadcast?: string;
}

export interface AddrSpec {
  family: 4 | 6;
  ifindex: number;
  address: string;
  prefixLen: number;
  /** IPv4 only; Linux requires it to start with the interface name (eth0:vip) */
  label?: string;
  flags?: number;
  scope?: number;
  broadcast?: string;
}

function ipBytes(addr: string, family: 4 | 6): Uint8Array {
  const b = parseIp(addr);
  if (!b || b.length !== (family === 4 ? 4 : 16)) throw new TypeError(`not an IPv${family} address: ${addr}`);
  return b;
}

function ifaddrmsg(family: number, prefixLen: number, flags: number, scope: number, ifindex: number) {
  const b = new Uint8Array(IFADDRMSG_LEN);
  const dv = new DataView(b.buffer);
  b[0] = family;
  b[1] = prefixLen;
  b[2] = flags & 0xff;
  b[3] = scope;
  dv.setUint32(4, ifindex >>> 0, true);
  return b;
}

/**
 * RTM_NEWADDR / RTM_DELADDR request. Both IFA_LOCAL and IFA_ADDRESS carry the address, as iproute2
 * sends them: IPv4 matches deletes on IFA_LOCAL, IPv6 takes the prefix from either. Throws TypeError on
 * an address that does not match the family (a caller bug, not input data).
 */
export function buildAddrRequest(
  type: typeof RTM_NEWADDR | typeof RTM_DELADDR,
  nlFlags: number,
  a: AddrSpec,
) {
  const bytes = ipBytes(a.address, a.family);
  const flags = a.flags ?? 0;
  const attrs: NlAttrSpec[] = [nla.bytes(IFA_LOCAL, bytes), nla.bytes(IFA_ADDRESS, bytes)];
  if (a.broadcast && a.family === 4) attrs.push(nla.bytes(IFA_BROADCAST, ipBytes(a.broadcast, 4)));
  // Linux ignores labels on IPv6 addresses; sending one would only suggest otherwise
  if (a.label && a.family === 4) attrs.push(nla.str(IFA_LABEL, a.label));
  if (flags > 0xff) attrs.push(nla.u32(IFA_FLAGS, flags));
  return encodeNlMsg(
    { type, flags: NLM_F_REQUEST | nlFlags },
    ifaddrmsg(
      a.family === 4 ? AF_INET : AF_INET6,
      a.prefixLen,
      flags,
      a.scope ?? RT_SCOPE_UNIVERSE,
      a.ifindex,
    ),
    encodeAttrs(attrs),
  );
}

/** RTM_GETADDR dump of one family (or all with 0). */
export function buildGetAddrDump(family: 0 | 4 | 6 = 0): Uint8Array {
  const af = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
  return encodeNlMsg({ type: RTM_GETADDR, flags: NLM_F_REQUEST | NLM_F_DUMP }, ifaddrmsg(af, 0, 0, 0, 0));
}

export function decodeAddrMessage(msg: NlMsg): Result<AddrMessage> {
  if (msg.type !== RTM_NEWADDR && msg.type !== RTM_DELADDR && msg.type !== RTM_GETADDR) {
    return fail("rtnl_not_addr", `type ${msg.type}`);
  }
  const p = msg.payload;
  if (p.length < IFADDRMSG_LEN) return fail("rtnl_short_ifaddrmsg", `${p.length} bytes`);
  const af = p[0]!;
  if (af !== AF_INET && af !== AF_INET6) return fail("rtnl_addr_family", String(af));
  const family: 4 | 6 = af === AF_INET ? 4 : 6;
  const attrs = AttrSet.parse(p.subarray(IFADDRMSG_LEN));
  if (!attrs.ok) return attrs;
  const a = attrs.value;
  const size = family === 4 ? 4 : 16;
  const ipAttr = (t: number): Result<string | undefined> => {
    const v = a.bytes(t);
    if (v === undefined) return ok(undefined);
    if (v.length !== size) return fail("rtnl_addr_size", `attr ${t}: ${v.length} bytes`);
    return ok(formatIp(v, 0, family));
  };
  const address = ipAttr(IFA_ADDRESS);
  if (!address.ok) return address;
  const local = ipAttr(IFA_LOCAL);
  if (!local.ok) return local;
  const broadcast = ipAttr(IFA_BROADCAST);
  if (!broadcast.ok) return broadcast;
  const out: AddrMessage = {
    family,
    prefixLen: p[1]!,
    flags: a.u32(IFA_FLAGS) ?? p[2]!,
    scope: p[3]!,
    ifindex: new DataView(p.buffer, p.byteOffset, IFADDRMSG_LEN).getUint32(4, true),
  };
  if (address.value !== undefined) out.address = address.value;
  if (local.value !== undefined) out.local = local.value;
  if (broadcast.value !== undefined) out.broadcast = broadcast.value;
  const label = a.str(IFA_LABEL);
  if (label !== undefined) out.label = label;
  return ok(out);
}

/** The address a host "has": IFA_LOCAL when present (IPv4, point-to-point), else IFA_ADDRESS. */
export function addrOf(m: AddrMessage): string | undefined {
  return m.local ?? m.address;
}

// ---------------------------------------------------------------------------------------------------
// links

export interface LinkMessage {
  /** AF_UNSPEC for links; AF_BRIDGE (7) for bridge-port views of the same link */
  family: number;
  ifindex: number;
  /** ARPHRD_* (1 = Ethernet, 772 = loopback) */
  hwType: number;
  /** IFF_* */
  flags: number;
  change: number;
  name?: string;
  mac?: Uint8Array;
  mtu?: number;
  operstate?: number;
  master?: number;
  link?: number;
  /** IFLA_LINKINFO/IFLA_INFO_KIND: "veth", "bridge", "macvlan", ... */
  kind?: string;
}

function ifinfomsg(
  ifindex: number,
  flags: number,
  change: number,
  hwType = 0,
  family = AF_UNSPEC,
): Uint8Array {
  const b = new Uint8Array(IFINFOMSG_LEN);
  const dv = new DataView(b.buffer);
  b[0] = family;
  dv.setUint16(2, hwType, true);
  dv.setInt32(4, ifindex | 0, true);
  dv.setUint32(8, flags >>> 0, true);
  dv.setUint32(12, change >>> 0, true);
  return b;
}

/** RTM_GETLINK: a dump of all links, or one link by index or by name (ENODEV if absent). */
export function buildGetLink(which: "dump" | { ifindex: number } | { name: string }): Uint8Array {
  const skipStats = nla.u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  if (which === "dump") {
    return encodeNlMsg(
      { type: RTM_GETLINK, flags: NLM_F_REQUEST | NLM_F_DUMP },
      ifinfomsg(0, 0, 0),
      encodeAttrs([skipStats]),
    );
  }
  const idx = "ifindex" in which ? which.ifindex : 0;
  const attrs = "name" in which ? [nla.str(IFLA_IFNAME, which.name), skipStats] : [skipStats];
  return encodeNlMsg({ type: RTM_GETLINK, flags: NLM_F_REQUEST }, ifinfomsg(idx, 0, 0), encodeAttrs(attrs));
}

/**
 * A link message (RTM_NEWLINK/RTM_SETLINK requests, or replies in fakes). Only the fields we decode are
 * encodable; unset ones are omitted.
 */
export function buildLinkMessage(type: number, nlFlags: number, l: Partial<LinkMessage>): Uint8Array {
  const attrs: NlAttrSpec[] = [];
  if (l.name !== undefined) attrs.push(nla.str(IFLA_IFNAME, l.name));
  if (l.mac !== undefined) attrs.push(nla.bytes(IFLA_ADDRESS, l.mac));
  if (l.mtu !== undefined) attrs.push(nla.u32(IFLA_MTU, l.mtu));
  if (l.link !== undefined) attrs.push(nla.u32(IFLA_LINK, l.link));
  if (l.master !== undefined) attrs.push(nla.u32(IFLA_MASTER, l.master));
  if (l.operstate !== undefined) attrs.push(nla.u8(IFLA_OPERSTATE, l.operstate));
  if (l.kind !== undefined) attrs.push(nla.nested(IFLA_LINKINFO, [nla.str(IFLA_INFO_KIND, l.kind)]));
  return encodeNlMsg(
    { type, flags: nlFlags },
    ifinfomsg(l.ifindex ?? 0, l.flags ?? 0, l.change ?? 0, l.hwType ?? 0, l.family ?? AF_UNSPEC),
    encodeAttrs(attrs),
  );
}

export function decodeLinkMessage(msg: NlMsg): Result<LinkMessage> {
  if (msg.type !== RTM_NEWLINK && msg.type !== RTM_DELLINK && msg.type !== RTM_GETLINK) {
    return fail("rtnl_not_link", `type ${msg.type}`);
  }
  const p = msg.payload;
  if (p.length < IFINFOMSG_LEN) return fail("rtnl_short_ifinfomsg", `${p.length} bytes`);
  const dv = new DataView(p.buffer, p.byteOffset, IFINFOMSG_LEN);
  const attrs = AttrSet.parse(p.subarray(IFINFOMSG_LEN));
  if (!attrs.ok) return attrs;
  const a = attrs.value;
  const out: LinkMessage = {
    family: p[0]!,
    hwType: dv.getUint16(2, true),
    ifindex: dv.getInt32(4, true),
    flags: dv.getUint32(8, true),
    change: dv.getUint32(12, true),
  };
  const name = a.str(IFLA_IFNAME);
  if (name !== undefined) out.name = name;
  const mac = a.bytes(IFLA_ADDRESS);
  // copy: the datagram buffer may be reused or transferred, a MAC outlives it
  if (mac !== undefined) out.mac = mac.slice();
  const mtu = a.u32(IFLA_MTU);
  if (mtu !== undefined) out.mtu = mtu;
  const oper = a.u8(IFLA_OPERSTATE);
  if (oper !== undefined) out.operstate = oper;
  const master = a.u32(IFLA_MASTER);
  if (master !== undefined) out.master = master;
  const link = a.u32(IFLA_LINK);
  if (link !== undefined) out.link = link;
  const info = a.nested(IFLA_LINKINFO);
  if (info !== undefined) {
    if (!info.ok) return info;
    const kind = info.value.str(IFLA_INFO_KIND);
    if (kind !== undefined) out.kind = kind;
  }
  return ok(out);
}
