// IPVS kernel client over generic netlink. Sits on a NetlinkBatchTransport so unit tests drive it with a
// fake kernel; the real one is a NetlinkSocket({protocol: "generic"}) (see openIpvs).
// Every kernel refusal becomes an IpvsError that names the operation and the service/dest it concerns,
// so one bad service (say, a scheduler whose module is missing) is reported as that service's problem.
import {
  type NetlinkBatchTransport,
  NetlinkSocket,
  type NetlinkSocketOptions,
} from "../../ffi/netlink-socket.ts";
import { decodeFamily, encodeGetFamily } from "../wire/genetlink.ts";
import {
  buildDelDest,
  buildDelService,
  buildFlush,
  buildGetDests,
  buildGetInfo,
  buildGetService,
  buildGetServices,
  buildNewDest,
  buildNewService,
  buildSetDest,
  buildSetService,
  type DecodeOptions,
  type DestKey,
  decodeDestMsg,
  decodeInfoMsg,
  decodeServiceMsg,
  destKeyString,
  IPVS_GENL_NAME,
  type IpvsDest,
  type IpvsInfo,
  IpvsRequestWriter,
  type IpvsService,
  type ServiceKey,
  serviceKeyString,
} from "../wire/ipvs.ts";
import { NetlinkError } from "../wire/netlink.ts";
import type { Result } from "../wire/result.ts";
import {
  appliedForm,
  byServiceName,
  type DesiredService,
  type IpvsOp,
  type KernelService,
  opService,
  reconcile,
  reconcileApplied,
} from "./reconcile.ts";

export type IpvsOpName =
  | "resolve-family"
  | "info"
  | "list-services"
  | "get-service"
  | "list-dests"
  | "add-service"
  | "edit-service"
  | "del-service"
  | "add-dest"
  | "edit-dest"
  | "del-dest"
  | "flush";

/**
 * kind: "unavailable" (the kernel has no IPVS: family "IPVS" unknown), "kernel" (the kernel refused:
 * `code` is the errno name), "decode" (a reply we could not parse: a kernel/user-space mismatch).
 */
export type IpvsErrorKind = "unavailable" | "kernel" | "decode";

export class IpvsError extends Error {
  override readonly name = "IpvsError";
  constructor(
    readonly kind: IpvsErrorKind,
    readonly op: IpvsOpName,
    /** errno name for "kernel" ("ENOENT", "EEXIST", ...), the decode reason otherwise */
    readonly code: string,
    /** the service concerned, as serviceKeyString() */
    readonly service?: string,
    /** the dest concerned, as destKeyString() */
    readonly dest?: string,
    detail?: string,
  ) {
    super(
      `ipvs ${op}${service ? ` ${service}` : ""}${dest ? ` -> ${dest}` : ""}: ${code}${detail ? ` (${detail})` : ""}`,
    );
  }
}

function unwrap<T>(r: Result<T>, op: IpvsOpName, service?: string, dest?: string): T {
  if (r.ok) return r.value;
  throw new IpvsError("decode", op, r.error.reason, service, dest, r.error.detail);
}

export class IpvsClient {
  private constructor(
    private readonly nl: NetlinkBatchTransport,
    /** the dynamic generic netlink family id of "IPVS" */
    readonly family: number,
  ) {}

  /**
   * Resolves the "IPVS" family on a generic netlink transport. Throws IpvsError kind "unavailable"
   * when the kernel does not know it (no ip_vs module / CONFIG_IP_VS unset).
   */
  static open(nl: NetlinkBatchTransport): IpvsClient {
    let replies: Uint8Array[];
    try {
      replies = nl.request(encodeGetFamily(IPVS_GENL_NAME));
    } catch (e) {
      if (e instanceof NetlinkError && e.code === "ENOENT")
        throw new IpvsError(
          "unavailable",
          "resolve-family",
          "ENOENT",
          undefined,
          undefined,
          "IPVS unavailable",
        );
      if (e instanceof NetlinkError) throw new IpvsError("kernel", "resolve-family", e.code);
      throw e;
    }
    const first = replies[0];
    if (!first) throw new IpvsError("decode", "resolve-family", "no_reply");
    const fam = unwrap(decodeFamily(first), "resolve-family");
    return new IpvsClient(nl, fam.id);
  }

  /** `key` / `dest` only name the error: formatted on failure, not on every call of a large apply */
  private call(msg: Uint8Array, op: IpvsOpName, key?: ServiceKey, dest?: DestKey): Uint8Array[] {
    try {
      return this.nl.request(msg);
    } catch (e) {
      if (e instanceof NetlinkError)
        throw new IpvsError(
          "kernel",
          op,
          e.code,
          key && serviceKeyString(key),
          dest && destKeyString(dest),
          e.extAck ?? undefined,
        );
      throw e;
    }
  }

