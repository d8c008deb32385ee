// The kernel as the VRRP runtime sees it: links, addresses, and their change notifications, over
// rtnetlink. The kernel is the source of truth: nothing here caches state, every query asks it.
// Logic sits on a NetlinkTransport, so unit tests run it against a fake kernel.

import { NetlinkSocket, type NetlinkTransport } from "../../ffi/netlink-socket.ts";
import type { NetlinkDatagram, PacketReader } from "../../ffi/reader.ts";
import { canonicalIp, familyOf, isLinkLocalV6, parseIp } from "../wire/ip.ts";
import {
  decodeNlMsgs,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_EXCL,
  type NlMsg,
} from "../wire/netlink.ts";
import { fail, ok, type Result } from "../wire/result.ts";
import {
  AF_UNSPEC,
  addrOf,
  buildAddrRequest,
  buildGetAddrDump,
  buildGetLink,
  decodeAddrMessage,
  decodeLinkMessage,
  IFA_F_DADFAILED,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_F_SECONDARY,
  IFA_F_TENTATIVE,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  type LinkMessage,
  type OperState,
  operStateName,
  RTM_DELADDR,
  RTM_DELLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
  RTNLGRP_IPV4_IFADDR,
  RTNLGRP_IPV6_IFADDR,
  RTNLGRP_LINK,
} from "../wire/rtnetlink.ts";

export { NetlinkError };

export interface LinkInfo {
  ifindex: number;
  name: string;
  /** hardware address; empty for links without one */
  mac: Uint8Array;
  /** administratively up (IFF_UP) */
  up: boolean;
  /** IFF_RUNNING */
  running: boolean;
  /** carrier (IFF_LOWER_UP) */
  lowerUp: boolean;
  operstate: OperState;
  mtu: number;
  flags: number;
  kind?: string;
  master?: number;
}

export interface AddrInfo {
  ifindex: number;
  family: 4 | 6;
  /** canonical text */
  address: string;
  prefixLen: number;
  label?: string;
  scope: number;
  /** IFA_F_* */
  flags: number;
}

export type KernelEvent =
  | { type: "link"; action: "new" | "del"; link: LinkInfo }
  | { type: "addr"; action: "new" | "del"; addr: AddrInfo }
  /** notifications were lost (socket buffer overrun): re-read links() and addresses() */
  | { type: "overrun" };

export interface AddAddressOptions {
  /** IPv4 only (Linux has no IPv6 labels); must start with the interface name, e.g. "eth0:vi1" */
  label?: string | undefined;
  /** skip duplicate address detection (IPv6): a VIP must be usable at once, as keepalived does */
  nodad?: boolean;
  /** do not install the prefix route (keepalived's `noprefixroute`) */
  noPrefixRoute?: boolean;
  scope?: number;
  broadcast?: string;
}

/** What Kernel.watch needs from a PacketReader; a structural type so tests can pass a stub. */
export type NetlinkWatcher = Pick<PacketReader, "unwatch"> & {
  watch(fd: number, kind: "netlink", onPacket: (d: NetlinkDatagram) => void): void;
};

/** Opens (and later closes) the notification socket for link and address groups. */
export interface NotificationSource {
  open(): number;
  close(): void;
}

function toLinkInfo(m: LinkMessage): LinkInfo {
  const info: LinkInfo = {
    ifindex: m.ifindex,
    name: m.name ?? "",
    mac: m.mac ?? new Uint8Array(0),
    up: (m.flags & IFF_UP) !== 0,
    running: (m.flags & IFF_RUNNING) !== 0,
    lowerUp: (m.flags & IFF_LOWER_UP) !== 0,
    operstate: operStateName(m.operstate),
    mtu: m.mtu ?? 0,
    flags: m.flags,
  };
  if (m.kind !== undefined) info.kind = m.kind;
  if (m.master !== undefined) info.master = m.master;
  return info;
}

function toAddrInfo(msg: NlMsg): Result<AddrInfo> {
  const r = decodeAddrMessage(msg);
  if (!r.ok) return r;
  const m = r.value;
  const address = addrOf(m);
  if (address === undefined) return fail("rtnl_addr_missing");
  const info: AddrInfo = {
    ifindex: m.ifindex,
    family: m.family,
    address,
    prefixLen: m.prefixLen,
    scope: m.scope,
    flags: m.flags,
  };
  if (m.label !== undefined) info.label = m.label;
  return ok(info);
}

function linkFrom(msg: NlMsg): Result<LinkInfo | null> {
  const r = decodeLinkMessage(msg);
  if (!r.ok) return r;
  // bridge-port views (AF_BRIDGE) repeat links we already see as AF_UNSPEC
  if (r.value.family !== AF_UNSPEC) return ok(null);
  return ok(toLinkInfo(r.value));
}

function single(bytes: Uint8Array): NlMsg {
  const r = decodeNlMsgs(bytes);
  if (!r.ok || !r.value[0])
    throw new NetlinkError("EBADMSG", 74, `malformed reply: ${r.ok ? "empty" : r.error}`);
  return r.value[0];
}

/**
 * Decodes one notification datagram into events. Messages of other types are ignored, as are single
 * messages that do not decode (one odd message must not hide the others); only a datagram that does
 * not frame is an error.
 */
export function decodeKernelEvents(datagram: Uint8Array): Result<KernelEvent[]> {
  const msgs = decodeNlMsgs(datagram);
  if (!msgs.ok) return msgs;
  const out: KernelEvent[] = [];
  for (const m of msgs.value) {
    if (m.type === RTM_NEWLINK || m.type === RTM_DELLINK) {
      const l = linkFrom(m);
      if (l.ok && l.value)
        out.push({ type: "link", action: m.type === RTM_NEWLINK ? "new" : "del", link: l.value });
    } else if (m.type === RTM_NEWADDR || m.type === RTM_DELADDR) {
      const a = toAddrInfo(m);
      if (a.ok) out.push({ type: "addr", action: m.type === RTM_NEWADDR ? "new" : "del", addr: a.value });
    }
  }
  return ok(out);
}

