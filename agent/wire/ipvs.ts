// IPVS over generic netlink (family "IPVS", include/uapi/linux/ip_vs.h): commands, attributes, typed
// request builders and decoders of the kernel's dump replies. Pure; framing comes from netlink.ts and
// genetlink.ts. Decoders never throw on bad input: they return a DecodeError.
//
// Kernel conventions this file encodes (net/netfilter/ipvs/ip_vs_ctl.c):
// - a service is named by af + (protocol, addr, port) or by af + fwmark; NEW/SET need the "full entry"
//   (sched_name, flags, timeout, netmask), GET/DEL only the key;
// - addresses travel as a 16-byte union nf_inet_addr (IPv4 in the first 4 bytes), ports big-endian;
// - flags travel as struct ip_vs_flags { u32 flags; u32 mask }: only bits in mask are changed;
// - the IPv4 netmask is the mask itself in network byte order, the IPv6 one a prefix length (host u32);
// - a dest needs fwd_method, weight, u/l thresholds on NEW/SET; its address family may differ from the
//   service's (IPVS_DEST_ATTR_ADDR_FAMILY, Linux >= 4.x).
import { type Family, formatIp, parseIp } from "./ip.ts";
import {
  align4,
  NLA_F_NESTED,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_HDRLEN,
} from "./netlink.ts";
import { fail, ok, type Result } from "./result.ts";

export const IPVS_GENL_NAME = "IPVS";
export const IPVS_GENL_VERSION = 1;

export const IPVS_CMD_NEW_SERVICE = 1;
export const IPVS_CMD_SET_SERVICE = 2;
export const IPVS_CMD_DEL_SERVICE = 3;
export const IPVS_CMD_GET_SERVICE = 4;
export const IPVS_CMD_NEW_DEST = 5;
export const IPVS_CMD_SET_DEST = 6;
export const IPVS_CMD_DEL_DEST = 7;
export const IPVS_CMD_GET_DEST = 8;
export const IPVS_CMD_SET_INFO = 14;
export const IPVS_CMD_GET_INFO = 15;
export const IPVS_CMD_ZERO = 16;
export const IPVS_CMD_FLUSH = 17;

export const IPVS_CMD_ATTR_SERVICE = 1;
export const IPVS_CMD_ATTR_DEST = 2;

export const IPVS_SVC_ATTR_AF = 1;
export const IPVS_SVC_ATTR_PROTOCOL = 2;
export const IPVS_SVC_ATTR_ADDR = 3;
export const IPVS_SVC_ATTR_PORT = 4;
export const IPVS_SVC_ATTR_FWMARK = 5;
export const IPVS_SVC_ATTR_SCHED_NAME = 6;
export const IPVS_SVC_ATTR_FLAGS = 7;
export const IPVS_SVC_ATTR_TIMEOUT = 8;
export const IPVS_SVC_ATTR_NETMASK = 9;
export const IPVS_SVC_ATTR_STATS = 10;
export const IPVS_SVC_ATTR_PE_NAME = 11;
export const IPVS_SVC_ATTR_STATS64 = 12;

export const IPVS_DEST_ATTR_ADDR = 1;
export const IPVS_DEST_ATTR_PORT = 2;
export const IPVS_DEST_ATTR_FWD_METHOD = 3;
export const IPVS_DEST_ATTR_WEIGHT = 4;
export const IPVS_DEST_ATTR_U_THRESH = 5;
export const IPVS_DEST_ATTR_L_THRESH = 6;
export const IPVS_DEST_ATTR_ACTIVE_CONNS = 7;
export const IPVS_DEST_ATTR_INACT_CONNS = 8;
export const IPVS_DEST_ATTR_PERSIST_CONNS = 9;
export const IPVS_DEST_ATTR_STATS = 10;
export const IPVS_DEST_ATTR_ADDR_FAMILY = 11;
export const IPVS_DEST_ATTR_STATS64 = 12;
export const IPVS_DEST_ATTR_TUN_TYPE = 13;
export const IPVS_DEST_ATTR_TUN_PORT = 14;
export const IPVS_DEST_ATTR_TUN_FLAGS = 15;

export const IPVS_STATS_ATTR_CONNS = 1;
export const IPVS_STATS_ATTR_INPKTS = 2;
export const IPVS_STATS_ATTR_OUTPKTS = 3;
export const IPVS_STATS_ATTR_INBYTES = 4;
export const IPVS_STATS_ATTR_OUTBYTES = 5;
export const IPVS_STATS_ATTR_CPS = 6;
export const IPVS_STATS_ATTR_INPPS = 7;
export const IPVS_STATS_ATTR_OUTPPS = 8;
export const IPVS_STATS_ATTR_INBPS = 9;
export const IPVS_STATS_ATTR_OUTBPS = 10;

export const IPVS_INFO_ATTR_VERSION = 1;
export const IPVS_INFO_ATTR_CONN_TAB_SIZE = 2;

