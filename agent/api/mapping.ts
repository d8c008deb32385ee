// The one mapping between the API's config messages (proto/vigil/v1/agent.proto) and the config
// model (agent/config/model.ts). The proto mirrors the model field by field under the same names, so
// each function below is a plain copy; it is still written out field by field (no reflection), so
// that a field added on one side and not the other is a visible gap, caught by the round-trip and
// coverage tests in test/api/mapping.test.ts.
//
// Direction proto -> model yields model *input* (ConfigInput): unset optional fields stay unset and
// take the model's defaults; every check (ranges, references, interfaces) is the model's, run by the
// same loader as YAML (see apiConfigToInput's caller in controller.ts). Source locations (`loc`,
// `locs`) and `globalDefs.ignored` are file metadata with no meaning over the API and are not carried.
//
// Not mapped yet: the load-balancing sections (virtualServers, virtualServerGroups), whose model is
// being written; structured configs therefore carry VRRP only, while text configs and GetConfig's
// YAML carry everything.

import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import type { ConfigDiff } from "../config/diff.ts";
import type {
  Config,
  ConfigError,
  ConfigInput,
  GarpSettings,
  NotifyScripts,
  SyncGroup,
  TrackInterface,
  TrackScript,
  UnicastPeer,
  VirtualIp,
  VrrpInstance,
  VrrpScript,
} from "../config/model.ts";

type In<T> = T extends unknown[] ? In<T[number]>[] : T extends object ? { [K in keyof T]?: In<T[K]> } : T;

// ---- model -> proto ---------------------------------------------------------------------------

function garpToProto(g: GarpSettings): pb.GarpSettings {
  return pb.GarpSettings.fromPartial({
    masterDelay: g.masterDelay,
    masterRepeat: g.masterRepeat,
    masterRefresh: g.masterRefresh,
    masterRefreshRepeat: g.masterRefreshRepeat,
    interval: g.interval,
    gnaInterval: g.gnaInterval,
    lowerPrioDelay: g.lowerPrioDelay,
    lowerPrioRepeat: g.lowerPrioRepeat,
  });
}

function scriptToProto(s: VrrpScript): pb.VrrpScript {
  return pb.VrrpScript.fromPartial({
    name: s.name,
    script: s.script,
    interval: s.interval,
    timeout: s.timeout,
    weight: s.weight,
    weightReverse: s.weightReverse,
    rise: s.rise,
    fall: s.fall,
    user: s.user,
    group: s.group,
    initFail: s.initFail,
  });
}

function vipToProto(v: VirtualIp): pb.VirtualIp {
  return pb.VirtualIp.fromPartial({
    address: v.address,
    prefixLen: v.prefixLen,
    dev: v.dev,
    label: v.label,
    brd: v.brd,
    scope: v.scope,
    noPrefixRoute: v.noPrefixRoute,
  });
}

function trackIfToProto(t: TrackInterface): pb.TrackInterface {
  return pb.TrackInterface.fromPartial({ name: t.name, weight: t.weight, weightReverse: t.weightReverse });
}

function trackScriptToProto(t: TrackScript): pb.TrackScript {
  return pb.TrackScript.fromPartial({ name: t.name, weight: t.weight, weightReverse: t.weightReverse });
}

function peerToProto(p: UnicastPeer): pb.UnicastPeer {
  return pb.UnicastPeer.fromPartial({ address: p.address, minTtl: p.minTtl, maxTtl: p.maxTtl });
}

function notifyToProto(n: NotifyScripts): pb.NotifyScripts {
  return pb.NotifyScripts.fromPartial({
    master: n.master,
    backup: n.backup,
    fault: n.fault,
    stop: n.stop,
    any: n.any,
  });
}

