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
// Checkers, a discriminated union on `type` in the model, are a oneof in the proto whose case is the
// checker keyword (tcp_check <-> TCP_CHECK, ...); the fields of each case are the model's.

import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import type { ConfigDiff } from "../config/diff.ts";
import type {
  Checker,
  Config,
  ConfigError,
  ConfigInput,
  DnsCheck,
  GarpSettings,
  HttpGetCheck,
  HttpUrl,
  MiscCheck,
  NotifyFifo,
  NotifyScripts,
  PingCheck,
  RealServer,
  SorryServer,
  SslGetCheck,
  SyncGroup,
  TcpCheck,
  TrackFile,
  TrackFileDef,
  TrackInterface,
  TrackScript,
  UdpCheck,
  UnicastPeer,
  VirtualIp,
  VirtualServer,
  VirtualServerGroup,
  VirtualServerGroupEntry,
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

function trackFileToProto(t: TrackFile): pb.TrackFile {
  return pb.TrackFile.fromPartial({ name: t.name, weight: t.weight, weightReverse: t.weightReverse });
}

function trackFileDefToProto(f: TrackFileDef): pb.TrackFileDef {
  return pb.TrackFileDef.fromPartial({
    name: f.name,
    file: f.file,
    weight: f.weight,
    weightReverse: f.weightReverse,
    init: f.init
      ? pb.TrackFileInit.fromPartial({ value: f.init.value, overwrite: f.init.overwrite })
      : undefined,
  });
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
    deleted: n.deleted,
    masterRxLowerPri: n.masterRxLowerPri,
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
    trackFile: i.trackFile.map(trackFileToProto),
    dontTrackPrimary: i.dontTrackPrimary,
    garpMasterDelay: i.garpMasterDelay,
    garpMasterRepeat: i.garpMasterRepeat,
    garpMasterRefresh: i.garpMasterRefresh,
    garpMasterRefreshRepeat: i.garpMasterRefreshRepeat,
    garpLowerPrioDelay: i.garpLowerPrioDelay,
    garpLowerPrioRepeat: i.garpLowerPrioRepeat,
    lowerPrioNoAdvert: i.lowerPrioNoAdvert,
    higherPrioSendAdvert: i.higherPrioSendAdvert,
    notifyPriorityChanges: i.notifyPriorityChanges,
    downTimerAdverts: i.downTimerAdverts,
    mcastDstIp: i.mcastDstIp,
    notifyDeleted: i.notifyDeleted,
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
    trackFile: g.trackFile.map(trackFileToProto),
    notifyPriorityChanges: g.notifyPriorityChanges,
  });
}

function groupEntryToProto(e: VirtualServerGroupEntry): pb.VirtualServerGroupEntry {
  return pb.VirtualServerGroupEntry.fromPartial({
    address: e.address,
    addressEnd: e.addressEnd,
    port: e.port,
    fwmark: e.fwmark,
    family: e.family,
  });
}

function groupToProto(g: VirtualServerGroup): pb.VirtualServerGroup {
  return pb.VirtualServerGroup.fromPartial({ name: g.name, entries: g.entries.map(groupEntryToProto) });
}

/** The settings every checker has (model: checkerCommon). */
function commonToProto(c: Checker) {
  return {
    retry: c.retry,
    delayBeforeRetry: c.delayBeforeRetry,
    warmup: c.warmup,
    delayLoop: c.delayLoop,
    alpha: c.alpha,
    logAllFailures: c.logAllFailures,
  };
}

/** Where a connecting checker connects from and to (model: connection). */
function connToProto(c: Exclude<Checker, MiscCheck>) {
  return {
    connectIp: c.connectIp,
    connectPort: c.connectPort,
    bindto: c.bindto,
    bindPort: c.bindPort,
    bindIf: c.bindIf,
    connectTimeout: c.connectTimeout,
    fwmark: c.fwmark,
  };
}

function urlToProto(u: HttpUrl): pb.HttpUrl {
  return pb.HttpUrl.fromPartial({
    path: u.path,
    digest: u.digest,
    statusCode: u.statusCode ? [...u.statusCode] : [],
    virtualhost: u.virtualhost,
  });
}

