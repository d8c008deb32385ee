// IPVS kernel client over generic netlink. Sits on a NetlinkTransport so unit tests drive it with a
// fake kernel; the real one is a NetlinkSocket({protocol: "generic"}) (see openIpvs).
// Every kernel refusal becomes an IpvsError that names the operation and the service/dest it concerns,
// so one bad service (say, a scheduler whose module is missing) is reported as that service's problem.
import { NetlinkSocket, type NetlinkTransport } from "../../ffi/netlink-socket.ts";
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
  type IpvsService,
  type ServiceKey,
  serviceKeyString,
} from "../wire/ipvs.ts";
import { NetlinkError } from "../wire/netlink.ts";
import type { Result } from "../wire/result.ts";
import { type IpvsOp, type KernelService, opService } from "./reconcile.ts";

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
    private readonly nl: NetlinkTransport,
    /** the dynamic generic netlink family id of "IPVS" */
    readonly family: number,
  ) {}

  /**
   * Resolves the "IPVS" family on a generic netlink transport. Throws IpvsError kind "unavailable"
   * when the kernel does not know it (no ip_vs module / CONFIG_IP_VS unset).
   */
  static open(nl: NetlinkTransport): IpvsClient {
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

  /** Removes every service, owned or not. Only for tests and benchmarks; reconcile never flushes. */
  flush(): void {
    this.call(buildFlush(this.family), "flush");
  }
}

/** IpvsClient on a fresh generic netlink socket; close the returned socket when done. */
export function openIpvs(): { client: IpvsClient; socket: NetlinkSocket } {
  const socket = new NetlinkSocket({ protocol: "generic" });
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
  /** one per failed op; ops of a service whose add failed are skipped, not reported again */
  errors: IpvsError[];
  skipped: number;
}

/**
 * Applies reconcile() ops in order. A failure concerns its own service only: the other services are
 * still programmed, and the rest of a service whose add-service failed is skipped (its dests would
 * only fail with ESRCH). The next reconcile retries whatever is still missing.
 */
export function applyOps(client: IpvsClient, ops: readonly IpvsOp[]): ApplyResult {
  const failedServices = new Set<string>();
  const res: ApplyResult = { applied: 0, errors: [], skipped: 0 };
  for (const op of ops) {
    if (failedServices.size > 0 && failedServices.has(opService(op))) {
      res.skipped++;
      continue;
    }
    try {
      switch (op.op) {
        case "add-service":
          client.addService(op.service);
          break;
        case "edit-service":
          client.editService(op.service);
          break;
        case "del-service":
          client.delService(op.key);
          break;
        case "add-dest":
          client.addDest(op.key, op.dest);
          break;
        case "edit-dest":
          client.editDest(op.key, op.dest);
          break;
        case "del-dest":
          client.delDest(op.key, op.dest);
          break;
      }
      res.applied++;
    } catch (e) {
      if (!(e instanceof IpvsError)) throw e;
      res.errors.push(e);
      if (op.op === "add-service") failedServices.add(opService(op));
    }
  }
  return res;
}