function instanceToProto(i: VrrpInstance): pb.VrrpInstance {
  return pb.VrrpInstance.fromPartial({
    name: i.name,
    state: i.state,
    interface: i.interface,
    virtualRouterId: i.virtualRouterId,
    priority: i.priority,
    advertInt: i.advertInt,
    version: i.version,
    family: i.family,
    nopreempt: i.nopreempt,
    preemptDelay: i.preemptDelay,
    authentication: i.authentication
      ? pb.Authentication.fromPartial({ type: i.authentication.type, pass: i.authentication.pass })
      : undefined,
    virtualIpaddress: i.virtualIpaddress.map(vipToProto),
    virtualIpaddressExcluded: i.virtualIpaddressExcluded.map(vipToProto),
    unicastSrcIp: i.unicastSrcIp,
    unicastPeer: i.unicastPeer.map(peerToProto),
    trackInterface: i.trackInterface.map(trackIfToProto),
    trackScript: i.trackScript.map(trackScriptToProto),
    dontTrackPrimary: i.dontTrackPrimary,
    garpMasterDelay: i.garpMasterDelay,
    garpMasterRepeat: i.garpMasterRepeat,
    garpMasterRefresh: i.garpMasterRefresh,
    garpMasterRefreshRepeat: i.garpMasterRefreshRepeat,
    garpLowerPrioDelay: i.garpLowerPrioDelay,
    garpLowerPrioRepeat: i.garpLowerPrioRepeat,
    notify: notifyToProto(i.notify),
  });
}

function syncGroupToProto(g: SyncGroup): pb.SyncGroup {
  return pb.SyncGroup.fromPartial({
    name: g.name,
    group: [...g.group],
    notify: notifyToProto(g.notify),
    trackInterface: g.trackInterface.map(trackIfToProto),
    trackScript: g.trackScript.map(trackScriptToProto),
  });
}

export function configToProto(c: Config): pb.Config {
  const g = c.globalDefs;
  return pb.Config.fromPartial({
    globalDefs: pb.GlobalDefs.fromPartial({
      routerId: g.routerId,
      vrrpVersion: g.vrrpVersion,
      garp: garpToProto(g.garp),
      scriptUser: g.scriptUser,
      scriptGroup: g.scriptGroup,
      enableScriptSecurity: g.enableScriptSecurity,
      vrrpStrict: g.vrrpStrict,
      v3ChecksumAsV2: g.v3ChecksumAsV2,
      checkUnicastSrc: g.checkUnicastSrc,
      dynamicInterfaces: g.dynamicInterfaces,
    }),
    vrrpScripts: c.vrrpScripts.map(scriptToProto),
    vrrpInstances: c.vrrpInstances.map(instanceToProto),
    vrrpSyncGroups: c.vrrpSyncGroups.map(syncGroupToProto),
  });
}

// ---- proto -> model input ---------------------------------------------------------------------

/** Copies only the keys whose value is set, so that unset fields fall to the model's defaults. */
function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], undefined> };
}

/**
 * A proto enum-like string ("MASTER") is passed through as is; the model's enums reject anything
 * else with a located error. The cast only widens the type for the model's input.
 */
function str<T extends string>(s: string | undefined): T | undefined {
  return s as T | undefined;
}

function garpFromProto(g: pb.GarpSettings | undefined): In<GarpSettings> | undefined {
  if (!g) return undefined;
  return defined({
    masterDelay: g.masterDelay,
    masterRepeat: g.masterRepeat,
    masterRefresh: g.masterRefresh,
    masterRefreshRepeat: g.masterRefreshRepeat,
    interval: g.interval,
    gnaInterval: g.gnaInterval,
    lowerPrioDelay: g.lowerPrioDelay,
    lowerPrioRepeat: g.lowerPrioRepeat,
  });
}

function scriptFromProto(s: pb.VrrpScript): In<VrrpScript> {
  return defined({
    name: s.name,
    script: s.script,
    interval: s.interval,
    timeout: s.timeout,
    weight: s.weight,
    weightReverse: s.weightReverse,
    rise: s.rise,
    fall: s.fall,
    user: s.user,
    group: s.group,
    initFail: s.initFail,
  });
}

function vipFromProto(v: pb.VirtualIp): In<VirtualIp> {
  return defined({
    address: v.address,
    prefixLen: v.prefixLen,
    dev: v.dev,
    label: v.label,
    brd: v.brd,
    scope: str<NonNullable<VirtualIp["scope"]>>(v.scope),
    noPrefixRoute: v.noPrefixRoute,
  });
}

function trackIfFromProto(t: pb.TrackInterface): In<TrackInterface> {
  return defined({ name: t.name, weight: t.weight, weightReverse: t.weightReverse });
}

function trackScriptFromProto(t: pb.TrackScript): In<TrackScript> {
  return defined({ name: t.name, weight: t.weight, weightReverse: t.weightReverse });
}

