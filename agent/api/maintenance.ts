// The operator's maintenance wishes (API SetMaintenance): VRRP instances forced to BACKUP and real
// servers drained. The watchdog keeps them, persists them in STATE_DIR/maintenance.json (atomically,
// with config/store.ts's writeFileAtomic) before answering, reloads them at start and sends each
// child its whole set (`maintenance` to the vrrp child, `drain` to the check child) whenever it
// changes or the child (re)connects. A target that leaves the config leaves the set with it, so a
// server removed and later re-added does not come back drained by surprise.
//
// Real servers are named by the keys GetState, the diff and the events use (config/model.ts):
// virtual server `ADDR:PORT/PROTO` (IPv6 in brackets), `fwmark N` or `group NAME`; real server
// `ADDR:PORT`. resolveRealServer also takes the forms people type: any spelling of the address, the
// protocol in any case or left out when only one virtual server has that address and port, and a
// real server's bare address when only one of its real servers has it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { type Config, realServerKey, type VirtualServer, virtualServerKey } from "../config/model.ts";
import { writeFileAtomic } from "../config/store.ts";
import { rsIdOf } from "../lvs/desired.ts";
import type { Logger } from "../observe/log.ts";
import { RealServerRef } from "../supervisor/messages.ts";
import { canonicalIp } from "../wire/ip.ts";

export const MAINTENANCE_FILE = "maintenance.json";

const Persisted = z.object({
  version: z.literal(1),
  instances: z.array(z.string().min(1)),
  realServers: z.array(RealServerRef),
});

export type Resolved =
  | { ok: true; ref: RealServerRef }
  | { ok: false; kind: "not_found" | "ambiguous"; message: string };

/** An address with a port: `ADDR:PORT`, `[V6]:PORT`; null when it is not one. */
function splitHostPort(s: string): { addr: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const addr = canonicalIp(m[1]!);
  const port = Number(m[2]);
  return addr && port <= 65535 ? { addr, port } : null;
}

function findVirtualServers(cfg: Config, name: string): VirtualServer[] {
  const s = name.trim();
  const fw = /^fwmark\s+(\d+)$/i.exec(s);
  if (fw) return cfg.virtualServers.filter((v) => v.fwmark === Number(fw[1]));
  const grp = /^group\s+(\S+)$/i.exec(s);
  if (grp) return cfg.virtualServers.filter((v) => v.group === grp[1]);
  const slash = s.lastIndexOf("/");
  const proto = slash > 0 && !s.slice(slash + 1).includes(":") ? s.slice(slash + 1).toUpperCase() : null;
  const hp = splitHostPort(proto !== null ? s.slice(0, slash) : s);
  if (!hp) return [];
  return cfg.virtualServers.filter(
    (v) => v.address === hp.addr && (v.port ?? 0) === hp.port && (proto === null || v.protocol === proto),
  );
}

/** The canonical keys of the real server an operator named, or why there is none. */
export function resolveRealServer(cfg: Config, vsName: string, rsName: string): Resolved {
  const vss = findVirtualServers(cfg, vsName);
  if (vss.length === 0) return { ok: false, kind: "not_found", message: `no virtual server '${vsName}'` };
  if (vss.length > 1) {
    return {
      ok: false,
      kind: "ambiguous",
      message: `'${vsName}' names ${vss.length} virtual servers (${vss.map(virtualServerKey).join(", ")}): add the protocol`,
    };
  }
  const vs = vss[0]!;
  const vsKey = virtualServerKey(vs);
  const name = rsName.trim();
  const hp = splitHostPort(name);
  // a bare address, IPv6 with or without brackets
  const bare = hp ? null : canonicalIp(name.replace(/^\[(.*)\]$/, "$1"));
  const matches = vs.realServers.filter((rs) =>
    hp
      ? realServerKey(vs, rs) === realServerKey(vs, { ...rs, address: hp.addr, port: hp.port })
      : bare !== null && rs.address === bare,
  );
  if (matches.length === 0) {
    return { ok: false, kind: "not_found", message: `no real server '${rsName}' in virtual server ${vsKey}` };
  }
  if (matches.length > 1) {
    return {
      ok: false,
      kind: "ambiguous",
      message: `'${rsName}' names ${matches.length} real servers of ${vsKey}: give ADDRESS:PORT`,
    };
  }
  return { ok: true, ref: { virtualServer: vsKey, realServer: realServerKey(vs, matches[0]!) } };
}