// service flags (IP_VS_SVC_F_*)
export const IP_VS_SVC_F_PERSISTENT = 0x0001;
/** set by the kernel on every hashed (i.e. live) service; never ours to set or compare */
export const IP_VS_SVC_F_HASHED = 0x0002;
export const IP_VS_SVC_F_ONEPACKET = 0x0004;
export const IP_VS_SVC_F_SCHED1 = 0x0008;
export const IP_VS_SVC_F_SCHED2 = 0x0010;
export const IP_VS_SVC_F_SCHED3 = 0x0020;
/** sh / mh: fall back to another server when the chosen one is unavailable */
export const IP_VS_SVC_F_SCHED_SH_FALLBACK = IP_VS_SVC_F_SCHED1;
/** sh / mh: hash the source port too */
export const IP_VS_SVC_F_SCHED_SH_PORT = IP_VS_SVC_F_SCHED2;
export const IP_VS_SVC_F_SCHED_MH_FALLBACK = IP_VS_SVC_F_SCHED1;
export const IP_VS_SVC_F_SCHED_MH_PORT = IP_VS_SVC_F_SCHED2;
/** the flags user space may set */
export const IP_VS_SVC_F_USER_MASK =
  IP_VS_SVC_F_PERSISTENT |
  IP_VS_SVC_F_ONEPACKET |
  IP_VS_SVC_F_SCHED1 |
  IP_VS_SVC_F_SCHED2 |
  IP_VS_SVC_F_SCHED3;

const AF_INET = 2;
const AF_INET6 = 10;
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const IPPROTO_SCTP = 132;

export type IpvsProtocol = "tcp" | "udp" | "sctp";
const PROTO_NUM: Readonly<Record<IpvsProtocol, number>> = {
  tcp: IPPROTO_TCP,
  udp: IPPROTO_UDP,
  sctp: IPPROTO_SCTP,
};
function protoName(n: number): IpvsProtocol | undefined {
  return n === IPPROTO_TCP ? "tcp" : n === IPPROTO_UDP ? "udp" : n === IPPROTO_SCTP ? "sctp" : undefined;
}

/** Forwarding methods (IP_VS_CONN_F_FWD_MASK values); keepalived's lb_kind NAT / DR / TUN. */
export const FWD_METHODS = ["masq", "local", "tunnel", "route", "bypass"] as const;
export type FwdMethod = (typeof FWD_METHODS)[number];

export const TUN_TYPES = ["ipip", "gue", "gre"] as const;
export type TunType = (typeof TUN_TYPES)[number];

/** A virtual service's identity: protocol + address + port, or a firewall mark; both per family. */
export type ServiceKey =
  | { af: Family; protocol: IpvsProtocol; addr: string; port: number }
  | { af: Family; fwmark: number };

export interface IpvsStats {
  conns: bigint;
  inPkts: bigint;
  outPkts: bigint;
  inBytes: bigint;
  outBytes: bigint;
  cps: bigint;
  inPps: bigint;
  outPps: bigint;
  inBps: bigint;
  outBps: bigint;
}

export interface IpvsService {
  key: ServiceKey;
  /** scheduler name: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh */
  sched: string;
  /** IP_VS_SVC_F_* within IP_VS_SVC_F_USER_MASK (HASHED is dropped on decode) */
  flags: number;
  /** persistence timeout in seconds (0: none) */
  timeout: number;
  /** persistence granularity as a prefix length (IPv4 0..32, IPv6 1..128) */
  netmask: number;
  /** persistence engine ("sip"), absent for none */
  peName?: string;
  /** only in dump replies */
  stats?: IpvsStats;
}

export interface IpvsDest {
  /** the real server's family; may differ from the service's (e.g. IPv6 VIP over IPv4 tunnels) */
  af: Family;
  addr: string;
  port: number;
  fwd: FwdMethod;
  weight: number;
  /** connection limits (0: none) */
  upperThreshold: number;
  lowerThreshold: number;
  /** tunnel encapsulation, meaningful with fwd "tunnel" */
  tunType?: TunType;
  tunPort?: number;
  tunFlags?: number;
  /** only in dump replies */
  activeConns?: number;
  inactConns?: number;
  persistConns?: number;
  stats?: IpvsStats;
}

/** The part of a dest that names it within its service. */
export interface DestKey {
  af: Family;
  addr: string;
  port: number;
}

export interface IpvsInfo {
  /** "1.2.1" */
  version: string;
  versionCode: number;
  connTabSize: number;
}

export function isFwmarkKey(k: ServiceKey): k is { af: Family; fwmark: number } {
  return "fwmark" in k;
}

interface AddrInfo {
  text: string;
  bytes: Uint8Array;
  af: Family;
}
// Parsing and formatting an address costs microseconds, and a large table names the same few
// thousand addresses over and over (every op and every dump row): memoize, bounded.
const addrCache = new Map<string, AddrInfo | null>();
const ADDR_CACHE_MAX = 65536;

function addrInfo(addr: string): AddrInfo | null {
  let v = addrCache.get(addr);
  if (v === undefined) {
    const b = parseIp(addr);
    v = b ? { text: formatIp(b), bytes: b, af: b.length === 4 ? 4 : 6 } : null;
    if (addrCache.size >= ADDR_CACHE_MAX) addrCache.clear();
    addrCache.set(addr, v);
  }
  return v;
}

/** Family of an address text, or undefined if it is not one. */
export function addrFamily(addr: string): Family | undefined {
  return addrInfo(addr)?.af;
}

