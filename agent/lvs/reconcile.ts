// Desired IPVS table vs what the kernel has -> the minimal ordered list of operations. Pure.
//
// Rules (the kernel is the source of truth; vigil never assumes an empty table):
// - owned-only: a kernel service that is neither desired nor in `owned` belongs to someone else
//   (ipvsadm by hand, another daemon) and is never touched, not even its dests;
// - a desired service that already exists is adopted as is and edited only where it differs, so a
//   restart (fresh process, same config) produces no operations and drops no connections: no flush;
// - owned services that are no longer desired are deleted (their dests go with them);
// - idempotent: after applying the ops, reconcile(desired, newKernel, owned) is empty.
// Order: deletions of stale services first (they free their dests), then per desired service in key
// order: add or edit the service, delete its stale dests, edit changed dests, add missing ones (dests
// in the order given).
import {
  addrFamily,
  type DestKey,
  destKeyString,
  type FwdMethod,
  IP_VS_SVC_F_USER_MASK,
  type IpvsDest,
  type IpvsService,
  type ServiceKey,
  serviceKeyString,
  type TunType,
} from "../wire/ipvs.ts";

export interface DesiredDest {
  addr: string;
  port: number;
  fwd: FwdMethod;
  weight: number;
  upperThreshold?: number;
  lowerThreshold?: number;
  /** with fwd "tunnel" (default ipip) */
  tunType?: TunType;
  tunPort?: number;
  tunFlags?: number;
}

export interface DesiredService {
  key: ServiceKey;
  sched: string;
  /** IP_VS_SVC_F_* (HASHED is ignored) */
  flags?: number;
  /** persistence timeout in seconds, 0 = none */
  timeout?: number;
  /** persistence granularity as a prefix length; default the full address (32 / 128) */
  netmask?: number;
  peName?: string;
  dests: readonly DesiredDest[];
}

/** One service of the kernel's table with its dests, as read back (IpvsClient.services() + dests()). */
export interface KernelService {
  service: IpvsService;
  dests: readonly IpvsDest[];
}

export type IpvsOp =
  | { op: "add-service"; service: IpvsService }
  | { op: "edit-service"; service: IpvsService }
  | { op: "del-service"; key: ServiceKey }
  | { op: "add-dest"; key: ServiceKey; dest: IpvsDest }
  | { op: "edit-dest"; key: ServiceKey; dest: IpvsDest }
  | { op: "del-dest"; key: ServiceKey; dest: DestKey };

/** The kernel form of a desired service (defaults filled in, so it compares with a dump). */
export function toIpvsService(d: DesiredService): IpvsService {
  const s: IpvsService = {
    key: d.key,
    sched: d.sched,
    flags: (d.flags ?? 0) & IP_VS_SVC_F_USER_MASK,
    timeout: d.timeout ?? 0,
    netmask: d.netmask ?? (d.key.af === 4 ? 32 : 128),
  };
  if (d.peName) s.peName = d.peName;
  return s;
}

/** The kernel form of a desired dest; its family follows its address. */
export function toIpvsDest(d: DesiredDest, serviceAf: 4 | 6): IpvsDest {
  const out: IpvsDest = {
    af: addrFamily(d.addr) ?? serviceAf,
    addr: d.addr,
    port: d.port,
    fwd: d.fwd,
    weight: d.weight,
    upperThreshold: d.upperThreshold ?? 0,
    lowerThreshold: d.lowerThreshold ?? 0,
  };
  if (d.fwd === "tunnel") {
    out.tunType = d.tunType ?? "ipip";
    out.tunPort = d.tunPort ?? 0;
    out.tunFlags = d.tunFlags ?? 0;
  }
  return out;
}

export function sameService(a: IpvsService, b: IpvsService): boolean {
  return (
    a.sched === b.sched &&
    (a.flags & IP_VS_SVC_F_USER_MASK) === (b.flags & IP_VS_SVC_F_USER_MASK) &&
    a.timeout === b.timeout &&
    a.netmask === b.netmask &&
    (a.peName ?? "") === (b.peName ?? "")
  );
}

