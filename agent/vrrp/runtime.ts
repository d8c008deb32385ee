// The VRRP shell: moves bytes and runs timers around the pure state machine. It owns sockets,
// VIP add/remove over rtnetlink, GARP/NA schedules, tracking inputs and notify scripts; every
// decision is taken by instance.ts / validate.ts / tracking.ts / sync-group.ts.

import { type ConfigDiff, diffInstances, scriptFingerprint } from "../config/diff.ts";
import {
  type Config,
  instanceAdvertPolicy,
  instanceGarp,
  instanceMcastGroup,
  instanceVersion,
  instanceVips,
  type NotifyFifo,
  trackFileWeights,
  type VrrpInstance,
  vipPrefixLen,
} from "../config/model.ts";
import { type Identity, resolveIdentity, systemAccounts } from "../config/script-user.ts";
import type { Logger } from "../observe/log.ts";
import { LogLimiter } from "../observe/log.ts";
import { encodeGratuitousArp } from "../wire/arp.ts";
import { parseIp } from "../wire/ip.ts";
import { encodeUnsolicitedNa } from "../wire/ndp.ts";
import {
  type ChecksumForm,
  decodeIpv4Header,
  decodeVrrp,
  encodeVrrp,
  VRRP_AUTH_PASS,
  type VrrpPacket,
  vrrpPassword,
} from "../wire/vrrp.ts";
import {
  type Action,
  type InstanceParams,
  type InstanceState,
  initialState,
  nextDeadline,
  step,
  type VrrpEvent,
} from "./instance.ts";
import type { IfaceInfo, VrrpIo, VrrpRx, VrrpTx } from "./io.ts";
import { fifoLine, NotifyFifos } from "./notify-fifo.ts";
import { runScript, type ScriptOutcome, spawnNotify, splitCommand } from "./scripts.ts";
import { groupStateOf, memberView, syncEvents, syncGroupStartParams } from "./sync-group.ts";
import { TrackFiles } from "./track-files.ts";
import { effectivePriority, NOTIFIED_STATES, notifyArgs, notifyScripts, ScriptFilter } from "./tracking.ts";
import { validateAdvert } from "./validate.ts";

export interface InstanceStatus {
  name: string;
  vrid: number;
  family: 4 | 6;
  interface: string;
  state: string;
  basePriority: number;
  effectivePriority: number;
  currentMaster: string | null;
  vipsHeld: string[];
  lastTransition: { at: number; from: string; to: string; reason: string } | null;
  counters: Record<string, number>;
  /** forced to BACKUP by an operator (API SetMaintenance) */
  maintenance: boolean;
}

export type RuntimeEvent =
  | { type: "transition"; instance: string; from: string; to: string; reason: string; priority: number }
  | { type: "drop"; instance: string | null; reason: string };

const monotonic = () => performance.now();

/** Counts adverts and drops per reason, for logs, metrics and the API. */
export class Counters {
  readonly values = new Map<string, number>();
  inc(key: string, n = 1): void {
    this.values.set(key, (this.values.get(key) ?? 0) + n);
  }
  get(key: string): number {
    return this.values.get(key) ?? 0;
  }
  toObject(): Record<string, number> {
    return Object.fromEntries(this.values);
  }
}

class InstanceRunner {
  fsm: InstanceState;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** how often the current Master_Down expiry waited for pending input (see onTimer) */
  private deferrals = 0;
  private announceTimers: ReturnType<typeof setTimeout>[] = [];
  private refreshTimer: ReturnType<typeof setInterval> | null = null;
  readonly counters = new Counters();
  /** VIPs this process added to the kernel; only these are ever removed */
  readonly held = new Set<string>();
  readonly version: 2 | 3;
  readonly family: 4 | 6;
  private readonly dests: string[];
  private readonly checksum: ChecksumForm;
  private readonly authData: Uint8Array;
  private readonly authType: number;
  private readonly advertField: number;
  private readonly vipAddrs: string[];
  /** unicast_peer min_ttl/max_ttl, by peer address */
  private readonly peerTtl: Record<string, { min?: number; max?: number }>;
  /** names of active faults, so that fault events are sent only on change */
  private faults = new Set<string>();
  syncGroup: string | null = null;
  params: InstanceParams;
  /** startup waits until weight-0 tracking scripts have reported once (keepalived num_script_init) */
  started = false;

