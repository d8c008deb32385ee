// Config + health -> the IPVS table vigil wants. Pure: the check child feeds it the health of every real
// server and the quorum state of the previous computation, and hands the services to reconcile().
//
// keepalived semantics (check/ipwrapper.c, ipvswrapper.c), restated as a function of state instead of a
// sequence of kernel commands:
// - a virtual server is one service (ADDR PORT or fwmark), or one service per address of each range and
//   per fwmark of its virtual_server_group; all of them carry the same real servers;
// - an alive real server is in the table with its effective weight (a misc_dynamic weight when a checker
//   set one, else its configured weight); a failed one is absent, or present with weight 0 under
//   inhibit_on_failure (keepalived adds inhibited servers at start-up even when they start failed);
// - quorum: weight_sum = sum of the effective weights of alive real servers. Starting: up iff
//   weight_sum >= quorum + hysteresis. While down it comes up at weight_sum >= quorum + hysteresis; while
//   up it goes down when weight_sum == 0 or weight_sum < quorum - hysteresis;
// - with a sorry_server and quorum down, the sorry server (weight 1, the virtual server's lb_kind unless
//   sorry_server_lvs_method) replaces the alive real servers: they are removed, or set to weight 0 when
//   they have inhibit_on_failure. With quorum up the sorry server is absent, or present with weight 0
//   under sorry_server_inhibit. Without a sorry server, quorum only drives the quorum_up/down scripts;
// - a sorry server with the address and port of a real server (keepalived's s_svr_duplicates_rs) is
//   that dest: the sorry role wins while quorum is down;
// - persistence_timeout sets IP_VS_SVC_F_PERSISTENT, the timeout, the granularity netmask and the
//   persistence engine; ops sets ONEPACKET (UDP and fwmark services); sh-/mh- port and fallback set
//   the scheduler flags.
// - a real server an operator drained (API SetMaintenance) is kept with weight 0 wherever its health
//   would put it in the table with a weight (keepalived's graceful drain: established connections
//   continue, no new ones), and counts 0 towards quorum; undrained, its health decides again.
// Not handled here: ha_suspend (needs the VRRP state; see the report in the runtime status).

import type { Config } from "../config/model.ts";
import {
  type LbKind,
  type RealServer,
  realServerKey,
  type VirtualServer,
  type VirtualServerGroupEntry,
  virtualServerKey,
} from "../config/model.ts";
import { familyOf, formatIp, parseIp } from "../wire/ip.ts";
import {
  type FwdMethod,
  IP_VS_SVC_F_ONEPACKET,
  IP_VS_SVC_F_PERSISTENT,
  IP_VS_SVC_F_SCHED_MH_FALLBACK,
  IP_VS_SVC_F_SCHED_MH_PORT,
  IP_VS_SVC_F_SCHED_SH_FALLBACK,
  IP_VS_SVC_F_SCHED_SH_PORT,
  type IpvsProtocol,
  type ServiceKey,
} from "../wire/ipvs.ts";
import type { DesiredDest, DesiredService } from "./reconcile.ts";

/** IPVS weights are a signed 32-bit int (keepalived's real_weight clamps to this). */
export const IPVS_WEIGHT_MAX = 2147483647;
/** An address range of a virtual_server_group larger than this is refused (a typo, not a config). */
export const MAX_RANGE = 65536;

/** What the health checkers say about one real server of one virtual server. */
export interface RsHealth {
  up: boolean;
  /** effective weight from a misc_dynamic checker; absent: the configured weight */
  weight?: number;
}

/** The identity of a real server within a virtual server, as in ConfigDiff.realServers. */
export function rsId(vs: VirtualServer, rs: RealServer): string {
  return rsIdOf(virtualServerKey(vs), realServerKey(vs, rs));
}

/** rsId from the two keys (virtualServerKey, realServerKey). */
export function rsIdOf(vsKey: string, rsKey: string): string {
  return `${vsKey} -> ${rsKey}`;
}

/** The configured weight: the server's own, else the virtual server's `weight` (default 1). */
export function configuredWeight(vs: VirtualServer, rs: RealServer): number {
  return rs.weight ?? vs.weight;
}

/**
 * Health before any check has run: a server without checkers is always up; with checkers it starts up
 * unless one of them has alpha (checker, then real server, then virtual server setting).
 */
export function initialHealth(vs: VirtualServer, rs: RealServer): RsHealth {
  const alpha = rs.checkers.some((c) => c.alpha ?? rs.alpha ?? vs.alpha);
  return { up: !alpha };
}