  info(): IpvsInfo {
    const r = this.call(buildGetInfo(this.family), "info");
    const first = r[0];
    if (!first) throw new IpvsError("decode", "info", "no_reply");
    return unwrap(decodeInfoMsg(first), "info");
  }

  services(opts?: DecodeOptions): IpvsService[] {
    return this.call(buildGetServices(this.family), "list-services").map((m) =>
      unwrap(decodeServiceMsg(m, opts), "list-services"),
    );
  }

  /** One service, or undefined when the kernel has none with that key. */
  service(key: ServiceKey): IpvsService | undefined {
    const name = serviceKeyString(key);
    try {
      const r = this.call(buildGetService(this.family, key), "get-service", key);
      return r[0] ? unwrap(decodeServiceMsg(r[0]), "get-service", name) : undefined;
    } catch (e) {
      if (e instanceof IpvsError && e.kind === "kernel" && e.code === "ESRCH") return undefined;
      throw e;
    }
  }

  dests(key: ServiceKey, opts?: DecodeOptions): IpvsDest[] {
    return this.call(buildGetDests(this.family, key), "list-dests", key).map((m) =>
      unwrap(decodeDestMsg(m, key.af, opts), "list-dests", serviceKeyString(key)),
    );
  }

  addService(s: IpvsService): void {
    this.call(buildNewService(this.family, s), "add-service", s.key);
  }

  editService(s: IpvsService): void {
    this.call(buildSetService(this.family, s), "edit-service", s.key);
  }

  delService(key: ServiceKey): void {
    this.call(buildDelService(this.family, key), "del-service", key);
  }

  addDest(key: ServiceKey, d: IpvsDest): void {
    this.call(buildNewDest(this.family, key, d), "add-dest", key, d);
  }

  editDest(key: ServiceKey, d: IpvsDest): void {
    this.call(buildSetDest(this.family, key, d), "edit-dest", key, d);
  }

  delDest(key: ServiceKey, d: DestKey): void {
    this.call(buildDelDest(this.family, key, d), "del-dest", key, d);
  }

  /**
   * Carries out reconcile() ops in order, many per netlink datagram (NetlinkBatchTransport.requestBatch),
   * and returns one outcome per op: null when done, otherwise an IpvsError naming the op's service
   * and dest. A refused op never stops the others. Throws only when the exchange itself fails.
   */
  run(ops: readonly IpvsOp[]): (IpvsError | null)[] {
    const msgs = this.encode(ops);
    const outcomes = this.nl.requestBatch(msgs);
    return outcomes.map((o, i) => {
      if (o === null) return null;
      const op = ops[i]!;
      const dest = "dest" in op ? destKeyString(op.dest) : undefined;
      const key = op.op === "add-service" || op.op === "edit-service" ? op.service.key : op.key;
      return new IpvsError("kernel", op.op, o.code, serviceKeyString(key), dest, o.extAck ?? undefined);
    });
  }

  private encode(ops: readonly IpvsOp[]): Uint8Array[] {
    // ~100 bytes a request: one allocation for the typical batch
    const w = new IpvsRequestWriter(this.family, Math.max(4096, ops.length * 128));
    for (const op of ops) {
      switch (op.op) {
        case "add-service":
          w.newService(op.service);
          break;
        case "edit-service":
          w.setService(op.service);
          break;
        case "del-service":
          w.delService(op.key);
          break;
        case "add-dest":
          w.newDest(op.key, op.dest);
          break;
        case "edit-dest":
          w.setDest(op.key, op.dest);
          break;
        case "del-dest":
          w.delDest(op.key, op.dest);
          break;
      }
    }
    return w.messages();
  }

  /** Removes every service, owned or not. Only for tests and benchmarks; reconcile never flushes. */
  flush(): void {
    this.call(buildFlush(this.family), "flush");
  }
}

/**
 * IpvsClient on a fresh generic netlink socket; close the returned socket when done. The receive
 * buffer is raised so that batches of ~1,000 requests fit with their answers (2 MiB once the kernel
 * doubles it; only queued answers use it).
 */
export function openIpvs(opts: Pick<NetlinkSocketOptions, "ackMode" | "batchBytes" | "rcvbuf"> = {}): {
  client: IpvsClient;
  socket: NetlinkSocket;
} {
  const socket = new NetlinkSocket({ protocol: "generic", rcvbuf: 1 << 20, ...opts });
  try {
    return { client: IpvsClient.open(socket), socket };
  } catch (e) {
    socket.close();
    throw e;
  }
}