/** Canonical text of a key ("tcp 192.0.2.1:80", "tcp [2001:db8::1]:80", "fwmark 7 v4"): map key and name in errors. */
// Names are asked for the same key objects on every reconcile and status (a thousand services each
// time); remembering them per object saves re-parsing the address. Keys are never mutated.
const keyNames = new WeakMap<ServiceKey, string>();

export function serviceKeyString(k: ServiceKey): string {
  let name = keyNames.get(k);
  if (name === undefined) {
    if (isFwmarkKey(k)) name = `fwmark ${k.fwmark} v${k.af}`;
    else {
      const a = addrInfo(k.addr)?.text ?? k.addr;
      name = k.af === 6 ? `${k.protocol} [${a}]:${k.port}` : `${k.protocol} ${a}:${k.port}`;
    }
    keyNames.set(k, name);
  }
  return name;
}

export function destKeyString(d: DestKey): string {
  const a = addrInfo(d.addr)?.text ?? d.addr;
  return d.af === 6 ? `[${a}]:${d.port}` : `${a}:${d.port}`;
}

// ---------------------------------------------------------------------------------------------------
// encoding

function afNum(f: Family): number {
  return f === 4 ? AF_INET : AF_INET6;
}

/** Address bytes for the 16-byte union nf_inet_addr (zero-padded by the writer, as libipvs sends it). Throws TypeError on a caller bug. */
function inetAddr(addr: string, af: Family): Uint8Array {
  const b = addrInfo(addr)?.bytes;
  if (!b || b.length !== (af === 4 ? 4 : 16)) throw new TypeError(`not an IPv${af} address: ${addr}`);
  return b;
}

function prefixToMask(prefix: number): number {
  return prefix <= 0 ? 0 : prefix >= 32 ? 0xffffffff : (0xffffffff << (32 - prefix)) >>> 0;
}

/**
 * Writes generic netlink requests straight into one buffer, back to back. Programming a large table
 * sends one message per service and per real server (11,000 for 1,000 x 10), and building each from
 * per-attribute arrays (netlink.ts's general encoder) cost ~20 us of allocation apiece; a buffer per
 * message still cost a few (under emulation, allocation is most of the encoding time), so a batch
 * shares one. The bytes are identical (the unit tests check them by hand and against decoders).
 */
class GenlWriter {
  private buf: Uint8Array;
  private dv: DataView;
  private off = 0;
  /** start offset of the message being written, -1 between messages */
  private start = -1;
  private family = 0;
  private nlFlags = 0;
  private cmd = 0;
  /** [start, end) of each finished message */
  private readonly bounds: number[] = [];

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.dv = new DataView(this.buf.buffer);
  }

  /** Starts a message; the buffer only grows (never rewinds), so unwritten bytes are zero. */
  message(family: number, nlFlags: number, cmd: number): this {
    if (this.start >= 0) throw new Error("GenlWriter: message not finished");
    this.family = family;
    this.nlFlags = nlFlags;
    this.cmd = cmd;
    this.room(NLMSG_HDRLEN + 4);
    this.start = this.off;
    this.off += NLMSG_HDRLEN + 4;
    return this;
  }

  private room(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.off + n));
    b.set(this.buf.subarray(0, this.off));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }

  private attr(type: number, payload: number): number {
    const len = align4(4 + payload);
    this.room(len);
    const at = this.off;
    this.dv.setUint16(at, 4 + payload, true);
    this.dv.setUint16(at + 2, type, true);
    this.off += len;
    return at + 4;
  }
  u8(type: number, v: number): void {
    const at = this.attr(type, 1);
    this.buf[at] = v & 0xff;
  }
  u16(type: number, v: number): void {
    const at = this.attr(type, 2);
    this.dv.setUint16(at, v & 0xffff, true);
  }
  /** network byte order (IPVS ports); the NET_BYTEORDER bit is not set, as the kernel expects */
  u16be(type: number, v: number): void {
    const at = this.attr(type, 2);
    this.dv.setUint16(at, v & 0xffff, false);
  }
  u32(type: number, v: number): void {
    const at = this.attr(type, 4);
    this.dv.setUint32(at, v >>> 0, true);
  }
  /** two u32s in one attribute (struct ip_vs_flags: flags, mask) */
  u32x2(type: number, a: number, b: number): void {
    const at = this.attr(type, 8);
    this.dv.setUint32(at, a >>> 0, true);
    this.dv.setUint32(at + 4, b >>> 0, true);
  }
  u32be(type: number, v: number): void {
    const at = this.attr(type, 4);
    this.dv.setUint32(at, v >>> 0, false);
  }
  /** `b` left-aligned in `size` bytes (the 16-byte nf_inet_addr) */
  bytes(type: number, b: Uint8Array, size = b.length): void {
    // attr() may grow the buffer: take the offset before reading this.buf
    const at = this.attr(type, size);
    this.buf.set(b, at);
  }
  /** NUL-terminated string */
  str(type: number, s: string): void {
    const b = utf8.encode(s);
    const at = this.attr(type, b.length + 1);
    this.buf.set(b, at);
  }
  begin(type: number): number {
    const at = this.attr(type | NLA_F_NESTED, 0);
    return at - 4;
  }
  end(at: number): void {
    this.dv.setUint16(at, this.off - at, true);
  }
  /** Completes the message begun last. */
  endMessage(): void {
    const st = this.start;
    if (st < 0) throw new Error("GenlWriter: no message begun");
    const dv = this.dv;
    dv.setUint32(st, this.off - st, true);
    dv.setUint16(st + 4, this.family, true);
    dv.setUint16(st + 6, NLM_F_REQUEST | this.nlFlags, true);
    // seq and pid stay 0: the socket assigns the sequence number
    this.buf[st + NLMSG_HDRLEN] = this.cmd;
    this.buf[st + NLMSG_HDRLEN + 1] = IPVS_GENL_VERSION;
    this.bounds.push(st, this.off);
    this.start = -1;
  }

  /** The one message written, in a buffer of its own. */
  finishOne(): Uint8Array {
    return this.buf.slice(0, this.off);
  }

  /** Every finished message, as views into the shared buffer (valid until the writer is used again). */
  messages(): Uint8Array[] {
    const out: Uint8Array[] = new Array(this.bounds.length / 2);
    for (let i = 0; i < this.bounds.length; i += 2)
      out[i / 2] = this.buf.subarray(this.bounds[i]!, this.bounds[i + 1]!);
    return out;
  }
}