/**
 * Which quorum notification a computation makes, as keepalived 2.2.7 does (ipwrapper.c
 * update_quorum_state, called with init at start-up and for a virtual server a reload adds): a virtual
 * server starts with quorum down (set_quorum_states runs before any real server is alive), so starting
 * with enough weight is "gained quorum" and runs quorum_up; starting below it runs quorum_down only when
 * a sorry server is configured (it is being put in); later, every transition notifies.
 */
export type QuorumNotify = { up: boolean; starting: boolean };
export function quorumNotification(
  prev: boolean | undefined,
  quorumUp: boolean,
  hasSorryServer: boolean,
): QuorumNotify | undefined {
  if (prev === undefined) {
    if (quorumUp || hasSorryServer) return { up: quorumUp, starting: true };
    return undefined;
  }
  return prev === quorumUp ? undefined : { up: quorumUp, starting: false };
}

/** keepalived's quorum rule with hysteresis; `prev` undefined = starting. */
export function nextQuorumUp(
  prev: boolean | undefined,
  weightSum: number,
  quorum: number,
  hysteresis: number,
): boolean {
  if (prev !== true) return weightSum >= quorum + hysteresis;
  return !(weightSum === 0 || weightSum < quorum - hysteresis);
}

export function fwdMethod(kind: LbKind): FwdMethod {
  return kind === "NAT" ? "masq" : kind === "DR" ? "route" : "tunnel";
}

/**
 * persistence_granularity as a prefix length: an IPv4 netmask ("255.255.255.0") or a prefix length
 * ("24", IPv6's only form). undefined when it is neither (the service keeps the full address).
 */
export function granularityPrefix(g: string, af: 4 | 6): number | undefined {
  if (/^\d+$/.test(g)) {
    const n = Number(g);
    return n <= (af === 4 ? 32 : 128) ? n : undefined;
  }
  if (af !== 4 || familyOf(g) !== 4) return undefined;
  const b = parseIp(g);
  if (!b) return undefined;
  const v = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  let len = 0;
  while (len < 32 && v & (0x80000000 >>> len)) len++;
  // a netmask is contiguous ones: anything after the first zero bit must be zero too
  return (v << len) >>> 0 === 0 || len === 32 ? len : undefined;
}