  constructor(
    readonly rt: VrrpRuntime,
    public cfg: VrrpInstance,
    readonly iface: IfaceInfo,
    readonly tx: VrrpTx,
    /** advert source: unicast_src_ip or the interface's primary address (resolved by the runtime) */
    readonly src: string,
  ) {
    this.version = instanceVersion(rt.config, cfg);
    this.family = cfg.family;
    this.dests =
      cfg.unicastPeer.length > 0
        ? cfg.unicastPeer.map((p) => p.address)
        : [instanceMcastGroup(rt.config, cfg)];
    this.checksum =
      this.version === 3 && this.family === 4 && rt.config.globalDefs.v3ChecksumAsV2 ? "plain" : "pseudo";
    // keepalived treats PASS with an empty password as no authentication
    const pass = this.version === 2 && cfg.authentication?.type === "PASS" && cfg.authentication.pass !== "";
    this.authType = pass ? VRRP_AUTH_PASS : 0;
    this.authData =
      this.version === 2 ? vrrpPassword(pass ? (cfg.authentication?.pass ?? "") : "") : new Uint8Array(0);
    this.advertField =
      this.version === 2 ? Math.max(1, Math.round(cfg.advertInt)) : Math.round(cfg.advertInt * 100);
    this.vipAddrs = cfg.virtualIpaddress.map((v) => v.address);
    this.peerTtl = {};
    for (const p of cfg.unicastPeer) {
      if (p.minTtl === undefined && p.maxTtl === undefined) continue;
      this.peerTtl[p.address] = {
        ...(p.minTtl !== undefined ? { min: p.minTtl } : {}),
        ...(p.maxTtl !== undefined ? { max: p.maxTtl } : {}),
      };
    }
    const params: InstanceParams = {
      name: cfg.name,
      vrid: cfg.virtualRouterId,
      version: this.version,
      family: this.family,
      advertIntervalMs: this.version === 2 ? this.advertField * 1000 : this.advertField * 10,
      basePriority: cfg.priority,
      nopreempt: cfg.nopreempt,
      preemptDelayMs: cfg.preemptDelay * 1000,
      primaryAddress: parseIp(this.src)!,
      initialState: cfg.state ?? "BACKUP",
      // an owner told explicitly to start as BACKUP waits like any backup, as in keepalived
      holdOwnerStart: cfg.state === "BACKUP",
      ...(rt.startDelayUntil !== undefined ? { startDelayUntil: rt.startDelayUntil } : {}),
      ...instanceAdvertPolicy(rt.config, cfg),
      downTimerAdverts: cfg.downTimerAdverts ?? rt.config.globalDefs.vrrpDownTimerAdverts,
    };
    this.params = params;
    this.fsm = initialState(params, monotonic());
  }

  get name(): string {
    return this.cfg.name;
  }

  /** Re-creates the state machine, e.g. with sync-group start parameters, before startup. */
  reinit(params: InstanceParams): void {
    this.params = params;
    this.fsm = initialState(params, monotonic());
  }

  dispatch(ev: VrrpEvent): void {
    const from = this.fsm.state;
    const { state, actions } = step(this.fsm, ev, monotonic());
    this.fsm = state;
    let regroup = false;
    for (const a of actions) {
      if (a.type === "sync_group") regroup = true;
      else this.apply(a);
    }
    this.arm();
    if (regroup) this.rt.resync(this, from);
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const d = nextDeadline(this.fsm);
    if (d === null) return;
    // ceil so that the tick never runs before the deadline and spins
    const wait = Math.max(0, Math.ceil(d - monotonic()));
    this.deferrals = 0;
    this.timer = setTimeout(() => this.onTimer(), wait);
  }

  /**
   * A backup whose Master_Down timer expires first lets adverts that already arrived be handled:
   * after the process was starved of CPU the timer can run before the datagrams queued behind it,
   * and taking over then would put the VIPs on two masters for nothing. Bounded to
   * MAX_TAKEOVER_DEFERRALS ms, so a flood of other traffic cannot hold a takeover back.
   */
  private onTimer(): void {
    this.timer = null;
    if (
      this.fsm.state === "BACKUP" &&
      this.deferrals < MAX_TAKEOVER_DEFERRALS &&
      this.rt.io.pendingInput?.() === true
    ) {
      this.deferrals++;
      this.timer = setTimeout(() => this.onTimer(), 1);
      return;
    }
    this.dispatch({ type: "tick" });
  }

  private apply(a: Action): void {
    switch (a.type) {
      case "send_advert":
        this.sendAdvert(a.priority);
        break;
      case "add_vips":
        this.addVips();
        break;
      case "remove_vips":
        this.removeVips();
        break;
      case "announce":
        this.announce();
        break;
      case "stop_announce":
        this.stopAnnounce();
        break;
      case "transition":
        this.counters.inc("transitions");
        this.rt.onTransition(this, a.from, a.to, a.reason);
        break;
      case "master_rx_lower_pri":
        this.lowerPriorityHeard(a.from, a.priority);
        break;
      case "warn":
        this.rt.limitedLog(`warn:${this.name}:${a.message}`, { instance: this.name }, a.message);
        break;
    }
  }