const utf8 = new TextEncoder();

function writeKey(w: GenlWriter, k: ServiceKey): void {
  w.u16(IPVS_SVC_ATTR_AF, afNum(k.af));
  if (isFwmarkKey(k)) w.u32(IPVS_SVC_ATTR_FWMARK, k.fwmark);
  else {
    w.u16(IPVS_SVC_ATTR_PROTOCOL, PROTO_NUM[k.protocol]);
    w.bytes(IPVS_SVC_ATTR_ADDR, inetAddr(k.addr, k.af), 16);
    w.u16be(IPVS_SVC_ATTR_PORT, k.port);
  }
}

function writeServiceKey(w: GenlWriter, k: ServiceKey): void {
  const at = w.begin(IPVS_CMD_ATTR_SERVICE);
  writeKey(w, k);
  w.end(at);
}

function writeService(w: GenlWriter, s: IpvsService): void {
  const at = w.begin(IPVS_CMD_ATTR_SERVICE);
  writeKey(w, s.key);
  w.str(IPVS_SVC_ATTR_SCHED_NAME, s.sched);
  // struct ip_vs_flags: the mask holds every user flag, so an edit also clears the ones the new value lacks
  w.u32x2(IPVS_SVC_ATTR_FLAGS, s.flags & IP_VS_SVC_F_USER_MASK, IP_VS_SVC_F_USER_MASK);
  w.u32(IPVS_SVC_ATTR_TIMEOUT, s.timeout);
  if (s.key.af === 4) w.u32be(IPVS_SVC_ATTR_NETMASK, prefixToMask(s.netmask));
  else w.u32(IPVS_SVC_ATTR_NETMASK, s.netmask);
  // absent = keep; the kernel clears a persistence engine on edit only when given an empty name
  w.str(IPVS_SVC_ATTR_PE_NAME, s.peName ?? "");
  w.end(at);
}

function writeDestKey(w: GenlWriter, d: DestKey): void {
  w.bytes(IPVS_DEST_ATTR_ADDR, inetAddr(d.addr, d.af), 16);
  w.u16be(IPVS_DEST_ATTR_PORT, d.port);
  w.u16(IPVS_DEST_ATTR_ADDR_FAMILY, afNum(d.af));
}

function writeDest(w: GenlWriter, d: IpvsDest): void {
  const at = w.begin(IPVS_CMD_ATTR_DEST);
  writeDestKey(w, d);
  w.u32(IPVS_DEST_ATTR_FWD_METHOD, FWD_METHODS.indexOf(d.fwd));
  w.u32(IPVS_DEST_ATTR_WEIGHT, d.weight);
  w.u32(IPVS_DEST_ATTR_U_THRESH, d.upperThreshold);
  w.u32(IPVS_DEST_ATTR_L_THRESH, d.lowerThreshold);
  if (d.fwd === "tunnel") {
    w.u8(IPVS_DEST_ATTR_TUN_TYPE, TUN_TYPES.indexOf(d.tunType ?? "ipip"));
    if (d.tunPort !== undefined) w.u16be(IPVS_DEST_ATTR_TUN_PORT, d.tunPort);
    if (d.tunFlags !== undefined) w.u16(IPVS_DEST_ATTR_TUN_FLAGS, d.tunFlags);
  }
  w.end(at);
}