function httpToProto(c: HttpGetCheck | SslGetCheck) {
  return {
    ...commonToProto(c),
    ...connToProto(c),
    virtualhost: c.virtualhost,
    httpProtocol: c.httpProtocol,
    url: c.url.map(urlToProto),
  };
}

function checkerToProto(c: Checker): pb.Checker {
  switch (c.type) {
    case "TCP_CHECK":
      return pb.Checker.fromPartial({ tcpCheck: { ...commonToProto(c), ...connToProto(c) } });
    case "HTTP_GET":
      return pb.Checker.fromPartial({ httpGet: httpToProto(c) });
    case "SSL_GET":
      return pb.Checker.fromPartial({ sslGet: { ...httpToProto(c), enableSni: c.enableSni } });
    case "DNS_CHECK":
      return pb.Checker.fromPartial({
        dnsCheck: { ...commonToProto(c), ...connToProto(c), dnsType: c.dnsType, name: c.name },
      });
    case "UDP_CHECK":
      return pb.Checker.fromPartial({
        udpCheck: {
          ...commonToProto(c),
          ...connToProto(c),
          payload: c.payload,
          requireReply: c.requireReply,
          replyData: c.replyData,
          minReplyLength: c.minReplyLength,
          maxReplyLength: c.maxReplyLength,
        },
      });
    case "PING_CHECK":
      return pb.Checker.fromPartial({ pingCheck: { ...commonToProto(c), ...connToProto(c) } });
    case "MISC_CHECK":
      return pb.Checker.fromPartial({
        miscCheck: {
          ...commonToProto(c),
          miscPath: c.miscPath,
          miscTimeout: c.miscTimeout,
          miscDynamic: c.miscDynamic,
          user: c.user,
          group: c.group,
        },
      });
  }
}

function realServerToProto(r: RealServer): pb.RealServer {
  return pb.RealServer.fromPartial({
    address: r.address,
    port: r.port,
    weight: r.weight,
    lvsMethod: r.lvsMethod,
    inhibitOnFailure: r.inhibitOnFailure,
    notifyUp: r.notifyUp,
    notifyDown: r.notifyDown,
    uthreshold: r.uthreshold,
    lthreshold: r.lthreshold,
    alpha: r.alpha,
    retry: r.retry,
    delayBeforeRetry: r.delayBeforeRetry,
    warmup: r.warmup,
    connectTimeout: r.connectTimeout,
    delayLoop: r.delayLoop,
    virtualhost: r.virtualhost,
    checkers: r.checkers.map(checkerToProto),
  });
}

function sorryToProto(s: SorryServer): pb.SorryServer {
  return pb.SorryServer.fromPartial({ address: s.address, port: s.port });
}