export function sameDest(a: IpvsDest, b: IpvsDest): boolean {
  if (a.fwd !== b.fwd || a.weight !== b.weight) return false;
  if (a.upperThreshold !== b.upperThreshold || a.lowerThreshold !== b.lowerThreshold) return false;
  // the kernel reports tunnel fields for every dest; they mean something only for tunnels
  if (a.fwd !== "tunnel") return true;
  return (
    (a.tunType ?? "ipip") === (b.tunType ?? "ipip") &&
    (a.tunPort ?? 0) === (b.tunPort ?? 0) &&
    (a.tunFlags ?? 0) === (b.tunFlags ?? 0)
  );
}

const byName = <T>(xs: Iterable<[string, T]>): [string, T][] =>
  [...xs].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));

/**
 * Operations that turn `current` into desired ∪ (current services not owned). `owned` holds
 * serviceKeyString()s of the services vigil manages (typically: the previous config's desired keys);
 * desired services are owned implicitly. A key repeated in `desired` (or a dest repeated in a service)
 * keeps its last occurrence.
 */
export function reconcile(
  desired: readonly DesiredService[],
  current: readonly KernelService[],
  owned: ReadonlySet<string> = new Set(),
): IpvsOp[] {
  const want = new Map<string, DesiredService>();
  for (const d of desired) want.set(serviceKeyString(d.key), d);
  const have = new Map<string, KernelService>();
  for (const c of current) have.set(serviceKeyString(c.service.key), c);

  const ops: IpvsOp[] = [];
  for (const [name, c] of byName(have)) {
    if (!want.has(name) && owned.has(name)) ops.push({ op: "del-service", key: c.service.key });
  }
  for (const [name, d] of byName(want)) diffService(d, have.get(name), ops);
  return ops;
}

/** The ops that turn one service's kernel state `cur` (undefined: absent) into `d`, appended to `ops`. */
function diffService(d: DesiredService, cur: KernelService | undefined, ops: IpvsOp[]): void {
  const svc = toIpvsService(d);
  if (!cur) ops.push({ op: "add-service", service: svc });
  // keep the kernel's spelling of the key: it is the one the kernel will match
  else if (!sameService(cur.service, svc)) ops.push({ op: "edit-service", service: svc });

  const wantDests = new Map<string, IpvsDest>();
  for (const dd of d.dests) {
    const dest = toIpvsDest(dd, d.key.af);
    wantDests.set(destKeyString(dest), dest);
  }
  const haveDests = new Map<string, IpvsDest>();
  for (const hd of cur?.dests ?? []) haveDests.set(destKeyString(hd), hd);
  // dests keep the order they were given (desired) or dumped (kernel): deterministic without a sort,
  // which is measurable on a 10,000-dest table in the TCG test VM
  for (const [dn, hd] of haveDests) {
    if (!wantDests.has(dn))
      ops.push({ op: "del-dest", key: d.key, dest: { af: hd.af, addr: hd.addr, port: hd.port } });
  }
  for (const [dn, wd] of wantDests) {
    const hd = haveDests.get(dn);
    if (hd && !sameDest(hd, wd)) ops.push({ op: "edit-dest", key: d.key, dest: wd });
  }
  for (const [dn, wd] of wantDests) {
    if (!haveDests.has(dn)) ops.push({ op: "add-dest", key: d.key, dest: wd });
  }
}

// ---------------------------------------------------------------------------------------------------
// incremental reconcile
//
// After a clean apply vigil knows what the kernel holds for its services: exactly what it asked for.
// Re-reading a 1,000-service table to find that out again costs 1,001 dump requests, and diffing it
// whole ~11,000 comparisons; a health change touches one service. So between dumps the runtime keeps
// the desired services it last applied, and diffs only those whose desired state differs.