function getInfo(w: GenlWriter, family: number): void {
  w.message(family, 0, IPVS_CMD_GET_INFO).endMessage();
}
function getServices(w: GenlWriter, family: number): void {
  w.message(family, NLM_F_DUMP, IPVS_CMD_GET_SERVICE).endMessage();
}
function getService(w: GenlWriter, family: number, key: ServiceKey): void {
  writeServiceKey(w.message(family, 0, IPVS_CMD_GET_SERVICE), key);
  w.endMessage();
}
function newService(w: GenlWriter, family: number, s: IpvsService): void {
  writeService(w.message(family, 0, IPVS_CMD_NEW_SERVICE), s);
  w.endMessage();
}
function setService(w: GenlWriter, family: number, s: IpvsService): void {
  writeService(w.message(family, 0, IPVS_CMD_SET_SERVICE), s);
  w.endMessage();
}
function delService(w: GenlWriter, family: number, key: ServiceKey): void {
  writeServiceKey(w.message(family, 0, IPVS_CMD_DEL_SERVICE), key);
  w.endMessage();
}
function getDests(w: GenlWriter, family: number, key: ServiceKey): void {
  writeServiceKey(w.message(family, NLM_F_DUMP, IPVS_CMD_GET_DEST), key);
  w.endMessage();
}
function newDest(w: GenlWriter, family: number, key: ServiceKey, d: IpvsDest): void {
  writeServiceKey(w.message(family, 0, IPVS_CMD_NEW_DEST), key);
  writeDest(w, d);
  w.endMessage();
}
function setDest(w: GenlWriter, family: number, key: ServiceKey, d: IpvsDest): void {
  writeServiceKey(w.message(family, 0, IPVS_CMD_SET_DEST), key);
  writeDest(w, d);
  w.endMessage();
}
function delDest(w: GenlWriter, family: number, key: ServiceKey, d: DestKey): void {
  writeServiceKey(w.message(family, 0, IPVS_CMD_DEL_DEST), key);
  const at = w.begin(IPVS_CMD_ATTR_DEST);
  writeDestKey(w, d);
  w.end(at);
  w.endMessage();
}
function flush(w: GenlWriter, family: number): void {
  w.message(family, 0, IPVS_CMD_FLUSH).endMessage();
}

export function buildGetInfo(family: number): Uint8Array {
  const w = new GenlWriter();
  getInfo(w, family);
  return w.finishOne();
}

/** Dump of every service (each reply: IPVS_CMD_NEW_SERVICE with IPVS_CMD_ATTR_SERVICE). */
export function buildGetServices(family: number): Uint8Array {
  const w = new GenlWriter();
  getServices(w, family);
  return w.finishOne();
}

/** One service by key (ESRCH if absent). */
export function buildGetService(family: number, key: ServiceKey): Uint8Array {
  const w = new GenlWriter();
  getService(w, family, key);
  return w.finishOne();
}

export function buildNewService(family: number, s: IpvsService): Uint8Array {
  const w = new GenlWriter();
  newService(w, family, s);
  return w.finishOne();
}

export function buildSetService(family: number, s: IpvsService): Uint8Array {
  const w = new GenlWriter();
  setService(w, family, s);
  return w.finishOne();
}

export function buildDelService(family: number, key: ServiceKey): Uint8Array {
  const w = new GenlWriter();
  delService(w, family, key);
  return w.finishOne();
}

/** Dump of one service's real servers. */
export function buildGetDests(family: number, key: ServiceKey): Uint8Array {
  const w = new GenlWriter();
  getDests(w, family, key);
  return w.finishOne();
}

export function buildNewDest(family: number, key: ServiceKey, d: IpvsDest): Uint8Array {
  const w = new GenlWriter();
  newDest(w, family, key, d);
  return w.finishOne();
}

export function buildSetDest(family: number, key: ServiceKey, d: IpvsDest): Uint8Array {
  const w = new GenlWriter();
  setDest(w, family, key, d);
  return w.finishOne();
}

export function buildDelDest(family: number, key: ServiceKey, d: DestKey): Uint8Array {
  const w = new GenlWriter();
  delDest(w, family, key, d);
  return w.finishOne();
}

/** Removes every service (and so every dest). vigil never sends it on its own: it owns only its services. */
export function buildFlush(family: number): Uint8Array {
  const w = new GenlWriter();
  flush(w, family);
  return w.finishOne();
}

/**
 * Many requests into one shared buffer (the same bytes as the build* functions, which use it for one
 * message): what IpvsClient encodes a batch of ops with. messages() returns views, in order.
 */
export class IpvsRequestWriter {
  private readonly w: GenlWriter;
  constructor(
    readonly family: number,
    /** initial buffer size; it grows as needed */
    size = 4096,
  ) {
    this.w = new GenlWriter(size);
  }
  newService(s: IpvsService): void {
    newService(this.w, this.family, s);
  }
  setService(s: IpvsService): void {
    setService(this.w, this.family, s);
  }
  delService(key: ServiceKey): void {
    delService(this.w, this.family, key);
  }
  newDest(key: ServiceKey, d: IpvsDest): void {
    newDest(this.w, this.family, key, d);
  }
  setDest(key: ServiceKey, d: IpvsDest): void {
    setDest(this.w, this.family, key, d);
  }
  delDest(key: ServiceKey, d: DestKey): void {
    delDest(this.w, this.family, key, d);
  }
  messages(): Uint8Array[] {
    return this.w.messages();
  }
}