function requireAddr(addr: string): { family: 4 | 6; text: string } {
  const family = familyOf(addr);
  const text = canonicalIp(addr);
  if (family === null || text === null) throw new TypeError(`not an IP address: ${addr}`);
  return { family, text };
}

export class Kernel {
  private watching: { fd: number; reader: NetlinkWatcher } | null = null;

  constructor(
    private readonly nl: NetlinkTransport,
    private readonly notifications?: NotificationSource,
    private readonly onClose?: () => void,
  ) {}

  /** A Kernel on a real NETLINK_ROUTE socket of the current network namespace. */
  static open(): Kernel {
    const sock = new NetlinkSocket({ protocol: "route" });
    return new Kernel(
      sock,
      {
        open: () => sock.subscribe([RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR]),
        close: () => sock.closeNotify(),
      },
      () => sock.close(),
    );
  }

  links(): LinkInfo[] {
    const out: LinkInfo[] = [];
    for (const bytes of this.nl.request(buildGetLink("dump"))) {
      const l = linkFrom(single(bytes));
      if (l.ok && l.value) out.push(l.value);
    }
    return out;
  }

  /** One link by name or index; null when there is none. */
  link(which: string | number): LinkInfo | null {
    let replies: Uint8Array[];
    try {
      replies = this.nl.request(
        buildGetLink(typeof which === "string" ? { name: which } : { ifindex: which }),
      );
    } catch (e) {
      if (e instanceof NetlinkError && e.code === "ENODEV") return null;
      throw e;
    }
    for (const bytes of replies) {
      const l = linkFrom(single(bytes));
      if (l.ok && l.value) return l.value;
    }
    return null;
  }

  /** Addresses of all links, or of one, in the kernel's order (primary before secondary). */
  addresses(ifindex?: number): AddrInfo[] {
    const out: AddrInfo[] = [];
    for (const bytes of this.nl.request(buildGetAddrDump(0))) {
      const a = toAddrInfo(single(bytes));
      if (a.ok && (ifindex === undefined || a.value.ifindex === ifindex)) out.push(a.value);
    }
    return out;
  }

  /**
   * Adds an address. Idempotent: returns false when it was already there (EEXIST), true when added.
   * Throws NetlinkError for anything else (ENODEV: no such link, EINVAL: bad label, ...).
   */
  addAddress(ifindex: number, addr: string, prefixLen: number, opts: AddAddressOptions = {}): boolean {
    const { family, text } = requireAddr(addr);
    let flags = 0;
    if (opts.nodad && family === 6) flags |= IFA_F_NODAD;
    if (opts.noPrefixRoute) flags |= IFA_F_NOPREFIXROUTE;
    const spec: Parameters<typeof buildAddrRequest>[2] = { family, ifindex, address: text, prefixLen, flags };
    if (opts.label) spec.label = opts.label;
    if (opts.scope !== undefined) spec.scope = opts.scope;
    if (opts.broadcast) spec.broadcast = opts.broadcast;
    try {
      this.nl.request(buildAddrRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, spec));
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === "EEXIST") return false;
      throw e;
    }
  }

  /**
   * Deletes an address. Idempotent: returns false when it was not there (EADDRNOTAVAIL, or the link is
   * gone: ENODEV), true when removed. IPv6 matches the prefix length too.
   */
  delAddress(ifindex: number, addr: string, prefixLen: number): boolean {
    const { family, text } = requireAddr(addr);
    try {
      this.nl.request(
        buildAddrRequest(RTM_DELADDR, NLM_F_ACK, { family, ifindex, address: text, prefixLen }),
      );
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && (e.code === "EADDRNOTAVAIL" || e.code === "ENODEV")) return false;
      throw e;
    }
  }

  /**
   * The address adverts are sent from: IPv4, the first primary (non-secondary) address; IPv6, the first
   * usable link-local one (not tentative, DAD not failed). Null when the link has none yet.
   */
  primaryAddress(ifindex: number, family: 4 | 6): string | null {
    for (const a of this.addresses(ifindex)) {
      if (a.family !== family) continue;
      if (family === 4) {
        if (!(a.flags & IFA_F_SECONDARY)) return a.address;
        continue;
      }
      const bytes = parseIp(a.address);
      if (bytes && isLinkLocalV6(bytes) && !(a.flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED))) return a.address;
    }
    return null;
  }

  /**
   * Delivers link and address changes through the reader until the returned function is called.
   * One watch at a time per Kernel. Throws SysError if the notification socket cannot be opened.
   */
  watch(reader: NetlinkWatcher, onEvent: (e: KernelEvent) => void): () => void {
    if (!this.notifications) throw new Error("this Kernel has no notification source");
    if (this.watching) throw new Error("Kernel.watch is already active");
    const source = this.notifications;
    const fd = source.open();
    reader.watch(fd, "netlink", (d) => {
      if (d.overrun) {
        onEvent({ type: "overrun" });
        return;
      }
      const events = decodeKernelEvents(d.data);
      if (events.ok) for (const e of events.value) onEvent(e);
    });
    this.watching = { fd, reader };
    return () => {
      if (this.watching?.fd !== fd) return;
      reader.unwatch(fd);
      source.close();
      this.watching = null;
    };
  }

  close(): void {
    if (this.watching) {
      this.watching.reader.unwatch(this.watching.fd);
      this.notifications?.close();
      this.watching = null;
    }
    this.onClose?.();
  }
}