function virtualServerToProto(v: VirtualServer): pb.VirtualServer {
  return pb.VirtualServer.fromPartial({
    address: v.address,
    port: v.port,
    fwmark: v.fwmark,
    group: v.group,
    ipFamily: v.ipFamily,
    delayLoop: v.delayLoop,
    lbAlgo: v.lbAlgo,
    lbKind: v.lbKind,
    protocol: v.protocol,
    persistenceTimeout: v.persistenceTimeout,
    persistenceGranularity: v.persistenceGranularity,
    persistenceEngine: v.persistenceEngine,
    quorum: v.quorum,
    hysteresis: v.hysteresis,
    quorumUp: v.quorumUp,
    quorumDown: v.quorumDown,
    sorryServer: v.sorryServer ? sorryToProto(v.sorryServer) : undefined,
    sorryServerInhibit: v.sorryServerInhibit,
    sorryServerLvsMethod: v.sorryServerLvsMethod,
    inhibitOnFailure: v.inhibitOnFailure,
    alpha: v.alpha,
    omega: v.omega,
    weight: v.weight,
    retry: v.retry,
    delayBeforeRetry: v.delayBeforeRetry,
    warmup: v.warmup,
    connectTimeout: v.connectTimeout,
    virtualhost: v.virtualhost,
    ops: v.ops,
    shPort: v.shPort,
    shFallback: v.shFallback,
    mhPort: v.mhPort,
    mhFallback: v.mhFallback,
    haSuspend: v.haSuspend,
    realServers: v.realServers.map(realServerToProto),
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
      rsInitNotifies: g.rsInitNotifies,
      vrrpStartupDelay: g.vrrpStartupDelay,
      vrrpLowerPrioNoAdvert: g.vrrpLowerPrioNoAdvert,
      vrrpHigherPrioSendAdvert: g.vrrpHigherPrioSendAdvert,
      notifyFifo: g.notifyFifo ? pb.NotifyFifo.fromPartial(g.notifyFifo) : undefined,
      vrrpNotifyFifo: g.vrrpNotifyFifo ? pb.NotifyFifo.fromPartial(g.vrrpNotifyFifo) : undefined,
      vrrpNotifyPriorityChanges: g.vrrpNotifyPriorityChanges,
      vrrpDownTimerAdverts: g.vrrpDownTimerAdverts,
      vrrpMcastGroup4: g.vrrpMcastGroup4,
      vrrpMcastGroup6: g.vrrpMcastGroup6,
    }),
    vrrpScripts: c.vrrpScripts.map(scriptToProto),
    trackFiles: c.trackFiles.map(trackFileDefToProto),
    vrrpInstances: c.vrrpInstances.map(instanceToProto),
    vrrpSyncGroups: c.vrrpSyncGroups.map(syncGroupToProto),
    virtualServerGroups: c.virtualServerGroups.map(groupToProto),
    virtualServers: c.virtualServers.map(virtualServerToProto),
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

function trackFileFromProto(t: pb.TrackFile): In<TrackFile> {
  return defined({ name: t.name, weight: t.weight, weightReverse: t.weightReverse });
}

function trackFileDefFromProto(f: pb.TrackFileDef): In<TrackFileDef> {
  return defined({
    name: f.name,
    file: f.file,
    weight: f.weight,
    weightReverse: f.weightReverse,
    init: f.init ? defined({ value: f.init.value, overwrite: f.init.overwrite }) : undefined,
  });
}

function fifoFromProto(f: pb.NotifyFifo | undefined): In<NotifyFifo> | undefined {
  if (!f) return undefined;
  return defined({ path: f.path, user: f.user, group: f.group, script: f.script });
}

function peerFromProto(p: pb.UnicastPeer): In<UnicastPeer> {
  return defined({ address: p.address, minTtl: p.minTtl, maxTtl: p.maxTtl });
}

function notifyFromProto(n: pb.NotifyScripts | undefined): In<NotifyScripts> | undefined {
  if (!n) return undefined;
  return defined({
    master: n.master,
    backup: n.backup,
    fault: n.fault,
    stop: n.stop,
    any: n.any,
    deleted: n.deleted,
    masterRxLowerPri: n.masterRxLowerPri,
  });
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
    trackFile: i.trackFile.map(trackFileFromProto),
    dontTrackPrimary: i.dontTrackPrimary,
    garpMasterDelay: i.garpMasterDelay,
    garpMasterRepeat: i.garpMasterRepeat,
    garpMasterRefresh: i.garpMasterRefresh,
    garpMasterRefreshRepeat: i.garpMasterRefreshRepeat,
    garpLowerPrioDelay: i.garpLowerPrioDelay,
    garpLowerPrioRepeat: i.garpLowerPrioRepeat,
    lowerPrioNoAdvert: i.lowerPrioNoAdvert,
    higherPrioSendAdvert: i.higherPrioSendAdvert,
    notifyPriorityChanges: i.notifyPriorityChanges,
    downTimerAdverts: i.downTimerAdverts,
    mcastDstIp: i.mcastDstIp,
    notifyDeleted: i.notifyDeleted,
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
    trackFile: g.trackFile.map(trackFileFromProto),
    notifyPriorityChanges: g.notifyPriorityChanges,
  });
}