  sendAdvert(priority: number): void {
    const pkt: VrrpPacket = {
      version: this.version,
      type: 1,
      vrid: this.cfg.virtualRouterId,
      priority,
      advertInterval: this.advertField,
      authType: this.authType,
      authData: this.authData,
      family: this.family,
      addresses: this.vipAddrs,
    };
    for (const dst of this.dests) {
      // the pseudo-header carries the destination, so unicast peers each get their own checksum
      const bytes = encodeVrrp(pkt, { src: this.src, dst, checksum: this.checksum });
      try {
        this.tx.send(bytes, dst);
        this.counters.inc("adverts_sent");
      } catch (e) {
        this.counters.inc("send_errors");
        this.rt.limitedLog(
          `send:${this.name}`,
          { instance: this.name, dst, err: String(e) },
          "advert send failed",
        );
      }
    }
  }

  private vipDevice(dev: string | undefined): IfaceInfo | null {
    if (!dev || dev === this.iface.name) return this.iface;
    return this.rt.io.iface(dev);
  }

  addVips(): void {
    for (const v of instanceVips(this.cfg)) {
      const ifc = this.vipDevice(v.dev);
      if (!ifc) {
        this.rt.log.error({ instance: this.name, vip: v.address, dev: v.dev }, "VIP device not found");
        continue;
      }
      const fam = v.address.includes(":") ? 6 : 4;
      try {
        const prefixLen = vipPrefixLen(v);
        this.rt.io.kernel.addAddress(ifc.ifindex, v.address, prefixLen, {
          label: v.label,
          nodad: fam === 6,
          noPrefixRoute: v.noPrefixRoute,
          scope: v.scope === undefined ? undefined : SCOPES[v.scope],
          broadcast: fam === 4 ? broadcastOf(v.address, prefixLen, v.brd) : undefined,
        });
        this.held.add(`${ifc.ifindex}/${v.address}`);
      } catch (e) {
        this.rt.log.error({ instance: this.name, vip: v.address, err: String(e) }, "adding VIP failed");
      }
    }
  }

  removeVips(): void {
    for (const v of instanceVips(this.cfg)) {
      const ifc = this.vipDevice(v.dev);
      if (!ifc) continue;
      try {
        this.rt.io.kernel.delAddress(ifc.ifindex, v.address, vipPrefixLen(v));
      } catch (e) {
        this.rt.log.error({ instance: this.name, vip: v.address, err: String(e) }, "removing VIP failed");
      }
      this.held.delete(`${ifc.ifindex}/${v.address}`);
    }
  }

  releaseStale(): void {
    const present = new Map<number, Set<string>>();
    for (const v of instanceVips(this.cfg)) {
      const ifc = this.vipDevice(v.dev);
      if (!ifc) continue;
      let have = present.get(ifc.ifindex);
      if (!have) {
        have = new Set(this.rt.io.kernel.addressesOf(ifc.ifindex));
        present.set(ifc.ifindex, have);
      }
      if (!have.has(v.address)) continue;
      this.rt.log.info({ instance: this.name, vip: v.address }, "removing VIP left from a previous run");
      this.rt.io.kernel.delAddress(ifc.ifindex, v.address, vipPrefixLen(v));
    }
  }

  /** First burst now, a second after garp_master_delay, then refreshes (RFC 5798 §6.4.1, keepalived). */
  announce(): void {
    this.stopAnnounce();
    const g = instanceGarp(this.rt.config, this.cfg);
    this.burst(g.masterRepeat, g.interval, g.gnaInterval);
    if (g.masterDelay > 0) {
      this.announceTimers.push(
        setTimeout(() => this.burst(g.masterRepeat, g.interval, g.gnaInterval), g.masterDelay * 1000),
      );
    }
    if (g.masterRefresh > 0) {
      this.refreshTimer = setInterval(
        () => this.burst(g.masterRefreshRepeat, g.interval, g.gnaInterval),
        g.masterRefresh * 1000,
      );
    }
  }

  /** keepalived's vrrp_garp_lower_prio_*: re-announce when a lower-priority router claims mastership */
  private lowerPriorityHeard(from: string, priority: number): void {
    this.counters.inc("lower_priority_adverts");
    this.rt.fifoEvent(this.name, "MASTER_RX_LOWER_PRI", this.fsm.effectivePriority);
    const script = this.cfg.notify.masterRxLowerPri;
    if (script !== undefined) this.rt.runEventScript(this.name, script);
    this.rt.limitedLog(
      `lowprio:${this.name}`,
      { instance: this.name, from, priority },
      "lower priority advert heard as master",
    );
    // keepalived (vrrp_state_master_rx): a burst at once and another after the delay; both default
    // to the takeover settings (garp_master_repeat / garp_master_delay); repeat 0 turns it off
    const g = instanceGarp(this.rt.config, this.cfg);
    const repeat = g.lowerPrioRepeat ?? g.masterRepeat;
    if (repeat === 0) return;
    this.burst(repeat, g.interval, g.gnaInterval);
    const delay = (g.lowerPrioDelay ?? g.masterDelay) * 1000;
    if (delay > 0) {
      this.announceTimers.push(setTimeout(() => this.burst(repeat, g.interval, g.gnaInterval), delay));
    }
  }

  stopAnnounce(): void {
    for (const t of this.announceTimers) clearTimeout(t);
    this.announceTimers = [];
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
  }

