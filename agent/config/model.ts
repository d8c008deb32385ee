// The one config model. keepalived.conf, YAML/JSON and (later) the gRPC ApplyConfig message all
// convert into this shape; nothing else reads raw config. Field names follow keepalived's keywords
// in camelCase so an operator finds them by name. Durations are in seconds, as in keepalived.conf.
import { z } from "zod";
import { canonicalIp, familyOf } from "../wire/ip.ts";

/** Where a definition came from, for error messages ("FILE:LINE: ..."). */
export const SourceLoc = z.object({ file: z.string(), line: z.number().int().nonnegative() });
export type SourceLoc = z.infer<typeof SourceLoc>;

/**
 * Where each setting of an object came from, keyed by the model field name (nested as "a.b", list items
 * as "group.1"; "end" is the closing brace of a keepalived.conf block). Filled by the keepalived.conf
 * and YAML loaders so semantic checks, which run on the model, can name the line of the offending
 * keyword; absent for configs built in code.
 */
export const SourceLocs = z.record(z.string(), SourceLoc);
export type SourceLocs = z.infer<typeof SourceLocs>;

const ipAddress = z.string().refine((s) => familyOf(s) !== null, { message: "not an IP address" });

const scriptCommand = z.string().min(1);

export const GarpSettings = z.object({
  /** seconds after becoming master before the second burst of GARP/NA (vrrp_garp_master_delay) */
  masterDelay: z.number().min(0).max(1000).default(5),
  /** GARP/NA sent per burst (vrrp_garp_master_repeat) */
  masterRepeat: z.number().int().min(1).max(255).default(5),
  /** seconds between periodic refreshes while master; 0 = off (vrrp_garp_master_refresh) */
  masterRefresh: z.number().min(0).default(0),
  /** GARP/NA per refresh (vrrp_garp_master_refresh_repeat) */
  masterRefreshRepeat: z.number().int().min(1).max(255).default(1),
  /** seconds between GARPs of one burst (vrrp_garp_interval) */
  interval: z.number().min(0).max(1).default(0),
  /** seconds between unsolicited NAs of one burst (vrrp_gna_interval) */
  gnaInterval: z.number().min(0).max(1).default(0),
  /** after hearing a lower-priority advert as master: delay and repeat (vrrp_garp_lower_prio_*) */
  lowerPrioDelay: z.number().min(0).max(1000).optional(),
  lowerPrioRepeat: z.number().int().min(0).max(255).optional(),
});
export type GarpSettings = z.infer<typeof GarpSettings>;

export const GlobalDefs = z.object({
  routerId: z.string().optional(),
  vrrpVersion: z.union([z.literal(2), z.literal(3)]).default(2),
  garp: GarpSettings.prefault({}),
  scriptUser: z.string().optional(),
  scriptGroup: z.string().optional(),
  enableScriptSecurity: z.boolean().default(false),
  /** keepalived's vrrp_strict: strict RFC compliance (no unicast, no PASS auth with v3 ...) */
  vrrpStrict: z.boolean().default(false),
  /** send v3 IPv4 checksums without the pseudo-header (keepalived's v3_checksum_as_v2) */
  v3ChecksumAsV2: z.boolean().default(false),
  /** drop adverts whose source is not a configured unicast peer (vrrp_check_unicast_src) */
  checkUnicastSrc: z.boolean().default(false),
  /**
   * keepalived's dynamic_interfaces: interfaces named in the config may appear later, so a missing one
   * is a warning at check time instead of an error (the instance stays in FAULT until it exists).
   */
  dynamicInterfaces: z.boolean().default(false),
  /** keepalived keywords accepted for compatibility but without effect in vigil, for `vigil check` */
  ignored: z.array(z.object({ keyword: z.string(), loc: SourceLoc })).default([]),
  locs: SourceLocs.optional(),
});
export type GlobalDefs = z.infer<typeof GlobalDefs>;