function groupEntryFromProto(e: pb.VirtualServerGroupEntry): In<VirtualServerGroupEntry> {
  return defined({
    address: e.address,
    addressEnd: e.addressEnd,
    port: e.port,
    fwmark: e.fwmark,
    family: str<"inet" | "inet6">(e.family),
  });
}

function groupFromProto(g: pb.VirtualServerGroup): In<VirtualServerGroup> {
  return defined({ name: g.name, entries: g.entries.map(groupEntryFromProto) });
}

type CommonIn = Omit<pb.TcpCheck, keyof ReturnType<typeof connToProto>>;
function commonFromProto(c: CommonIn) {
  return {
    retry: c.retry,
    delayBeforeRetry: c.delayBeforeRetry,
    warmup: c.warmup,
    delayLoop: c.delayLoop,
    alpha: c.alpha,
    logAllFailures: c.logAllFailures,
  };
}

function connFromProto(c: pb.TcpCheck) {
  return {
    connectIp: c.connectIp,
    connectPort: c.connectPort,
    bindto: c.bindto,
    bindPort: c.bindPort,
    bindIf: c.bindIf,
    connectTimeout: c.connectTimeout,
    fwmark: c.fwmark,
  };
}

function urlFromProto(u: pb.HttpUrl): In<HttpUrl> {
  return defined({
    path: u.path,
    digest: u.digest,
    // none listed: keepalived's default (200-299), as an omitted status_code
    statusCode: u.statusCode.length > 0 ? [...u.statusCode] : undefined,
    virtualhost: u.virtualhost,
  });
}

function httpFromProto(c: pb.HttpGetCheck) {
  return {
    ...commonFromProto(c),
    ...connFromProto(c),
    virtualhost: c.virtualhost,
    httpProtocol: str<"1.0" | "1.1" | "1.0C">(c.httpProtocol),
    url: c.url.map(urlFromProto),
  };
}

/**
 * The set case of the oneof gives the checker's `type`. None set yields an object without `type`,
 * which the model refuses with the checker's path (the wire cannot carry two cases at once).
 */
function checkerFromProto(c: pb.Checker): In<Checker> | Record<string, never> {
  if (c.tcpCheck) {
    return defined({
      type: "TCP_CHECK",
      ...commonFromProto(c.tcpCheck),
      ...connFromProto(c.tcpCheck),
    }) as In<TcpCheck>;
  }
  if (c.httpGet) return defined({ type: "HTTP_GET", ...httpFromProto(c.httpGet) }) as In<HttpGetCheck>;
  if (c.sslGet) {
    return defined({
      type: "SSL_GET",
      ...httpFromProto(c.sslGet),
      enableSni: c.sslGet.enableSni,
    }) as In<SslGetCheck>;
  }
  if (c.dnsCheck) {
    return defined({
      type: "DNS_CHECK",
      ...commonFromProto(c.dnsCheck),
      ...connFromProto(c.dnsCheck),
      dnsType: str<NonNullable<DnsCheck["dnsType"]>>(c.dnsCheck.dnsType),
      name: c.dnsCheck.name,
    }) as In<DnsCheck>;
  }
  if (c.udpCheck) {
    const u = c.udpCheck;
    return defined({
      type: "UDP_CHECK",
      ...commonFromProto(u),
      ...connFromProto(u),
      payload: u.payload,
      requireReply: u.requireReply,
      replyData: u.replyData,
      minReplyLength: u.minReplyLength,
      maxReplyLength: u.maxReplyLength,
    }) as In<UdpCheck>;
  }
  if (c.pingCheck) {
    return defined({
      type: "PING_CHECK",
      ...commonFromProto(c.pingCheck),
      ...connFromProto(c.pingCheck),
    }) as In<PingCheck>;
  }
  if (c.miscCheck) {
    const m = c.miscCheck;
    return defined({
      type: "MISC_CHECK",
      ...commonFromProto(m),
      miscPath: m.miscPath,
      miscTimeout: m.miscTimeout,
      miscDynamic: m.miscDynamic,
      user: m.user,
      group: m.group,
    }) as In<MiscCheck>;
  }
  return {};
}