function peerFromProto(p: pb.UnicastPeer): In<UnicastPeer> {
  return defined({ address: p.address, minTtl: p.minTtl, maxTtl: p.maxTtl });
}

function notifyFromProto(n: pb.NotifyScripts | undefined): In<NotifyScripts> | undefined {
  if (!n) return undefined;
  return defined({ master: n.master, backup: n.backup, fault: n.fault, stop: n.stop, any: n.any });
}

function instanceFromProto(i: pb.VrrpInstance): In<VrrpInstance> {
  return defined({
    name: i.name,
    state: str<NonNullable<VrrpInstance["state"]>>(i.state),
    interface: i.interface,
    virtualRouterId: i.virtualRouterId,
    priority: i.priority,
    advertInt: i.advertInt,
    version: i.version as 2 | 3 | undefined,
    family: i.family as 4 | 6 | undefined,
    nopreempt: i.nopreempt,
    preemptDelay: i.preemptDelay,
    authentication: i.authentication
      ? defined({
          type: str<"PASS" | "AH">(i.authentication.type),
          pass: i.authentication.pass,
        })
      : undefined,
    virtualIpaddress: i.virtualIpaddress.map(vipFromProto),
    virtualIpaddressExcluded: i.virtualIpaddressExcluded.map(vipFromProto),
    unicastSrcIp: i.unicastSrcIp,
    unicastPeer: i.unicastPeer.map(peerFromProto),
    trackInterface: i.trackInterface.map(trackIfFromProto),
    trackScript: i.trackScript.map(trackScriptFromProto),
    dontTrackPrimary: i.dontTrackPrimary,
    garpMasterDelay: i.garpMasterDelay,
    garpMasterRepeat: i.garpMasterRepeat,
    garpMasterRefresh: i.garpMasterRefresh,
    garpMasterRefreshRepeat: i.garpMasterRefreshRepeat,
    garpLowerPrioDelay: i.garpLowerPrioDelay,
    garpLowerPrioRepeat: i.garpLowerPrioRepeat,
    notify: notifyFromProto(i.notify),
  });
}

function syncGroupFromProto(g: pb.SyncGroup): In<SyncGroup> {
  return defined({
    name: g.name,
    group: [...g.group],
    notify: notifyFromProto(g.notify),
    trackInterface: g.trackInterface.map(trackIfFromProto),
    trackScript: g.trackScript.map(trackScriptFromProto),
  });
}

/** The model input for a structured config; validate it with the model (controller.ts). */
export function configFromProto(c: pb.Config): ConfigInput {
  const g = c.globalDefs;
  const input = {
    globalDefs: g
      ? defined({
          routerId: g.routerId,
          vrrpVersion: g.vrrpVersion as 2 | 3 | undefined,
          garp: garpFromProto(g.garp),
          scriptUser: g.scriptUser,
          scriptGroup: g.scriptGroup,
          enableScriptSecurity: g.enableScriptSecurity,
          vrrpStrict: g.vrrpStrict,
          v3ChecksumAsV2: g.v3ChecksumAsV2,
          checkUnicastSrc: g.checkUnicastSrc,
          dynamicInterfaces: g.dynamicInterfaces,
        })
      : {},
    vrrpScripts: c.vrrpScripts.map(scriptFromProto),
    vrrpInstances: c.vrrpInstances.map(instanceFromProto),
    vrrpSyncGroups: c.vrrpSyncGroups.map(syncGroupFromProto),
  };
  // In<> is structurally the model input minus defaults' strictness; the model validates it anyway
  return input as ConfigInput;
}

// ---- diffs and issues -------------------------------------------------------------------------

function names(d: { added: string[]; changed: string[]; removed: string[] }): pb.NameDiff {
  return pb.NameDiff.fromPartial({ added: [...d.added], changed: [...d.changed], removed: [...d.removed] });
}

/** The diff summary: instances, virtual servers and real servers, as config/diff.ts reports them. */
export function diffToProto(d: ConfigDiff): pb.ConfigDiff {
  return pb.ConfigDiff.fromPartial({
    instances: names(d),
    virtualServers: names(d.virtualServers),
    realServers: names(d.realServers),
  });
}

export function issueToProto(e: ConfigError): pb.ConfigIssue {
  return pb.ConfigIssue.fromPartial({ file: e.file, line: Math.max(0, e.line), message: e.message });
}