/**
 * The kernel's whole table (every service with its dests), the `current` input of reconcile().
 * Without traffic counters by default: reconcile ignores them and they are most of the decoding work.
 */
export function readTable(client: IpvsClient, opts: DecodeOptions = { stats: false }): KernelService[] {
  return client.services(opts).map((service) => ({ service, dests: client.dests(service.key, opts) }));
}

export interface ApplyResult {
  applied: number;
  /** one per failed op; ops of a service whose add failed are counted in skipped, not reported again */
  errors: IpvsError[];
  skipped: number;
}

/**
 * Applies reconcile() ops in order, batched (IpvsClient.run). A failure concerns its own service
 * only: the other services are still programmed. The ops that follow a failed add-service for the
 * same service fail with it (no such service) and count as skipped rather than as errors of their own.
 * The next reconcile retries whatever is still missing.
 */
export function applyOps(client: IpvsClient, ops: readonly IpvsOp[]): ApplyResult {
  const res: ApplyResult = { applied: 0, errors: [], skipped: 0 };
  if (ops.length === 0) return res;
  const outcomes = client.run(ops);
  const failedServices = new Set<string>();
  for (let i = 0; i < ops.length; i++) {
    const e = outcomes[i];
    if (!e) {
      res.applied++;
      continue;
    }
    const op = ops[i]!;
    const name = e.service ?? opService(op);
    if (failedServices.size > 0 && failedServices.has(name)) {
      res.skipped++;
      continue;
    }
    res.errors.push(e);
    if (op.op === "add-service") failedServices.add(name);
  }
  return res;
}

export interface SyncResult {
  /** the kernel was read first (adoption, after a kernel error, periodic resync) */
  dumped: boolean;
  /** services the dump found (owned or not), when dumped */
  found?: number;
  ops: IpvsOp[];
  result: ApplyResult;
}

/**
 * Keeps the kernel's IPVS table equal to the desired one, reading the kernel only when needed. After
 * a clean apply it knows what the kernel holds for its services (what it asked for), so the next sync
 * diffs only the services whose desired state changed (reconcileApplied) and sends only their ops: a
 * weight change on a 10,000-dest table is one request, no dump. It reads the whole table again (and
 * runs the full reconcile) first of all (adoption after a restart), after any refusal or failed
 * exchange (the kernel is not what it thought: someone else changed it, or an answer was lost), and
 * when told to (resync(): periodically and on a reload, so that an operator's manual change to a
 * vigil service is still repaired).
 */
export class IpvsTableSync {
  /** the desired services last applied cleanly, by name: what the kernel holds for them */
  private applied = new Map<string, DesiredService>();
  private dumpNeeded = true;
  /** kernel state for status: the dump taken after a failed apply, otherwise derived from `applied` */
  private view: KernelService[] | null = [];

  constructor(readonly client: IpvsClient) {}

  /** The next sync reads the kernel first. */
  resync(): void {
    this.dumpNeeded = true;
  }

  /** True when the next sync will read the kernel. */
  get willDump(): boolean {
    return this.dumpNeeded;
  }

  /**
   * Programs `desired`; services in `owned` but not desired are deleted, services neither desired
   * nor owned are never touched. Throws IpvsError / NetlinkError when an exchange fails (then the
   * next sync reads the kernel again).
   */
  sync(desired: readonly DesiredService[], owned: ReadonlySet<string>): SyncResult {
    const want = byServiceName(desired);
    const dumped = this.dumpNeeded;
    // until this sync completes cleanly, only a dump can say what the kernel holds
    this.dumpNeeded = true;
    let ops: IpvsOp[];
    let found: number | undefined;
    if (dumped) {
      const current = readTable(this.client);
      found = current.length;
      ops = reconcile(desired, current, owned);
    } else ops = reconcileApplied(want, this.applied, owned);
    const result = applyOps(this.client, ops);
    this.applied = want;
    if (result.errors.length === 0) {
      this.dumpNeeded = false;
      this.view = null;
    } else {
      for (const e of result.errors) if (e.service) this.applied.delete(e.service);
      this.view = readTable(this.client);
    }
    const out: SyncResult = { dumped, ops, result };
    if (found !== undefined) out.found = found;
    return out;
  }

  /**
   * The kernel's table as far as vigil's services go (status): after a clean sync, what was applied;
   * after refusals, the dump read right after them.
   */
  kernelView(): KernelService[] {
    if (!this.view) this.view = [...this.applied.values()].map(appliedForm);
    return this.view;
  }
}