/** Desired services by serviceKeyString(); a repeated key keeps its last occurrence, as reconcile(). */
export function byServiceName(desired: readonly DesiredService[]): Map<string, DesiredService> {
  const m = new Map<string, DesiredService>();
  for (const d of desired) m.set(serviceKeyString(d.key), d);
  return m;
}

const eqNum = (a: number | undefined, b: number | undefined, dflt: number): boolean =>
  (a ?? dflt) === (b ?? dflt);

/**
 * True when two desired dests program the same kernel dest (same address spelling required: a
 * different spelling of the same address just goes through the full per-service diff).
 */
function sameDesiredDest(a: DesiredDest, b: DesiredDest): boolean {
  if (a.addr !== b.addr || a.port !== b.port || a.fwd !== b.fwd || a.weight !== b.weight) return false;
  if (!eqNum(a.upperThreshold, b.upperThreshold, 0) || !eqNum(a.lowerThreshold, b.lowerThreshold, 0))
    return false;
  if (a.fwd !== "tunnel") return true;
  return (
    (a.tunType ?? "ipip") === (b.tunType ?? "ipip") &&
    eqNum(a.tunPort, b.tunPort, 0) &&
    eqNum(a.tunFlags, b.tunFlags, 0)
  );
}

/**
 * A cheap, conservative test: true only if `b` programs exactly what `a` does (same key assumed),
 * dests compared in order. False may still mean "no ops" (dests reordered); the diff then finds none.
 */
export function sameDesiredService(a: DesiredService, b: DesiredService): boolean {
  if (a === b) return true;
  if (a.sched !== b.sched || (a.peName ?? "") !== (b.peName ?? "")) return false;
  if (((a.flags ?? 0) & IP_VS_SVC_F_USER_MASK) !== ((b.flags ?? 0) & IP_VS_SVC_F_USER_MASK)) return false;
  if (!eqNum(a.timeout, b.timeout, 0)) return false;
  const full = a.key.af === 4 ? 32 : 128;
  if (!eqNum(a.netmask, b.netmask, full)) return false;
  if (a.dests.length !== b.dests.length) return false;
  for (let i = 0; i < a.dests.length; i++) if (!sameDesiredDest(a.dests[i]!, b.dests[i]!)) return false;
  return true;
}

/** The kernel's state of a service after `d` was applied to it cleanly. */
export function appliedForm(d: DesiredService): KernelService {
  return { service: toIpvsService(d), dests: d.dests.map((dd) => toIpvsDest(dd, d.key.af)) };
}

/**
 * reconcile() against `applied` (by name: the desired services vigil last applied cleanly, which is
 * what the kernel holds for them) instead of a kernel dump. Only services whose desired state
 * differs are diffed; a desired service missing from `applied` is taken as absent from the kernel.
 * Same ops as reconcile(desired, kernel, owned) whenever `applied` is true to the kernel for the
 * services it names and the kernel has none of the desired services it lacks (the property tests
 * check it); the runtime re-reads the kernel whenever that may not hold (start, kernel error, resync).
 */
export function reconcileApplied(
  want: ReadonlyMap<string, DesiredService>,
  applied: ReadonlyMap<string, DesiredService>,
  owned: ReadonlySet<string> = new Set(),
): IpvsOp[] {
  const stale: [string, DesiredService][] = [];
  for (const [name, a] of applied) if (!want.has(name) && owned.has(name)) stale.push([name, a]);
  const changed: [string, DesiredService][] = [];
  for (const [name, d] of want) {
    const a = applied.get(name);
    if (!a || !sameDesiredService(a, d)) changed.push([name, d]);
  }
  const ops: IpvsOp[] = [];
  for (const [, a] of byName(stale)) ops.push({ op: "del-service", key: a.key });
  for (const [name, d] of byName(changed)) {
    const a = applied.get(name);
    diffService(d, a && appliedForm(a), ops);
  }
  return ops;
}

/** serviceKeyString of the service an op concerns. */
export function opService(op: IpvsOp): string {
  return serviceKeyString(op.op === "add-service" || op.op === "edit-service" ? op.service.key : op.key);
}