// ---------------------------------------------------------------------------------------------------
// decoding
//
// Dumps of a large table decode tens of thousands of messages, and inside the TCG test VM every small
// allocation (a subarray, a DataView, a Map) costs microseconds: netlink.ts's AttrSet made a dest cost
// ~0.5 ms there. Attrs indexes attributes by type into one Int32Array over the message's own bytes
// and reads values in place. Same rules as AttrSet: first occurrence wins, a short trailing fragment is
// tolerated, an attribute claiming more bytes than remain is an error.

/** attribute types above this are ignored (IPVS uses 1..15) */
const MAX_ATTR = 16;

class Attrs {
  private constructor(
    private readonly buf: Uint8Array,
    private readonly dv: DataView,
    /** [2t] = value offset in buf (-1: absent), [2t+1] = value length */
    private readonly idx: Int32Array,
  ) {}

  static parse(buf: Uint8Array, start = 0, end = buf.length, dv?: DataView): Result<Attrs> {
    const view = dv ?? new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const idx = new Int32Array(2 * (MAX_ATTR + 1)).fill(-1);
    let off = start;
    while (end - off >= NLA_HDRLEN) {
      const len = view.getUint16(off, true);
      const type = view.getUint16(off + 2, true) & NLA_TYPE_MASK;
      if (len < NLA_HDRLEN) return fail("nla_bad_length", `nla_len ${len}`);
      if (len > end - off) return fail("nla_truncated", `nla_len ${len} > ${end - off}`);
      if (type <= MAX_ATTR && idx[2 * type]! < 0) {
        idx[2 * type] = off + NLA_HDRLEN;
        idx[2 * type + 1] = len - NLA_HDRLEN;
      }
      off += align4(len);
    }
    return ok(new Attrs(buf, view, idx));
  }

  /** value offset if present with at least `size` bytes, else -1 */
  private at(t: number, size: number): number {
    const o = this.idx[2 * t] ?? -1;
    return o >= 0 && this.idx[2 * t + 1]! >= size ? o : -1;
  }
  has(t: number): boolean {
    return (this.idx[2 * t] ?? -1) >= 0;
  }
  u8(t: number): number | undefined {
    const o = this.at(t, 1);
    return o < 0 ? undefined : this.buf[o];
  }
  u16(t: number): number | undefined {
    const o = this.at(t, 2);
    return o < 0 ? undefined : this.dv.getUint16(o, true);
  }
  u16be(t: number): number | undefined {
    const o = this.at(t, 2);
    return o < 0 ? undefined : this.dv.getUint16(o, false);
  }
  u32(t: number): number | undefined {
    const o = this.at(t, 4);
    return o < 0 ? undefined : this.dv.getUint32(o, true);
  }
  u32be(t: number): number | undefined {
    const o = this.at(t, 4);
    return o < 0 ? undefined : this.dv.getUint32(o, false);
  }
  i32(t: number): number | undefined {
    const o = this.at(t, 4);
    return o < 0 ? undefined : this.dv.getInt32(o, true);
  }
  u64(t: number): bigint | undefined {
    const o = this.at(t, 8);
    return o < 0 ? undefined : this.dv.getBigUint64(o, true);
  }
  /** string up to the first NUL (tolerates a missing NUL) */
  str(t: number): string | undefined {
    const o = this.at(t, 0);
    if (o < 0) return undefined;
    const end = o + this.idx[2 * t + 1]!;
    let n = o;
    let ascii = true;
    while (n < end && this.buf[n] !== 0) {
      if (this.buf[n]! >= 0x80) ascii = false;
      n++;
    }
    // scheduler and engine names are short ASCII: skip the TextDecoder
    if (ascii && n - o <= 32) return String.fromCharCode(...this.buf.subarray(o, n));
    return utf8d.decode(this.buf.subarray(o, n));
  }
  /** an address of the given family at the start of the value (the 16-byte nf_inet_addr) */
  ip(t: number, af: Family): string | undefined {
    const o = this.at(t, af === 4 ? 4 : 16);
    return o < 0 ? undefined : formatIp(this.buf, o, af);
  }
  nested(t: number): Result<Attrs> | undefined {
    const o = this.at(t, 0);
    return o < 0 ? undefined : Attrs.parse(this.buf, o, o + this.idx[2 * t + 1]!, this.dv);
  }
}

const utf8d = new TextDecoder("utf-8", { fatal: false });

/** Validates the nlmsghdr + genlmsghdr of a whole message and indexes its top-level attributes. */
function topAttrs(msg: Uint8Array): Result<Attrs> {
  const base = NLMSG_HDRLEN + 4;
  if (msg.length < base) return fail("genl_short", `${msg.length} bytes`);
  const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const len = dv.getUint32(0, true);
  if (len < base) return fail("genl_bad_length", `nlmsg_len ${len}`);
  if (len > msg.length) return fail("genl_truncated", `nlmsg_len ${len} > ${msg.length}`);
  return Attrs.parse(msg, base, len, dv);
}

function familyOfAf(n: number | undefined): Family | undefined {
  return n === AF_INET ? 4 : n === AF_INET6 ? 6 : undefined;
}

/** leading one bits of a network-order IPv4 mask (a non-contiguous mask, which ipvsadm accepts, is cut at its first zero) */
function maskToPrefix(mask: number): number {
  let n = 0;
  while (n < 32 && (mask & (0x80000000 >>> n)) !== 0) n++;
  return n;
}