  private burst(repeat: number, garpGapS: number, gnaGapS: number): void {
    const gapMs = Math.max(garpGapS, gnaGapS) * 1000;
    for (let i = 0; i < repeat; i++) {
      if (i === 0 || gapMs === 0) this.announceOnce();
      else this.announceTimers.push(setTimeout(() => this.announceOnce(), i * gapMs));
    }
  }

  private announceOnce(): void {
    for (const v of instanceVips(this.cfg)) {
      const ifc = this.vipDevice(v.dev);
      if (!ifc) continue;
      const v6 = v.address.includes(":");
      try {
        if (v6) {
          // keepalived sources the NA from the VIP itself; peers then learn the VIP's MAC directly
          this.rt.io.sendFrame(ifc.ifindex, encodeUnsolicitedNa(ifc.mac, v.address, v.address));
        } else {
          this.rt.io.sendFrame(ifc.ifindex, encodeGratuitousArp(ifc.mac, v.address));
        }
        this.counters.inc(v6 ? "na_sent" : "garp_sent");
      } catch (e) {
        this.rt.limitedLog(
          `garp:${this.name}`,
          { instance: this.name, err: String(e) },
          "GARP/NA send failed",
        );
      }
    }
  }

  onAdvert(pkt: VrrpPacket, rx: { ttl: number; src: string; dst: string }): void {
    if (rx.src === this.src) return; // our own advert looped back
    const v = validateAdvert(
      {
        vrid: this.cfg.virtualRouterId,
        version: this.version,
        family: this.family,
        advertIntervalMs: this.fsm.params.advertIntervalMs,
        auth: this.cfg.authentication,
        vipCount: this.vipAddrs.length,
        vips: this.vipAddrs,
        unicast: this.cfg.unicastPeer.length > 0,
        unicastPeers: this.cfg.unicastPeer.map((p) => p.address),
        checkUnicastSrc: this.rt.config.globalDefs.checkUnicastSrc,
        peerTtl: this.peerTtl,
      },
      pkt,
      rx,
    );
    if (!v.ok) {
      this.counters.inc(`dropped_${v.reason}`);
      this.rt.emit({ type: "drop", instance: this.name, reason: v.reason });
      if (v.log) {
        this.rt.limitedLog(
          `drop:${this.name}:${v.reason}`,
          { instance: this.name, reason: v.reason, src: rx.src },
          "advert dropped",
        );
      }
      return;
    }
    this.counters.inc("adverts_received");
    const ms = pkt.version === 2 ? pkt.advertInterval * 1000 : pkt.advertInterval * 10;
    this.dispatch({
      type: "advert",
      priority: pkt.priority,
      advertIntervalMs: ms,
      src: parseIp(rx.src)!,
      srcText: rx.src,
    });
  }

  /** Re-evaluates tracked interfaces and scripts; sends fault/priority events on change. */
  retrack(): void {
    const rt = this.rt;
    const ifaces = this.cfg.trackInterface.map((t) => ({
      weight: t.weight,
      weightReverse: t.weightReverse,
      up: rt.io.linkUp(t.name),
      name: t.name,
    }));
    if (!this.cfg.dontTrackPrimary) {
      ifaces.push({
        weight: 0,
        weightReverse: false,
        up: rt.io.linkUp(this.iface.name),
        name: this.iface.name,
      });
    }
    const group = this.syncGroup
      ? rt.config.vrrpSyncGroups.find((g) => g.name === this.syncGroup)
      : undefined;
    for (const t of group?.trackInterface ?? []) {
      ifaces.push({
        weight: t.weight,
        weightReverse: t.weightReverse,
        up: rt.io.linkUp(t.name),
        name: t.name,
      });
    }
    const scripts = [...this.cfg.trackScript, ...(group?.trackScript ?? [])].map((t) => {
      const def = rt.config.vrrpScripts.find((s) => s.name === t.name);
      return {
        name: t.name,
        weight: t.weight ?? def?.weight ?? 0,
        weightReverse: t.weightReverse ?? def?.weightReverse ?? false,
        ok: rt.scriptOk(t.name),
      };
    });
    const files = [...this.cfg.trackFile, ...(group?.trackFile ?? [])].map((t) => ({
      name: t.name,
      ...trackFileWeights(rt.config, t),
      value: rt.trackFiles.value(t.name),
    }));
    const r = effectivePriority(this.cfg.priority, ifaces, scripts, files);
    if (!this.started) {
      if (r.pending.length > 0) return;
      this.started = true;
      this.dispatch({ type: "startup" });
    }
    const next = new Set(r.faults);
    for (const f of next) if (!this.faults.has(f)) this.dispatch({ type: "fault", reason: f, active: true });
    for (const f of this.faults) if (!next.has(f)) this.dispatch({ type: "fault", reason: f, active: false });
    this.faults = next;
    if (r.priority !== this.fsm.effectivePriority) {
      this.dispatch({ type: "priority", effective: r.priority });
      // keepalived send_instance_priority_notifies: FIFO lines only, MASTER_ or BACKUP_ by state
      const wanted =
        this.cfg.notifyPriorityChanges ??
        group?.notifyPriorityChanges ??
        rt.config.globalDefs.vrrpNotifyPriorityChanges;
      if (wanted) {
        const kind = this.fsm.state === "MASTER" ? "MASTER_PRIORITY" : "BACKUP_PRIORITY";
        rt.fifoEvent(this.name, kind, this.fsm.effectivePriority);
      }
    }
  }