export const VrrpScript = z.object({
  name: z.string().min(1),
  script: scriptCommand,
  /** seconds between runs */
  interval: z.number().positive().default(1),
  /** seconds before a run counts as failed; defaults to interval */
  timeout: z.number().positive().optional(),
  /** priority change while the script is OK (>0) or failing (<0); 0 = failure means FAULT */
  weight: z.number().int().min(-253).max(253).default(0),
  /** weight applies in reverse: subtracted while OK, not when failing (keepalived's `weight N reverse`) */
  weightReverse: z.boolean().default(false),
  rise: z.number().int().min(1).default(1),
  fall: z.number().int().min(1).default(1),
  user: z.string().optional(),
  group: z.string().optional(),
  /** start in the failed state until the first success (init_fail) */
  initFail: z.boolean().default(false),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type VrrpScript = z.infer<typeof VrrpScript>;

export const VirtualIp = z
  .object({
    address: ipAddress.transform((s) => canonicalIp(s) ?? s),
    /** prefix length; defaults to 32 (IPv4) or 128 (IPv6) like keepalived */
    prefixLen: z.number().int().min(0).max(128).optional(),
    /** interface to add it on; defaults to the instance's interface */
    dev: z.string().optional(),
    label: z.string().max(15).optional(),
    brd: z.string().optional(),
    scope: z.enum(["global", "site", "link", "host", "nowhere"]).optional(),
    noPrefixRoute: z.boolean().default(false),
    loc: SourceLoc.optional(),
  })
  .superRefine((v, ctx) => {
    const fam = familyOf(v.address);
    if (v.prefixLen !== undefined && fam === 4 && v.prefixLen > 32) {
      ctx.addIssue({
        code: "custom",
        message: `prefix /${v.prefixLen} too long for IPv4`,
        path: ["prefixLen"],
      });
    }
  });
export type VirtualIp = z.infer<typeof VirtualIp>;

export const TrackInterface = z.object({
  name: z.string().min(1),
  /** 0 = link down puts the instance in FAULT; otherwise priority change while down (negative) or up (positive) */
  weight: z.number().int().min(-253).max(253).default(0),
  weightReverse: z.boolean().default(false),
  loc: SourceLoc.optional(),
});
export type TrackInterface = z.infer<typeof TrackInterface>;

export const TrackScript = z.object({
  name: z.string().min(1),
  /** overrides the script's own weight when set */
  weight: z.number().int().min(-253).max(253).optional(),
  weightReverse: z.boolean().optional(),
  loc: SourceLoc.optional(),
});
export type TrackScript = z.infer<typeof TrackScript>;

export const UnicastPeer = z.object({
  address: ipAddress.transform((s) => canonicalIp(s) ?? s),
  minTtl: z.number().int().min(0).max(255).optional(),
  maxTtl: z.number().int().min(0).max(255).optional(),
  loc: SourceLoc.optional(),
});
export type UnicastPeer = z.infer<typeof UnicastPeer>;

export const NotifyScripts = z.object({
  master: scriptCommand.optional(),
  backup: scriptCommand.optional(),
  fault: scriptCommand.optional(),
  stop: scriptCommand.optional(),
  /** called on every transition with `INSTANCE|GROUP name state priority` (keepalived's `notify`) */
  any: scriptCommand.optional(),
});
export type NotifyScripts = z.infer<typeof NotifyScripts>;

export const VrrpInstance = z.object({
  name: z.string().min(1),
  /**
   * initial state wish; keepalived still starts in BACKUP unless priority is 255, and an owner with an
   * explicit BACKUP waits like any backup (so unset and BACKUP differ)
   */
  state: z.enum(["MASTER", "BACKUP"]).optional(),
  interface: z.string().min(1),
  virtualRouterId: z.number().int().min(1).max(255),
  /** base priority 1..255; 255 = address owner */
  priority: z.number().int().min(1).max(255).default(100),
  /** seconds; v2 whole seconds 1..255, v3 0.01..40.95 */
  advertInt: z.number().positive().max(255).default(1),
  /** protocol version; defaults to global_defs vrrp_version */
  version: z.union([z.literal(2), z.literal(3)]).optional(),
  /** address family of the VIPs (all VIPs of an instance share one family, as in keepalived) */
  family: z.union([z.literal(4), z.literal(6)]).default(4),
  nopreempt: z.boolean().default(false),
  /** seconds a higher-priority backup waits before preempting (0..1000) */
  preemptDelay: z.number().min(0).max(1000).default(0),
  authentication: z.object({ type: z.enum(["PASS", "AH"]), pass: z.string().max(8).default("") }).optional(),
  virtualIpaddress: z.array(VirtualIp).default([]),
  virtualIpaddressExcluded: z.array(VirtualIp).default([]),
  unicastSrcIp: ipAddress.transform((s) => canonicalIp(s) ?? s).optional(),
  unicastPeer: z.array(UnicastPeer).default([]),
  trackInterface: z.array(TrackInterface).default([]),
  trackScript: z.array(TrackScript).default([]),
  /** do not go to FAULT when the instance's own interface goes down */
  dontTrackPrimary: z.boolean().default(false),
  /** per-instance GARP overrides; unset fields inherit global_defs */
  garpMasterDelay: z.number().min(0).max(1000).optional(),
  garpMasterRepeat: z.number().int().min(1).max(255).optional(),
  garpMasterRefresh: z.number().min(0).optional(),
  garpMasterRefreshRepeat: z.number().int().min(1).max(255).optional(),
  /** per-instance garp_lower_prio_delay / garp_lower_prio_repeat; unset fields inherit global_defs */
  garpLowerPrioDelay: z.number().min(0).max(1000).optional(),
  garpLowerPrioRepeat: z.number().int().min(0).max(255).optional(),
  notify: NotifyScripts.prefault({}),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type VrrpInstance = z.infer<typeof VrrpInstance>;

export const SyncGroup = z.object({
  name: z.string().min(1),
  group: z.array(z.string().min(1)).min(1),
  notify: NotifyScripts.prefault({}),
  trackInterface: z.array(TrackInterface).default([]),
  trackScript: z.array(TrackScript).default([]),
  loc: SourceLoc.optional(),
  locs: SourceLocs.optional(),
});
export type SyncGroup = z.infer<typeof SyncGroup>;

export const Config = z.object({
  globalDefs: GlobalDefs.prefault({}),
  vrrpScripts: z.array(VrrpScript).default([]),
  vrrpInstances: z.array(VrrpInstance).default([]),
  vrrpSyncGroups: z.array(SyncGroup).default([]),
});
export type Config = z.infer<typeof Config>;
/** What YAML/JSON authors write: defaults may be omitted. */
export type ConfigInput = z.input<typeof Config>;

/**
 * The version an instance speaks, after inheriting from global_defs. An IPv6 instance without its own
 * `version` speaks v3 whatever vrrp_version says (VRRPv2 has no IPv6), as keepalived does.
 */
export function instanceVersion(cfg: Config, inst: VrrpInstance): 2 | 3 {
  if (inst.version !== undefined) return inst.version;
  return inst.family === 6 ? 3 : cfg.globalDefs.vrrpVersion;
}

/** Effective GARP settings for an instance: per-instance overrides over global_defs. */
export function instanceGarp(cfg: Config, inst: VrrpInstance): GarpSettings {
  const g = cfg.globalDefs.garp;
  return {
    ...g,
    masterDelay: inst.garpMasterDelay ?? g.masterDelay,
    masterRepeat: inst.garpMasterRepeat ?? g.masterRepeat,
    masterRefresh: inst.garpMasterRefresh ?? g.masterRefresh,
    masterRefreshRepeat: inst.garpMasterRefreshRepeat ?? g.masterRefreshRepeat,
    lowerPrioDelay: inst.garpLowerPrioDelay ?? g.lowerPrioDelay,
    lowerPrioRepeat: inst.garpLowerPrioRepeat ?? g.lowerPrioRepeat,
  };
}

/** A config problem with its location, printed as `FILE:LINE: message`. */
export interface ConfigError {
  file: string;
  line: number;
  message: string;
}

export function formatConfigError(e: ConfigError): string {
  return `${e.file}:${e.line}: ${e.message}`;
}