export class MaintenanceSet {
  private readonly inst = new Set<string>();
  private readonly drained = new Map<string, RealServerRef>();

  /** `dir` null: in memory only (tests). */
  constructor(private readonly dir: string | null) {}

  /** The persisted set, or an empty one when there is none or it is unreadable (logged). */
  static load(dir: string, log: Logger): MaintenanceSet {
    const m = new MaintenanceSet(dir);
    const path = join(dir, MAINTENANCE_FILE);
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
        log.error({ path, err: String(e) }, "maintenance set unreadable; starting without one");
      }
      return m;
    }
    let r: ReturnType<typeof Persisted.safeParse>;
    try {
      r = Persisted.safeParse(JSON.parse(text));
    } catch (e) {
      log.error({ path, err: String(e) }, "maintenance set unreadable; starting without one");
      return m;
    }
    if (!r.success) {
      log.error(
        { path, err: r.error.issues[0]?.message },
        "maintenance set unreadable; starting without one",
      );
      return m;
    }
    for (const i of r.data.instances) m.inst.add(i);
    for (const ref of r.data.realServers) m.drained.set(rsIdOf(ref.virtualServer, ref.realServer), ref);
    if (m.inst.size > 0 || m.drained.size > 0) {
      log.warn(
        { path, instances: [...m.inst], drained: [...m.drained.keys()] },
        "maintenance restored: instances forced to BACKUP and drained real servers",
      );
    }
    return m;
  }

  get instances(): string[] {
    return [...this.inst].sort();
  }

  get realServers(): RealServerRef[] {
    return [...this.drained.values()];
  }

  hasInstance(name: string): boolean {
    return this.inst.has(name);
  }

  isDrained(vsKey: string, rsKey: string): boolean {
    return this.drained.has(rsIdOf(vsKey, rsKey));
  }

  /** Changes and persists; returns whether anything changed. A failed write changes nothing. */
  setInstance(name: string, active: boolean): boolean {
    if (this.inst.has(name) === active) return false;
    this.mutate(() => (active ? this.inst.add(name) : this.inst.delete(name)));
    return true;
  }

  setRealServer(ref: RealServerRef, active: boolean): boolean {
    const id = rsIdOf(ref.virtualServer, ref.realServer);
    if (this.drained.has(id) === active) return false;
    this.mutate(() => (active ? this.drained.set(id, ref) : this.drained.delete(id)));
    return true;
  }

  /** Drops what the config no longer has; returns what was dropped (persisted when anything was). */
  prune(cfg: Config): { instances: string[]; realServers: RealServerRef[] } {
    const names = new Set(cfg.vrrpInstances.map((i) => i.name));
    const ids = new Set(
      cfg.virtualServers.flatMap((vs) =>
        vs.realServers.map((rs) => rsIdOf(virtualServerKey(vs), realServerKey(vs, rs))),
      ),
    );
    const instances = [...this.inst].filter((i) => !names.has(i));
    const gone = [...this.drained].filter(([id]) => !ids.has(id));
    if (instances.length > 0 || gone.length > 0) {
      this.mutate(() => {
        for (const i of instances) this.inst.delete(i);
        for (const [id] of gone) this.drained.delete(id);
      });
    }
    return { instances, realServers: gone.map(([, ref]) => ref) };
  }

  private mutate(change: () => void): void {
    const inst = new Set(this.inst);
    const drained = new Map(this.drained);
    change();
    if (!this.dir) return;
    try {
      writeFileAtomic(
        join(this.dir, MAINTENANCE_FILE),
        JSON.stringify({ version: 1, instances: this.instances, realServers: this.realServers }),
      );
    } catch (e) {
      // not persisted: not done (the operator is told, and the running state matches the file)
      this.inst.clear();
      for (const i of inst) this.inst.add(i);
      this.drained.clear();
      for (const [k, v] of drained) this.drained.set(k, v);
      throw e;
    }
  }
}