function statsOf(s: Attrs, wide: boolean): IpvsStats {
  // STATS64 carries u64 for every counter; the legacy STATS mixes u32 counters and u64 byte counts
  const get = (t: number, u64: boolean): bigint => {
    const v = wide || u64 ? s.u64(t) : s.u32(t);
    return v === undefined ? 0n : BigInt(v);
  };
  return {
    conns: get(IPVS_STATS_ATTR_CONNS, false),
    inPkts: get(IPVS_STATS_ATTR_INPKTS, false),
    outPkts: get(IPVS_STATS_ATTR_OUTPKTS, false),
    inBytes: get(IPVS_STATS_ATTR_INBYTES, true),
    outBytes: get(IPVS_STATS_ATTR_OUTBYTES, true),
    cps: get(IPVS_STATS_ATTR_CPS, false),
    inPps: get(IPVS_STATS_ATTR_INPPS, false),
    outPps: get(IPVS_STATS_ATTR_OUTPPS, false),
    inBps: get(IPVS_STATS_ATTR_INBPS, false),
    outBps: get(IPVS_STATS_ATTR_OUTBPS, false),
  };
}

export function decodeStats(buf: Uint8Array, wide: boolean): Result<IpvsStats> {
  const a = Attrs.parse(buf);
  return a.ok ? ok(statsOf(a.value, wide)) : a;
}

function decodeStatsOf(s: Attrs, t64: number, t32: number): Result<IpvsStats | undefined> {
  const wide = s.has(t64);
  const n = s.nested(wide ? t64 : t32);
  if (!n) return ok(undefined);
  return n.ok ? ok(statsOf(n.value, wide)) : n;
}

/** What to decode besides the table itself. */
export interface DecodeOptions {
  /** traffic counters (default true); reconcile does not need them and a large dump decodes faster without */
  stats?: boolean;
}

function serviceKeyOf(s: Attrs): Result<ServiceKey> {
  const af = familyOfAf(s.u16(IPVS_SVC_ATTR_AF));
  if (af === undefined) return fail("ipvs_svc_bad_af", String(s.u16(IPVS_SVC_ATTR_AF)));
  const fwmark = s.u32(IPVS_SVC_ATTR_FWMARK);
  // the kernel treats fwmark 0 as "no fwmark" and falls back to protocol/addr/port
  if (fwmark !== undefined && fwmark !== 0) return ok({ af, fwmark });
  const pn = s.u16(IPVS_SVC_ATTR_PROTOCOL);
  const protocol = pn === undefined ? undefined : protoName(pn);
  if (protocol === undefined) return fail("ipvs_svc_bad_protocol", String(pn));
  const addr = s.ip(IPVS_SVC_ATTR_ADDR, af);
  if (addr === undefined) return fail("ipvs_svc_bad_addr");
  const port = s.u16be(IPVS_SVC_ATTR_PORT);
  if (port === undefined) return fail("ipvs_svc_no_port");
  return ok({ af, protocol, addr, port });
}

/** Only the key of a nested IPVS_CMD_ATTR_SERVICE (what GET/DEL requests carry). */
export function decodeServiceKeyAttrs(buf: Uint8Array): Result<ServiceKey> {
  const p = Attrs.parse(buf);
  return p.ok ? serviceKeyOf(p.value) : p;
}

function serviceOf(s: Attrs, opts?: DecodeOptions): Result<IpvsService> {
  const k = serviceKeyOf(s);
  if (!k.ok) return k;
  const key = k.value;
  const sched = s.str(IPVS_SVC_ATTR_SCHED_NAME);
  if (sched === undefined) return fail("ipvs_svc_no_sched");
  const flags = s.u32(IPVS_SVC_ATTR_FLAGS);
  if (flags === undefined) return fail("ipvs_svc_bad_flags");
  const nm = key.af === 4 ? s.u32be(IPVS_SVC_ATTR_NETMASK) : s.u32(IPVS_SVC_ATTR_NETMASK);
  if (nm === undefined) return fail("ipvs_svc_bad_netmask");
  const svc: IpvsService = {
    key,
    sched,
    flags: flags & IP_VS_SVC_F_USER_MASK,
    timeout: s.u32(IPVS_SVC_ATTR_TIMEOUT) ?? 0,
    netmask: key.af === 4 ? maskToPrefix(nm) : nm,
  };
  const pe = s.str(IPVS_SVC_ATTR_PE_NAME);
  if (pe) svc.peName = pe;
  if (opts?.stats !== false) {
    const stats = decodeStatsOf(s, IPVS_SVC_ATTR_STATS64, IPVS_SVC_ATTR_STATS);
    if (!stats.ok) return stats;
    if (stats.value) svc.stats = stats.value;
  }
  return ok(svc);
}

/** The attributes of one nested IPVS_CMD_ATTR_SERVICE. */
export function decodeServiceAttrs(buf: Uint8Array, opts?: DecodeOptions): Result<IpvsService> {
  const p = Attrs.parse(buf);
  return p.ok ? serviceOf(p.value, opts) : p;
}