function toBig(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

function fromBig(v: bigint, len: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** Addresses from `start` to `end` inclusive; an error text when the range is invalid or too large. */
export function expandRange(start: string, end: string | undefined): string[] | string {
  const a = parseIp(start);
  const b = parseIp(end ?? start);
  if (!a || !b || a.length !== b.length) return `bad address range ${start}-${end}`;
  const lo = toBig(a);
  const hi = toBig(b);
  if (hi < lo) return `address range ${start}-${end} ends before it starts`;
  if (hi - lo >= BigInt(MAX_RANGE))
    return `address range ${start}-${end} has more than ${MAX_RANGE} addresses`;
  const out: string[] = [];
  for (let v = lo; v <= hi; v++) out.push(formatIp(fromBig(v, a.length), 0, a.length === 4 ? 4 : 6));
  return out;
}

const protoOf = (p: VirtualServer["protocol"]): IpvsProtocol =>
  p === "UDP" ? "udp" : p === "SCTP" ? "sctp" : "tcp";

/** The family of a fwmark service: ip_family, else the real servers' (keepalived infers it), else v4. */
function fwmarkFamily(vs: VirtualServer, entryFamily?: "inet" | "inet6"): 4 | 6 {
  const f = entryFamily ?? vs.ipFamily;
  if (f) return f === "inet6" ? 6 : 4;
  const first = vs.realServers[0]?.address ?? vs.sorryServer?.address;
  return first ? (familyOf(first) ?? 4) : 4;
}

/** One expanded service of a virtual server: its key and the port real servers inherit. */
interface ServiceSlot {
  key: ServiceKey;
  port: number;
}

function serviceSlots(cfg: Config, vs: VirtualServer, errors: string[]): ServiceSlot[] {
  if (vs.fwmark !== undefined) return [{ key: { af: fwmarkFamily(vs), fwmark: vs.fwmark }, port: 0 }];
  if (vs.address !== undefined) {
    const af = familyOf(vs.address) ?? 4;
    const port = vs.port ?? 0;
    return [{ key: { af, protocol: protoOf(vs.protocol), addr: vs.address, port }, port }];
  }
  const group = cfg.virtualServerGroups.find((g) => g.name === vs.group);
  if (!group) {
    errors.push(`virtual_server_group ${vs.group} is not defined`);
    return [];
  }
  const out: ServiceSlot[] = [];
  const entry = (e: VirtualServerGroupEntry) => {
    if (e.fwmark !== undefined) {
      out.push({ key: { af: fwmarkFamily(vs, e.family), fwmark: e.fwmark }, port: 0 });
      return;
    }
    if (e.address === undefined) return;
    const addrs = expandRange(e.address, e.addressEnd);
    if (typeof addrs === "string") {
      errors.push(`group ${group.name}: ${addrs}`);
      return;
    }
    const port = e.port ?? 0;
    for (const addr of addrs)
      out.push({ key: { af: familyOf(addr) ?? 4, protocol: protoOf(vs.protocol), addr, port }, port });
  };
  for (const e of group.entries) entry(e);
  return out;
}

function serviceFlags(vs: VirtualServer, key: ServiceKey): number {
  let f = 0;
  if (vs.persistenceTimeout) f |= IP_VS_SVC_F_PERSISTENT;
  // one-packet scheduling only means something for datagrams; keepalived accepts it for UDP only
  if (vs.ops && ("fwmark" in key || key.protocol === "udp")) f |= IP_VS_SVC_F_ONEPACKET;
  if (vs.shPort) f |= IP_VS_SVC_F_SCHED_SH_PORT;
  if (vs.shFallback) f |= IP_VS_SVC_F_SCHED_SH_FALLBACK;
  if (vs.mhPort) f |= IP_VS_SVC_F_SCHED_MH_PORT;
  if (vs.mhFallback) f |= IP_VS_SVC_F_SCHED_MH_FALLBACK;
  return f;
}

/** Where one real server stands after this computation. */
export interface RsPlan {
  id: string;
  /** ADDR:PORT as in realServerKey */
  key: string;
  /** the dest address and port in the virtual server's first service (a group's may differ per entry) */
  addr: string;
  port: number;
  up: boolean;
  /** effective weight (dynamic or configured), whatever the table holds */
  weight: number;
  /** drained by an operator: weight 0 in the table (absent: not drained) */
  drained?: true;
  /** present in the desired table, and with which weight */
  inTable: boolean;
  tableWeight?: number;
  inhibit: boolean;
}

export interface VsPlan {
  key: string;
  /** serviceKeyString-able keys of the expanded services */
  services: ServiceKey[];
  quorum: number;
  hysteresis: number;
  weightSum: number;
  quorumUp: boolean;
  /** quorum changed in this computation (false on the first one of a virtual server) */
  quorumChanged: boolean;
  /** which quorum script this computation runs, if any (quorumNotification) */
  quorumNotify?: QuorumNotify;
  /** the sorry server is serving instead of the real servers */
  sorryActive: boolean;
  realServers: RsPlan[];
  errors: string[];
}

export interface DesiredTable {
  services: DesiredService[];
  virtualServers: VsPlan[];
}

/** Health of a real server by rsId; undefined = no check has reported yet (initialHealth applies). */
export type HealthOf = (id: string) => RsHealth | undefined;

const clampWeight = (w: number) => Math.max(0, Math.min(IPVS_WEIGHT_MAX, Math.trunc(w)));

/**
 * The desired table. `prevQuorum` holds each virtual server's quorum state from the previous call
 * (by virtualServerKey); pass the returned plans' states back next time, so hysteresis works.
 * `drained` holds the rsIds an operator drained.
 */
export function computeDesired(
  cfg: Config,
  health: HealthOf,
  prevQuorum: ReadonlyMap<string, boolean> = new Map(),
  drained: ReadonlySet<string> = new Set(),
): DesiredTable {
  const services: DesiredService[] = [];
  const plans: VsPlan[] = [];
  for (const vs of cfg.virtualServers) {
    const p = planVirtualServer(cfg, vs, health, prevQuorum.get(virtualServerKey(vs)), drained);
    for (const svc of p.services) services.push(svc);
    plans.push(p.plan);
  }
  return { services, virtualServers: plans };
}

/** One virtual server's part of the desired table: its plan and its expanded services. */
export interface VsPart {
  plan: VsPlan;
  services: DesiredService[];
}

/**
 * One virtual server's part of computeDesired. It depends only on this virtual server's real servers,
 * so a health change needs only its own virtual server recomputed (agent/lvs/runtime.ts does that).
 * `prev` is the virtual server's quorum state from the previous computation.
 */
export function planVirtualServer(
  cfg: Config,
  vs: VirtualServer,
  health: HealthOf,
  prev: boolean | undefined,
  drained: ReadonlySet<string>,
): VsPart {
  const services: DesiredService[] = [];
  const key = virtualServerKey(vs);
  const errors: string[] = [];
  const slots = serviceSlots(cfg, vs, errors);

  const rsStates = vs.realServers.map((rs) => {
    const id = rsId(vs, rs);
    const h = health(id) ?? initialHealth(vs, rs);
    return {
      rs,
      id,
      up: h.up,
      weight: clampWeight(h.weight ?? configuredWeight(vs, rs)),
      inhibit: rs.inhibitOnFailure ?? vs.inhibitOnFailure,
      drained: drained.has(id),
    };
  });
  let weightSum = 0;
  for (const s of rsStates) if (s.up && !s.drained) weightSum += s.weight;
  const quorumUp = nextQuorumUp(prev, weightSum, vs.quorum, vs.hysteresis);
  const sorryActive = vs.sorryServer !== undefined && !quorumUp;

  // dest table of one expanded service, keyed by ADDR:PORT so a sorry server duplicating a real
  // server replaces it instead of adding the same dest twice
  const rsPlans: RsPlan[] = rsStates.map((s) => {
    // with the sorry server serving, alive servers leave the pool like failed ones (inhibit: weight 0)
    const serving = s.up && !sorryActive;
    const inTable = serving || s.inhibit;
    const plan: RsPlan = {
      id: s.id,
      key: realServerKey(vs, s.rs),
      addr: s.rs.address,
      port: s.rs.port || vs.port || (slots[0]?.port ?? 0),
      up: s.up,
      weight: s.weight,
      inTable,
      inhibit: s.inhibit,
    };
    if (s.drained) plan.drained = true;
    if (inTable) plan.tableWeight = serving && !s.drained ? s.weight : 0;
    return plan;
  });

  for (const slot of slots) {
    const dests = new Map<string, DesiredDest>();
    rsStates.forEach((s, i) => {
      const plan = rsPlans[i]!;
      if (!plan.inTable) return;
      const d: DesiredDest = {
        addr: s.rs.address,
        port: s.rs.port || vs.port || slot.port,
        fwd: fwdMethod(s.rs.lvsMethod ?? vs.lbKind),
        weight: plan.tableWeight ?? 0,
      };
      if (s.rs.uthreshold !== undefined) d.upperThreshold = s.rs.uthreshold;
      if (s.rs.lthreshold !== undefined) d.lowerThreshold = s.rs.lthreshold;
      dests.set(`${d.addr}|${d.port}`, d);
    });
    const ss = vs.sorryServer;
    if (ss && (sorryActive || vs.sorryServerInhibit)) {
      const d: DesiredDest = {
        addr: ss.address,
        port: ss.port || vs.port || slot.port,
        fwd: fwdMethod(vs.sorryServerLvsMethod ?? vs.lbKind),
        weight: sorryActive ? 1 : 0,
      };
      const k = `${d.addr}|${d.port}`;
      // a duplicated real server keeps its own entry while quorum is up
      if (sorryActive || !dests.has(k)) dests.set(k, d);
    }
    const svc: DesiredService = {
      key: slot.key,
      sched: vs.lbAlgo,
      flags: serviceFlags(vs, slot.key),
      dests: [...dests.values()],
    };
    if (vs.persistenceTimeout) {
      svc.timeout = vs.persistenceTimeout;
      if (vs.persistenceGranularity !== undefined) {
        const n = granularityPrefix(vs.persistenceGranularity, slot.key.af);
        if (n === undefined) errors.push(`persistence_granularity ${vs.persistenceGranularity} is invalid`);
        else svc.netmask = n;
      }
      if (vs.persistenceEngine) svc.peName = vs.persistenceEngine;
    }
    services.push(svc);
  }
  const plan: VsPlan = {
    key,
    services: slots.map((s) => s.key),
    quorum: vs.quorum,
    hysteresis: vs.hysteresis,
    weightSum,
    quorumUp,
    quorumChanged: prev !== undefined && prev !== quorumUp,
    sorryActive,
    realServers: rsPlans,
    errors,
  };
  const notify = quorumNotification(prev, quorumUp, vs.sorryServer !== undefined);
  if (notify) plan.quorumNotify = notify;
  return { plan, services };
}

/** The quorum states of a computation, to pass as `prevQuorum` next time. */
export function quorumStates(t: DesiredTable): Map<string, boolean> {
  return new Map(t.virtualServers.map((v) => [v.key, v.quorumUp]));
}