  status(): InstanceStatus {
    const lt = this.fsm.lastTransition;
    return {
      name: this.name,
      vrid: this.cfg.virtualRouterId,
      family: this.family,
      interface: this.iface.name,
      state: this.fsm.state,
      basePriority: this.cfg.priority,
      effectivePriority: this.fsm.effectivePriority,
      currentMaster: this.fsm.state === "MASTER" ? this.src : this.fsm.currentMaster,
      vipsHeld: [...this.held].map((k) => k.slice(k.indexOf("/") + 1)),
      lastTransition: lt ? { at: lt.at, from: lt.from, to: lt.to, reason: lt.reason } : null,
      counters: this.counters.toObject(),
      maintenance: this.fsm.forceBackup,
    };
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stopAnnounce();
  }
}

/** At most this many 1 ms waits for pending input before a backup takes over (see onTimer). */
const MAX_TAKEOVER_DEFERRALS = 20;

/**
 * How late routine adverts may be delivered so that one wake-up handles several: a tenth of the
 * shortest advert interval, at most 100 ms, and none with a single instance (nothing to gather).
 * A backup then resets its Master_Down timer up to that much later, which moves a takeover at most
 * that much later; a priority-0 advert is never held. The masters' timers spread their adverts over
 * the interval, so without this a backup of ten instances wakes several times per interval.
 */
export function coalesceWindowMs(advertIntervalsMs: number[]): number {
  if (advertIntervalsMs.length < 2) return 0;
  return Math.min(100, Math.floor(Math.min(...advertIntervalsMs) / 10));
}

/** One VRRP router process: all instances of a config. */
export class VrrpRuntime {
  readonly instances = new Map<string, InstanceRunner>();
  private readonly byVrid = new Map<string, InstanceRunner>();
  private readonly scriptState = new Map<string, ScriptFilter>();
  private readonly scriptTimers = new Map<string, ReturnType<typeof setTimeout>>();
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();
  private readonly limiter = new LogLimiter();
  readonly counters = new Counters();
  private stopping = false;
  readonly trackFiles: TrackFiles;
  private readonly fifos: NotifyFifos;
  /** end of vrrp_startup_delay on the monotonic clock; set once when this process starts */
  startDelayUntil: number | undefined;

  constructor(
    public config: Config,
    readonly io: VrrpIo,
    readonly log: Logger,
  ) {
    this.trackFiles = new TrackFiles(io, log, () => {
      for (const r of this.instances.values()) r.retrack();
    });
    this.fifos = new NotifyFifos(log, (user, group) => this.scriptIdentity(user, group));
  }