function destKeyOf(s: Attrs, serviceAf: Family): Result<DestKey> {
  const afRaw = s.u16(IPVS_DEST_ATTR_ADDR_FAMILY);
  const af = afRaw === undefined ? serviceAf : familyOfAf(afRaw);
  if (af === undefined) return fail("ipvs_dest_bad_af", String(afRaw));
  const addr = s.ip(IPVS_DEST_ATTR_ADDR, af);
  if (addr === undefined) return fail("ipvs_dest_bad_addr");
  const port = s.u16be(IPVS_DEST_ATTR_PORT);
  if (port === undefined) return fail("ipvs_dest_no_port");
  return ok({ af, addr, port });
}

/** Only the key of a nested IPVS_CMD_ATTR_DEST (what DEL_DEST carries). */
export function decodeDestKeyAttrs(buf: Uint8Array, serviceAf: Family): Result<DestKey> {
  const p = Attrs.parse(buf);
  return p.ok ? destKeyOf(p.value, serviceAf) : p;
}

function destOf(s: Attrs, serviceAf: Family, opts?: DecodeOptions): Result<IpvsDest> {
  const k = destKeyOf(s, serviceAf);
  if (!k.ok) return k;
  const { af, addr, port } = k.value;
  const fwdRaw = s.u32(IPVS_DEST_ATTR_FWD_METHOD);
  const fwd = fwdRaw === undefined ? undefined : FWD_METHODS[fwdRaw & 0x7];
  if (fwd === undefined) return fail("ipvs_dest_bad_fwd", String(fwdRaw));
  const weight = s.i32(IPVS_DEST_ATTR_WEIGHT);
  if (weight === undefined) return fail("ipvs_dest_no_weight");
  const d: IpvsDest = {
    af,
    addr,
    port,
    fwd,
    weight,
    upperThreshold: s.u32(IPVS_DEST_ATTR_U_THRESH) ?? 0,
    lowerThreshold: s.u32(IPVS_DEST_ATTR_L_THRESH) ?? 0,
  };
  const tt = s.u8(IPVS_DEST_ATTR_TUN_TYPE);
  if (tt !== undefined) {
    const t = TUN_TYPES[tt];
    if (t === undefined) return fail("ipvs_dest_bad_tun_type", String(tt));
    d.tunType = t;
  }
  const tp = s.u16be(IPVS_DEST_ATTR_TUN_PORT);
  if (tp !== undefined) d.tunPort = tp;
  const tf = s.u16(IPVS_DEST_ATTR_TUN_FLAGS);
  if (tf !== undefined) d.tunFlags = tf;
  const ac = s.u32(IPVS_DEST_ATTR_ACTIVE_CONNS);
  if (ac !== undefined) d.activeConns = ac;
  const ic = s.u32(IPVS_DEST_ATTR_INACT_CONNS);
  if (ic !== undefined) d.inactConns = ic;
  const pc = s.u32(IPVS_DEST_ATTR_PERSIST_CONNS);
  if (pc !== undefined) d.persistConns = pc;
  if (opts?.stats !== false) {
    const stats = decodeStatsOf(s, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_STATS);
    if (!stats.ok) return stats;
    if (stats.value) d.stats = stats.value;
  }
  return ok(d);
}

/** The attributes of one nested IPVS_CMD_ATTR_DEST; `serviceAf` is the default when ADDR_FAMILY is absent. */
export function decodeDestAttrs(buf: Uint8Array, serviceAf: Family, opts?: DecodeOptions): Result<IpvsDest> {
  const p = Attrs.parse(buf);
  return p.ok ? destOf(p.value, serviceAf, opts) : p;
}

function nestedOf(msg: Uint8Array, attr: number, what: string): Result<Attrs> {
  const top = topAttrs(msg);
  if (!top.ok) return top;
  const n = top.value.nested(attr);
  if (!n) return fail(`ipvs_no_${what}`, `cmd ${msg[NLMSG_HDRLEN]}`);
  return n;
}

/** One service from a whole reply message (GET_SERVICE dump or single get). */
export function decodeServiceMsg(msg: Uint8Array, opts?: DecodeOptions): Result<IpvsService> {
  const n = nestedOf(msg, IPVS_CMD_ATTR_SERVICE, "service");
  return n.ok ? serviceOf(n.value, opts) : n;
}

/** One dest from a whole reply message (GET_DEST dump). */
export function decodeDestMsg(msg: Uint8Array, serviceAf: Family, opts?: DecodeOptions): Result<IpvsDest> {
  const n = nestedOf(msg, IPVS_CMD_ATTR_DEST, "dest");
  return n.ok ? destOf(n.value, serviceAf, opts) : n;
}

export function decodeInfoMsg(msg: Uint8Array): Result<IpvsInfo> {
  const a = topAttrs(msg);
  if (!a.ok) return a;
  const v = a.value.u32(IPVS_INFO_ATTR_VERSION);
  const t = a.value.u32(IPVS_INFO_ATTR_CONN_TAB_SIZE);
  if (v === undefined || t === undefined) return fail("ipvs_info_incomplete");
  return ok({
    version: `${(v >> 16) & 0xff}.${(v >> 8) & 0xff}.${v & 0xff}`,
    versionCode: v,
    connTabSize: t,
  });
}