type LbKindIn = NonNullable<RealServer["lvsMethod"]>;

function realServerFromProto(r: pb.RealServer): In<RealServer> {
  return defined({
    address: r.address,
    port: r.port,
    weight: r.weight,
    lvsMethod: str<LbKindIn>(r.lvsMethod),
    inhibitOnFailure: r.inhibitOnFailure,
    notifyUp: r.notifyUp,
    notifyDown: r.notifyDown,
    uthreshold: r.uthreshold,
    lthreshold: r.lthreshold,
    alpha: r.alpha,
    retry: r.retry,
    delayBeforeRetry: r.delayBeforeRetry,
    warmup: r.warmup,
    connectTimeout: r.connectTimeout,
    delayLoop: r.delayLoop,
    virtualhost: r.virtualhost,
    checkers: r.checkers.map(checkerFromProto) as In<Checker>[],
  });
}

function virtualServerFromProto(v: pb.VirtualServer): In<VirtualServer> {
  return defined({
    address: v.address,
    port: v.port,
    fwmark: v.fwmark,
    group: v.group,
    ipFamily: str<"inet" | "inet6">(v.ipFamily),
    delayLoop: v.delayLoop,
    lbAlgo: str<VirtualServer["lbAlgo"]>(v.lbAlgo),
    lbKind: str<VirtualServer["lbKind"]>(v.lbKind),
    protocol: str<NonNullable<VirtualServer["protocol"]>>(v.protocol),
    persistenceTimeout: v.persistenceTimeout,
    persistenceGranularity: v.persistenceGranularity,
    persistenceEngine: v.persistenceEngine,
    quorum: v.quorum,
    hysteresis: v.hysteresis,
    quorumUp: v.quorumUp,
    quorumDown: v.quorumDown,
    sorryServer: v.sorryServer
      ? defined({ address: v.sorryServer.address, port: v.sorryServer.port })
      : undefined,
    sorryServerInhibit: v.sorryServerInhibit,
    sorryServerLvsMethod: str<LbKindIn>(v.sorryServerLvsMethod),
    inhibitOnFailure: v.inhibitOnFailure,
    alpha: v.alpha,
    omega: v.omega,
    weight: v.weight,
    retry: v.retry,
    delayBeforeRetry: v.delayBeforeRetry,
    warmup: v.warmup,
    connectTimeout: v.connectTimeout,
    virtualhost: v.virtualhost,
    ops: v.ops,
    shPort: v.shPort,
    shFallback: v.shFallback,
    mhPort: v.mhPort,
    mhFallback: v.mhFallback,
    haSuspend: v.haSuspend,
    realServers: v.realServers.map(realServerFromProto),
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
          rsInitNotifies: g.rsInitNotifies,
          vrrpStartupDelay: g.vrrpStartupDelay,
          vrrpLowerPrioNoAdvert: g.vrrpLowerPrioNoAdvert,
          vrrpHigherPrioSendAdvert: g.vrrpHigherPrioSendAdvert,
          notifyFifo: fifoFromProto(g.notifyFifo),
          vrrpNotifyFifo: fifoFromProto(g.vrrpNotifyFifo),
          vrrpNotifyPriorityChanges: g.vrrpNotifyPriorityChanges,
          vrrpDownTimerAdverts: g.vrrpDownTimerAdverts,
          vrrpMcastGroup4: g.vrrpMcastGroup4,
          vrrpMcastGroup6: g.vrrpMcastGroup6,
        })
      : {},
    vrrpScripts: c.vrrpScripts.map(scriptFromProto),
    trackFiles: c.trackFiles.map(trackFileDefFromProto),
    vrrpInstances: c.vrrpInstances.map(instanceFromProto),
    vrrpSyncGroups: c.vrrpSyncGroups.map(syncGroupFromProto),
    virtualServerGroups: c.virtualServerGroups.map(groupFromProto),
    virtualServers: c.virtualServers.map(virtualServerFromProto),
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