  on(fn: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(e: RuntimeEvent): void {
    for (const l of this.listeners) l(e);
  }

  limitedLog(key: string, obj: Record<string, unknown>, msg: string): void {
    const r = this.limiter.allow(key, Date.now());
    if (r === null) return;
    this.log.warn(r > 0 ? { ...obj, suppressed: r } : obj, msg);
  }

  /** null until the script has reported once */
  scriptOk(name: string): boolean | null {
    const f = this.scriptState.get(name);
    return f ? f.okOrNull : true;
  }

  start(): void {
    const delay = this.config.globalDefs.vrrpStartupDelay;
    if (delay > 0) {
      // keepalived applies it when the VRRP process starts, never on a reload
      this.startDelayUntil = monotonic() + delay * 1000;
      this.log.info({ seconds: delay }, "delaying startup");
    }
    this.trackFiles.configure(this.config.trackFiles, false);
    this.fifos.configure(notifyFifos(this.config));
    this.io.onLinkChange(() => {
      if (this.waiting.size > 0 && !this.stopping) this.apply([...this.waiting.keys()]);
      for (const r of this.instances.values()) r.retrack();
    });
    this.apply(this.config.vrrpInstances.map((i) => i.name));
  }

  /**
   * Applies a new config (SIGHUP / API). Instances whose effective config did not change keep their
   * state and timers (no re-election, no VIP flap); changed ones restart, removed ones stop (a master
   * hands over with priority 0 and releases its VIPs), new ones start.
   */
  reload(next: Config): ConfigDiff {
    const diff = diffInstances(this.config, next);
    for (const name of diff.removed) this.removeInstance(name, true);
    for (const name of diff.changed) this.removeInstance(name, false);
    this.config = next;
    this.trackFiles.configure(next.trackFiles, true);
    this.fifos.configure(notifyFifos(next));
    // scripts whose definition is unchanged keep their rise/fall state
    const oldScripts = this.scriptDefs;
    this.scriptDefs = new Map(next.vrrpScripts.map((d) => [d.name, scriptFingerprint(d)]));
    for (const [name, t] of this.scriptTimers) {
      if (this.scriptDefs.get(name) !== oldScripts.get(name)) {
        clearTimeout(t);
        this.scriptTimers.delete(name);
        this.scriptState.delete(name);
      }
    }
    for (const r of this.instances.values()) {
      r.cfg = next.vrrpInstances.find((i) => i.name === r.name) ?? r.cfg;
    }
    this.apply([...diff.changed, ...diff.added]);
    return diff;
  }

  /** Creates and starts the named instances of the current config. */
  private apply(names: string[]): void {
    this.syncOf.clear();
    for (const g of this.config.vrrpSyncGroups) {
      for (const member of g.group) this.syncOf.set(member, g.name);
    }
    for (const s of this.config.vrrpScripts) {
      if (!this.scriptState.has(s.name))
        this.scriptState.set(s.name, new ScriptFilter(s.rise, s.fall, s.initFail));
      if (!this.scriptDefs.has(s.name)) this.scriptDefs.set(s.name, scriptFingerprint(s));
    }
    const fresh: InstanceRunner[] = [];
    for (const name of names) {
      const cfg = this.config.vrrpInstances.find((i) => i.name === name);
      if (!cfg) continue;
      const iface = this.io.iface(cfg.interface);
      const src = iface ? (cfg.unicastSrcIp ?? iface.primary[cfg.family]) : undefined;
      if (!iface || !src) {
        // keepalived keeps such an instance down until the interface (or its address) appears; the
        // other instances must run meanwhile, so this is not an error that stops the process
        const why = iface
          ? `interface ${cfg.interface} has no IPv${cfg.family} address`
          : `interface ${cfg.interface} not found`;
        if (this.waiting.get(name) !== why)
          this.log.error({ instance: name, reason: why }, "instance waiting");
        this.waiting.set(name, why);
        continue;
      }
      this.waiting.delete(name);
      const multicast = cfg.unicastPeer.length === 0;
      const group = multicast ? instanceMcastGroup(this.config, cfg) : null;
      const tx = this.io.open(iface, cfg.family, src, group, (rx) => this.onRx(rx));
      const runner = new InstanceRunner(this, cfg, iface, tx, src);
      runner.syncGroup = this.syncOf.get(cfg.name) ?? null;
      this.instances.set(cfg.name, runner);
      this.byVrid.set(vridKey(iface.ifindex, cfg.family, cfg.virtualRouterId), runner);
      fresh.push(runner);
    }
    for (const g of this.config.vrrpSyncGroups) {
      const members = g.group.map((n) => this.instances.get(n)).filter((m): m is InstanceRunner => !!m);
      if (!members.some((m) => fresh.includes(m))) continue;
      const params = syncGroupStartParams(members.map((m) => ({ ...m.params, syncGroup: true })));
      for (const [i, m] of members.entries()) if (fresh.includes(m)) m.reinit(params[i]!);
    }
    // The kernel is the source of truth: VIPs left by a previous run that died (kill -9) are
    // released before the election, so a restarted backup never answers for them.
    for (const r of fresh) r.releaseStale();
    // retrack dispatches startup once no weight-0 script is still pending
    for (const r of fresh) r.retrack();
    for (const s of this.config.vrrpScripts) {
      if (!this.scriptTimers.has(s.name)) this.scheduleScript(s.name, 0);
    }
    this.io.coalesce?.(coalesceWindowMs([...this.instances.values()].map((r) => r.params.advertIntervalMs)));
  }

  /** `deleted`: gone from the config (notified as keepalived does a deletion), not restarted */
  private removeInstance(name: string, deleted: boolean): void {
    this.waiting.delete(name);
    const r = this.instances.get(name);
    if (!r) return;
    if (deleted) this.deleting.add(name);
    try {
      r.dispatch({ type: "shutdown" });
    } finally {
      this.deleting.delete(name);
    }
    r.close();
    this.instances.delete(name);
    this.byVrid.delete(vridKey(r.iface.ifindex, r.family, r.cfg.virtualRouterId));
  }

  private readonly syncOf = new Map<string, string>();
  /** instances being removed because a reload deleted them (see onTransition) */
  private readonly deleting = new Set<string>();
  /** instances that cannot start yet (interface or address missing), with the reason */
  private readonly waiting = new Map<string, string>();
  private scriptDefs = new Map<string, string>();

  private scheduleScript(name: string, delayMs: number): void {
    if (this.stopping) return;
    const def = this.config.vrrpScripts.find((s) => s.name === name);
    if (!def) return;
    const fingerprint = this.scriptDefs.get(name);
    const t = setTimeout(async () => {
      const argv = splitCommand(def.script);
      const timeoutMs = (def.timeout ?? def.interval) * 1000;
      const as = this.scriptIdentity(def.user, def.group);
      const res: ScriptOutcome = as
        ? await runScript(argv, timeoutMs, as)
        : { ok: false, code: null, timedOut: false, error: "script user cannot be resolved" };
      // a reload may have replaced or removed this script while it ran
      if (this.stopping || this.scriptDefs.get(name) !== fingerprint || this.scriptTimers.get(name) !== t)
        return;
      const filter = this.scriptState.get(name)!;
      const before = filter.okOrNull;
      filter.record(res.ok);
      if (filter.okOrNull !== before) {
        this.log.info(
          { script: name, ok: filter.okOrNull, code: res.code, timedOut: res.timedOut },
          "track script changed",
        );
        for (const r of this.instances.values()) r.retrack();
      }
      this.scheduleScript(name, def.interval * 1000);
    }, delayMs);
    this.scriptTimers.set(name, t);
  }

  private onRx(rx: VrrpRx): void {
    let payload = rx.data;
    let ttl = rx.ttl;
    let src = rx.src;
    let dst = rx.dst;
    if (rx.family === 4) {
      const h = decodeIpv4Header(rx.data);
      if (!h.ok) {
        this.drop(null, h.error.reason);
        return;
      }
      payload = rx.data.subarray(h.value.ihl, Math.min(rx.data.length, h.value.totalLength));
      ttl = h.value.ttl;
      src = h.value.src;
      dst = h.value.dst;
    }
    const d = decodeVrrp(payload, { family: rx.family, src, dst });
    if (!d.ok) {
      this.drop(null, d.error.reason, src);
      return;
    }
    const runner = this.byVrid.get(vridKey(rx.ifindex, rx.family, d.value.packet.vrid));
    if (!runner) {
      this.drop(null, "vrid");
      return;
    }
    runner.onAdvert(d.value.packet, { ttl, src, dst });
  }

  private drop(instance: string | null, reason: string, src?: string): void {
    this.counters.inc(`dropped_${reason}`);
    this.emit({ type: "drop", instance, reason });
    if (reason !== "vrid") this.limitedLog(`drop:${reason}`, { reason, src }, "packet dropped");
  }

  onTransition(r: InstanceRunner, from: string, to: string, reason: string): void {
    const priority = r.fsm.effectivePriority;
    this.log.info(
      { event: "transition", instance: r.name, from, to, reason, priority },
      `(${r.name}) Entering ${to} STATE`,
    );
    this.emit({ type: "transition", instance: r.name, from, to, reason, priority });
    // A deleted instance is notified as keepalived's clear_diff_vrrp does: DELETED with notify_deleted,
    // else FAULT (its historical choice), and nothing when it was in FAULT already.
    const told =
      to === "STOP" && this.deleting.has(r.name)
        ? r.cfg.notifyDeleted
          ? "DELETED"
          : from === "FAULT"
            ? null
            : "FAULT"
        : to;
    if (told !== null) {
      this.notify("INSTANCE", r.name, told, priority, r.cfg.notify);
      if (NOTIFIED_STATES.has(told)) this.fifos.write(fifoLine("INSTANCE", r.name, told, priority));
    }
    if (r.syncGroup) {
      const group = this.config.vrrpSyncGroups.find((g) => g.name === r.syncGroup)!;
      const after = groupStateOf(this.members(group.name).map((m) => m.fsm.state));
      if (after && after !== this.groupState.get(group.name)) {
        this.groupState.set(group.name, after);
        this.notify("GROUP", group.name, after, 0, group.notify);
        if (NOTIFIED_STATES.has(after)) this.fifos.write(fifoLine("GROUP", group.name, after, 0));
      }
    }
  }

  private members(group: string): InstanceRunner[] {
    const g = this.config.vrrpSyncGroups.find((x) => x.name === group);
    return (g?.group ?? []).map((n) => this.instances.get(n)).filter((m): m is InstanceRunner => !!m);
  }

  /**
   * Re-evaluates a sync group after one member's step asked for it. The events it produces may ask
   * again; sync-group.ts rules are idempotent, so the cascade settles (bounded for safety).
   */
  resync(r: InstanceRunner, from: string): void {
    if (!r.syncGroup) return;
    this.syncDepth++;
    try {
      if (this.syncDepth > 16) {
        this.log.error({ group: r.syncGroup }, "sync group cascade did not settle");
        return;
      }
      const members = this.members(r.syncGroup);
      const evs = syncEvents(
        members.map((m) => memberView(m.name, m.fsm)),
        r.name,
        undefined,
        { from: from as InstanceState["state"], group: r.syncGroup },
      );
      for (const e of evs) this.instances.get(e.instance)?.dispatch(e.event);
    } finally {
      this.syncDepth--;
    }
  }

  private syncDepth = 0;

  private readonly groupState = new Map<string, string>();

  /**
   * The identity scripts run as (script_user, or the script's own user); null when the account is
   * gone, which is logged once per reason and fails the script rather than running it as root.
   */
  private scriptIdentity(user?: string, group?: string): Identity | null {
    const id = resolveIdentity(systemAccounts(), this.config.globalDefs, { user, group });
    if ("error" in id) {
      if (!this.identityErrors.has(id.error)) {
        this.identityErrors.add(id.error);
        this.log.error({ err: id.error }, "script not run: its user cannot be resolved");
      }
      return null;
    }
    return id;
  }

  private readonly identityErrors = new Set<string>();

  private notify(
    kind: "INSTANCE" | "GROUP",
    name: string,
    state: string,
    priority: number,
    scripts: VrrpInstance["notify"],
  ): void {
    const cmds = notifyScripts(scripts, state);
    if (cmds.length === 0) return;
    const as = this.scriptIdentity();
    if (!as) return;
    for (const cmd of cmds) {
      const argv = [
        ...splitCommand(cmd.command),
        ...(cmd.withArgs ? notifyArgs(kind, name, state, priority) : []),
      ];
      this.spawnNotifyScript(cmd.command, argv, as, cmd.timeoutMs);
    }
  }

  status(): InstanceStatus[] {
    const waiting = [...this.waiting].flatMap(([name, why]): InstanceStatus[] => {
      const cfg = this.config.vrrpInstances.find((i) => i.name === name);
      if (!cfg) return [];
      return [
        {
          name,
          vrid: cfg.virtualRouterId,
          family: cfg.family,
          interface: cfg.interface,
          state: "FAULT",
          basePriority: cfg.priority,
          effectivePriority: cfg.priority,
          currentMaster: null,
          vipsHeld: [],
          lastTransition: { at: 0, from: "INIT", to: "FAULT", reason: why },
          counters: {},
          maintenance: false,
        },
      ];
    });
    return [...[...this.instances.values()].map((r) => r.status()), ...waiting];
  }

  /**
   * Operator maintenance: force an instance to BACKUP (a master hands over with a priority-0 advert)
   * or release it. False when no such instance runs. A changed instance is re-created by reload(),
   * which forgets this; the caller re-applies its maintenance set after every reload.
   */
  setMaintenance(name: string, active: boolean): boolean {
    const r = this.instances.get(name);
    if (!r) return false;
    r.dispatch({ type: "force_backup", active });
    return true;
  }

  /** keepalived's notify_master_rx_lower_pri: the script alone, without arguments (send_event_notify). */
  runEventScript(instance: string, command: string): void {
    const as = this.scriptIdentity();
    if (as) this.spawnNotifyScript(command, splitCommand(command), as, undefined, { instance });
  }

  /** Runs a notify script without waiting for it; a failure is logged. */
  private spawnNotifyScript(
    command: string,
    argv: string[],
    as: Identity,
    timeoutMs?: number,
    context: Record<string, string> = {},
  ): void {
    spawnNotify(
      argv,
      (o) => {
        if (!o.ok) {
          this.log.warn(
            { ...context, script: command, code: o.code, timedOut: o.timedOut, err: o.error },
            "notify script failed",
          );
        }
      },
      timeoutMs,
      as,
    );
  }

  /** A notify FIFO line for an instance event that is not a transition. */
  fifoEvent(instance: string, event: string, priority: number): void {
    this.fifos.write(fifoLine("INSTANCE", instance, event, priority));
  }

  /** Graceful stop: masters send priority 0 and release their VIPs (RFC 5798 §6.4.3). */
  stop(): void {
    this.stopping = true;
    this.fifos.stopScripts();
    this.trackFiles.close();
    for (const t of this.scriptTimers.values()) clearTimeout(t);
    this.scriptTimers.clear();
    for (const r of this.instances.values()) {
      r.dispatch({ type: "shutdown" });
      r.close();
    }
    // after the STOP lines
    this.fifos.close();
  }
}

function notifyFifos(cfg: Config): NotifyFifo[] {
  const g = cfg.globalDefs;
  return [g.notifyFifo, g.vrrpNotifyFifo].filter((f): f is NotifyFifo => f !== undefined);
}

function vridKey(ifindex: number, family: 4 | 6, vrid: number): string {
  return `${ifindex}/${family}/${vrid}`;
}

/** `ip addr` scope names -> RT_SCOPE_* (rtnetlink.h) */
const SCOPES: Record<string, number> = { global: 0, site: 200, link: 253, host: 254, nowhere: 255 };

/** keepalived's `brd`: an address, `+` (all host bits set) or `-` (none). */
function broadcastOf(address: string, prefixLen: number, brd: string | undefined): string | undefined {
  if (brd === undefined || brd === "-") return undefined;
  if (brd !== "+") return brd;
  const b = parseIp(address);
  if (b?.length !== 4 || prefixLen >= 31) return undefined;
  const n = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
  const host = prefixLen === 0 ? 0xffffffff : (1 << (32 - prefixLen)) - 1;
  const v = (n | host) >>> 0;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
