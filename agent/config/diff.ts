// What changed between two configs, per VRRP instance. An instance counts as changed when anything
// that affects its behaviour changed: its own block, the global settings it inherits, the scripts it
// tracks, or its sync group. Source locations never count: moving a block in the file is no change.
import type { Config, VrrpInstance, VrrpScript } from "./model.ts";

export interface ConfigDiff {
  added: string[];
  changed: string[];
  removed: string[];
  kept: string[];
}

/** JSON with sorted keys and without `loc`, so equal configs give equal strings. */
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (key, value: unknown) => {
    if (key === "loc") return undefined;
    if (value && typeof value === "object" && !Array.isArray(value) && !(value instanceof Uint8Array)) {
      const o = value as Record<string, unknown>;
      return Object.fromEntries(
        Object.keys(o)
          .sort()
          .map((k) => [k, o[k]]),
      );
    }
    return value;
  });
}

export function scriptFingerprint(s: VrrpScript): string {
  return stableJson(s);
}

export function instanceFingerprint(cfg: Config, inst: VrrpInstance): string {
  const { ignored: _ignored, ...globals } = cfg.globalDefs;
  const group = cfg.vrrpSyncGroups.find((g) => g.group.includes(inst.name));
  const scriptNames = new Set([...inst.trackScript, ...(group?.trackScript ?? [])].map((t) => t.name));
  const scripts = cfg.vrrpScripts.filter((s) => scriptNames.has(s.name));
  return stableJson({ inst, globals, group, scripts });
}

export function diffInstances(prev: Config, next: Config): ConfigDiff {
  const before = new Map(prev.vrrpInstances.map((i) => [i.name, instanceFingerprint(prev, i)]));
  const after = new Map(next.vrrpInstances.map((i) => [i.name, instanceFingerprint(next, i)]));
  const diff: ConfigDiff = { added: [], changed: [], removed: [], kept: [] };
  for (const [name, fp] of after) {
    const old = before.get(name);
    if (old === undefined) diff.added.push(name);
    else if (old !== fp) diff.changed.push(name);
    else diff.kept.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) diff.removed.push(name);
  return diff;
}
