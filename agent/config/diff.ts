// What changed between two configs, per VRRP instance, virtual server and real server. An instance counts as changed when anything
// that affects its behaviour changed: its own block, the global settings it inherits, the scripts it
// tracks, or its sync group. Source locations never count: moving a block in the file is no change.
import {
  type Config,
  type RealServer,
  realServerKey,
  type VirtualServer,
  type VrrpInstance,
  type VrrpScript,
  virtualServerKey,
} from "./model.ts";

/** Names added, changed, removed and kept between two configs. */
export interface NameDiff {
  added: string[];
  changed: string[];
  removed: string[];
  kept: string[];
}

/**
 * VRRP instances at the top level (by name); load balancing in `virtualServers` (by
 * virtualServerKey: `ADDR:PORT/PROTO`, `fwmark N`, `group NAME`) and `realServers` (by
 * `VSKEY -> ADDR:PORT`, so a real server of a removed virtual server counts as removed).
 */
export interface ConfigDiff extends NameDiff {
  virtualServers: NameDiff;
  realServers: NameDiff;
}

/** JSON with sorted keys and without source locations, so equal configs give equal strings. */
export function stableJson(v: unknown): string {
  // written out rather than a JSON.stringify replacer: a reload fingerprints every real server, and
  // the replacer's per-object Object.fromEntries copy was a fifth of a 10,000-server adoption
  return stable(v) ?? "null";
}

/** JSON.stringify's output with object keys sorted, `loc`/`locs` left out; undefined as it omits. */
function stable(v: unknown): string | undefined {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => stable(x) ?? "null").join(",")}]`;
  if (v instanceof Uint8Array || typeof (v as { toJSON?: unknown }).toJSON === "function")
    return JSON.stringify(v);
  const o = v as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(o).sort()) {
    // source positions (`loc`, and the per-field `locs` map) are not behaviour
    if (k === "loc" || k === "locs") continue;
    const x = stable(o[k]);
    if (x !== undefined) parts.push(`${JSON.stringify(k)}:${x}`);
  }
  return `{${parts.join(",")}}`;
}

export function scriptFingerprint(s: VrrpScript): string {
  return stableJson(s);
}

export function instanceFingerprint(cfg: Config, inst: VrrpInstance): string {
  const { ignored: _ignored, ...globals } = cfg.globalDefs;
  const group = cfg.vrrpSyncGroups.find((g) => g.group.includes(inst.name));
  const scriptNames = new Set([...inst.trackScript, ...(group?.trackScript ?? [])].map((t) => t.name));
  const scripts = cfg.vrrpScripts.filter((s) => scriptNames.has(s.name));
  const fileNames = new Set([...inst.trackFile, ...(group?.trackFile ?? [])].map((t) => t.name));
  const files = cfg.trackFiles.filter((f) => fileNames.has(f.name));
  return stableJson({ inst, globals, group, scripts, files });
}

function diffMaps(before: Map<string, string>, after: Map<string, string>): NameDiff {
  const diff: NameDiff = { added: [], changed: [], removed: [], kept: [] };
  for (const [name, fp] of after) {
    const old = before.get(name);
    if (old === undefined) diff.added.push(name);
    else if (old !== fp) diff.changed.push(name);
    else diff.kept.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) diff.removed.push(name);
  return diff;
}

/**
 * A virtual server's own settings plus what it inherits: its group's entries. Its real servers
 * are compared one by one (realServerFingerprint), so a changed checker is a changed real server,
 * not a changed service.
 */
export function virtualServerFingerprint(cfg: Config, vs: VirtualServer): string {
  const { realServers: _rs, ...own } = vs;
  const group = vs.group === undefined ? undefined : cfg.virtualServerGroups.find((g) => g.name === vs.group);
  return stableJson({ own, group: group?.entries });
}

/** A real server with the virtual server defaults it inherits (those it does not set itself). */
export function realServerFingerprint(vs: VirtualServer, rs: RealServer): string {
  const own = (v: unknown, inherited: unknown) => (v === undefined ? inherited : undefined);
  const inherited = {
    weight: own(rs.weight, vs.weight),
    lbKind: own(rs.lvsMethod, vs.lbKind),
    inhibitOnFailure: own(rs.inhibitOnFailure, vs.inhibitOnFailure),
    alpha: own(rs.alpha, vs.alpha),
    retry: own(rs.retry, vs.retry),
    delayBeforeRetry: own(rs.delayBeforeRetry, vs.delayBeforeRetry),
    warmup: own(rs.warmup, vs.warmup),
    connectTimeout: own(rs.connectTimeout, vs.connectTimeout),
    delayLoop: own(rs.delayLoop, vs.delayLoop),
    virtualhost: own(rs.virtualhost, vs.virtualhost),
    port: own(rs.port || undefined, vs.port),
  };
  return stableJson({ rs, inherited });
}

function lvsMaps(cfg: Config): { vs: Map<string, string>; rs: Map<string, string> } {
  const vsMap = new Map<string, string>();
  const rsMap = new Map<string, string>();
  for (const vs of cfg.virtualServers) {
    const key = virtualServerKey(vs);
    vsMap.set(key, virtualServerFingerprint(cfg, vs));
    for (const rs of vs.realServers)
      rsMap.set(`${key} -> ${realServerKey(vs, rs)}`, realServerFingerprint(vs, rs));
  }
  return { vs: vsMap, rs: rsMap };
}

export function diffInstances(prev: Config, next: Config): ConfigDiff {
  const before = new Map(prev.vrrpInstances.map((i) => [i.name, instanceFingerprint(prev, i)]));
  const after = new Map(next.vrrpInstances.map((i) => [i.name, instanceFingerprint(next, i)]));
  const a = lvsMaps(prev);
  const b = lvsMaps(next);
  return {
    ...diffMaps(before, after),
    virtualServers: diffMaps(a.vs, b.vs),
    realServers: diffMaps(a.rs, b.rs),
  };
}
