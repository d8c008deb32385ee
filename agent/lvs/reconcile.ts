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
  for (const [name, d] of byName(want)) {
    const svc = toIpvsService(d);
    const cur = have.get(name);
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
  return ops;
}

/** serviceKeyString of the service an op concerns. */
export function opService(op: IpvsOp): string {
  return serviceKeyString(op.op === "add-service" || op.op === "edit-service" ? op.service.key : op.key);
}
