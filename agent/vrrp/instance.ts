// The VRRP state machine of one virtual router instance: RFC 5798 §6.4 (and RFC 3768 §6.4 for v2),
// with keepalived 2.2.7's choices wherever the RFC leaves room, so that mixed vigil/keepalived groups
// elect exactly like all-keepalived ones.
//
// Pure: `step(state, event, now) -> { state, actions }`. No I/O, no clock, no timers: `now` is a
// monotonic time in milliseconds passed in by the shell, which sends `{ type: "tick" }` once
// `now >= nextDeadline(state)` and carries out the returned actions in order.
//
// keepalived references below are to keepalived 2.2.7: keepalived/vrrp/vrrp.c (vrrp_state_backup,
// vrrp_state_master_rx, vrrp_state_master_tx, vrrp_state_leave_master, vrrp_state_leave_fault,
// vrrp_complete_instance), vrrp_scheduler.c (vrrp_init_state, vrrp_init_instance_sands,
// try_up_instance, vrrp_dispatcher_read[_timeout]), vrrp_track.c (down_instance,
// vrrp_set_effective_priority) and include/vrrp.h (VRRP_TIMER_SKEW, VRRP_MS_DOWN_TIMER).
import { compareIp } from "../wire/ip.ts";

export type VrrpState = "INIT" | "BACKUP" | "MASTER" | "FAULT" | "STOP";

export interface InstanceParams {
  name: string;
  vrid: number;
  version: 2 | 3;
  family: 4 | 6;
  /** configured Advertisement_Interval in ms (v2: whole seconds × 1000, v3: centiseconds × 10) */
  advertIntervalMs: number;
  /** configured priority 1..255; 255 = address owner */
  basePriority: number;
  nopreempt: boolean;
  preemptDelayMs: number;
  /** our own primary address (bytes) for the equal-priority tie-break and as advert source */
  primaryAddress: Uint8Array;
  initialState: "MASTER" | "BACKUP";
  /**
   * Member of a sync group: the instance does not take over on its own when its Master_Down_Timer
   * expires but asks the group (`sync_group` action with why "want_master"), like keepalived's
   * vrrp_sync_can_goto_master(); the group answers with a `sync` event. Default false.
   */
  syncGroup?: boolean;
  /**
   * Do not take over immediately at startup even as address owner. keepalived clears the MASTER
   * start of every member of a sync group that also has non-owner members (vrrp_complete_init);
   * sync-group.ts `syncGroupStartParams()` sets this. Default false.
   */
  holdOwnerStart?: boolean;
  /**
   * keepalived's vrrp_startup_delay: until this instant (same clock as `now`) a BACKUP's
   * Master_Down_Timer counts from here instead of from now (vrrp_init_instance_sands), so no
   * backup takes over before the delay plus its Master_Down_Interval. Default: no delay.
   */
  startDelayUntil?: number;
  /** keepalived's down_timer_adverts: adverts missed before Master_Down (default 3) */
  downTimerAdverts?: number;
  /** keepalived's lower_prio_no_advert: as master, do not answer a lower-priority advert. Default false */
  lowerPrioNoAdvert?: boolean;
  /** keepalived's higher_prio_send_advert: as master, advertise once before yielding. Default false */
  higherPrioSendAdvert?: boolean;
}

export interface InstanceState {
  state: VrrpState;
  /** the parameters in force, after keepalived's normalisation (see `normaliseParams`) */
  params: InstanceParams;
  /** priority before tracking; starts as params.basePriority, drops 255 -> 254 on an owner conflict */
  basePriority: number;
  effectivePriority: number;
  /** RFC 5798 Master_Adver_Interval: learnt from the master's adverts in v3, configured in v2 */
  masterAdverIntervalMs: number;
  /** Master_Down_Timer expiry (BACKUP only) */
  masterDownAt: number | null;
  /** Adver_Timer expiry (MASTER only) */
  adverAt: number | null;
  /** keepalived's preempt_time: lower-priority adverts are accepted (not preempted) until then */
  preemptAt: number | null;
  /** source of the last advert heard from the master (BACKUP); null while we are master */
  currentMaster: string | null;
  /** active fault reasons of this instance (tracked interfaces, scripts with weight 0, ...) */
  faults: string[];
  /** set while the sync group holds this instance in FAULT because another member is faulty */
  syncFault: string | null;
  /** sync group member whose Master_Down_Timer expired, waiting for the group (keepalived wantstate) */
  wantMaster: boolean;
  /** operator maintenance: never become master while set */
  forceBackup: boolean;
  /** why the armed Master_Down_Timer would make us master; becomes the transition reason */
  masterDownReason: string;
  /** time the current state was entered */
  since: number;
  lastTransition: { at: number; from: VrrpState; to: VrrpState; reason: string } | null;
}

export type VrrpEvent =
  | { type: "startup" }
  | { type: "shutdown" }
  | { type: "advert"; priority: number; advertIntervalMs: number; src: Uint8Array; srcText: string }
  /** the runtime calls step(..., {type:"tick"}, now) when now >= nextDeadline(state) */
  | { type: "tick" }
  /** from tracking */
  | { type: "priority"; effective: number }
  /** interface down / script failed with weight 0; several reasons can be active */
  | { type: "fault"; reason: string; active: boolean }
  /** forced by the sync group */
  | { type: "sync"; to: "MASTER" | "BACKUP" | "FAULT"; reason: string }
  /** operator maintenance (later API) */
  | { type: "force_backup"; active: boolean };

export type Action =
  | { type: "send_advert"; priority: number }
  | { type: "add_vips" }
  | { type: "remove_vips" }
  /** start the GARP/NA schedule (first burst now, second after garp_master_delay, refresh) */
  | { type: "announce" }
  | { type: "stop_announce" }
  /** the shell logs it, runs notify scripts, informs sync group */
  | { type: "transition"; from: VrrpState; to: VrrpState; reason: string }
  /**
   * As master we heard a lower-priority advert (and answered it with our own). keepalived then runs
   * the garp_lower_prio_* GARP schedule and notify_master_rx_lower_pri.
   */
  | { type: "master_rx_lower_pri"; from: string; priority: number }
  /**
   * Sync group members only: the group must be re-evaluated (sync-group.ts `syncEvents`) after this
   * step's actions are applied: a transition, an expired Master_Down_Timer ("want_master"), or this
   * instance's own faults appearing/clearing.
   */
  | { type: "sync_group"; why: "transition" | "want_master" | "fault" }
  /** something an operator should see in the log; no effect on state */
  | { type: "warn"; message: string };

export interface StepResult {
  state: InstanceState;
  actions: Action[];
}

const OWNER = 255;
/** keepalived VRRP_DOWN_TIMER_ADVERTS: Master_Down_Interval counts 3 advert intervals */
const DOWN_TIMER_ADVERTS = 3;

/**
 * RFC 5798 §6.1 Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256; RFC 3768 §6.1 (v2):
 * (256 − Priority) / 256 seconds, independent of the interval.
 * Computed like keepalived's VRRP_TIMER_SKEW: in integer microseconds, truncated, v3 from whole
 * centiseconds ((256 − p) × cs × 625 / 16). Priority 100 at 1 s gives 609.375 ms in both versions.
 */
export function skewTimeMs(version: 2 | 3, priority: number, masterAdverIntervalMs: number): number {
  const p = 256 - priority;
  if (version === 2) return Math.floor((p * 1_000_000) / 256) / 1000;
  const cs = Math.floor(Math.round(masterAdverIntervalMs * 1000) / 10_000);
  return Math.floor((p * cs * 625) / 16) / 1000;
}

/**
 * RFC 5798 §6.1 Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time (keepalived
 * VRRP_MS_DOWN_TIMER, whose 3 is down_timer_adverts).
 */
export function masterDownIntervalMs(
  version: 2 | 3,
  priority: number,
  masterAdverIntervalMs: number,
  downTimerAdverts = DOWN_TIMER_ADVERTS,
): number {
  return downTimerAdverts * masterAdverIntervalMs + skewTimeMs(version, priority, masterAdverIntervalMs);
}

/**
 * keepalived's config normalisation (vrrp_complete_instance): nopreempt is meaningless for the owner
 * and is cleared for `state MASTER`; preempt_delay is cleared for `state MASTER` and with nopreempt.
 */
export function normaliseParams(p: InstanceParams): InstanceParams {
  const nopreempt = p.nopreempt && p.basePriority !== OWNER && p.initialState !== "MASTER";
  const preemptDelayMs = p.initialState === "MASTER" || nopreempt ? 0 : Math.max(0, p.preemptDelayMs);
  return { ...p, nopreempt, preemptDelayMs };
}

/** keepalived vrrp_set_effective_priority: the owner is never changed by tracking; others stay 1..254. */
function clampPriority(base: number, total: number): number {
  if (base === OWNER) return OWNER;
  if (!Number.isFinite(total) || total < 1) return 1;
  if (total >= OWNER) return OWNER - 1;
  return Math.trunc(total);
}

export function initialState(params: InstanceParams, now: number): InstanceState {
  const p = normaliseParams(params);
  return {
    state: "INIT",
    params: p,
    basePriority: p.basePriority,
    effectivePriority: p.basePriority,
    masterAdverIntervalMs: p.advertIntervalMs,
    masterDownAt: null,
    adverAt: null,
    preemptAt: null,
    currentMaster: null,
    faults: [],
    syncFault: null,
    wantMaster: false,
    forceBackup: false,
    masterDownReason: "master down timer expired",
    since: now,
    lastTransition: null,
  };
}

/** The instant the shell must send `tick`, or null when no timer runs (INIT, FAULT, STOP). */
export function nextDeadline(s: InstanceState): number | null {
  if (s.state === "BACKUP") return s.masterDownAt;
  if (s.state === "MASTER") return s.adverAt;
  return null;
}

function mdi(s: InstanceState, priority = s.effectivePriority): number {
  return masterDownIntervalMs(s.params.version, priority, s.masterAdverIntervalMs, s.params.downTimerAdverts);
}

function faulted(s: InstanceState): boolean {
  return s.faults.length > 0 || s.syncFault !== null;
}

function isOwner(s: InstanceState): boolean {
  return s.basePriority === OWNER;
}

/** Accumulates the next state and the actions of one step. */
class Step {
  readonly actions: Action[] = [];
  constructor(
    public s: InstanceState,
    readonly now: number,
  ) {}

  set(patch: Partial<InstanceState>): void {
    this.s = { ...this.s, ...patch };
  }

  act(a: Action): void {
    this.actions.push(a);
  }

  /** Master_Down_Timer expiry for an interval armed now: from the end of a startup delay if later. */
  downAt(intervalMs: number): number {
    return Math.max(this.now, this.s.params.startDelayUntil ?? this.now) + intervalMs;
  }

  /** Records the state change and emits the transition (and the group re-evaluation for sync members). */
  transition(to: VrrpState, reason: string, patch: Partial<InstanceState>): void {
    const from = this.s.state;
    this.set({ ...patch, state: to, since: this.now, lastTransition: { at: this.now, from, to, reason } });
    this.act({ type: "transition", from, to, reason });
    if (this.s.params.syncGroup) this.act({ type: "sync_group", why: "transition" });
  }

  /**
   * RFC 5798 §6.4.2 "Master_Down_Timer fires" / §6.4.1 owner at startup: send an ADVERTISEMENT,
   * announce the VIPs, Adver_Timer = Advertisement_Interval, -> MASTER. keepalived sends the advert
   * before adding the VIPs and sending GARPs so the old master drops them first (vrrp_state_master_tx).
   */
  becomeMaster(reason: string): void {
    const s = this.s;
    this.act({ type: "send_advert", priority: s.effectivePriority });
    this.act({ type: "add_vips" });
    this.act({ type: "announce" });
    this.transition("MASTER", reason, {
      adverAt: this.now + s.params.advertIntervalMs,
      masterDownAt: null,
      // As master we advertise our configured interval; a later backup spell learns again (v3).
      masterAdverIntervalMs: s.params.advertIntervalMs,
      currentMaster: null,
      wantMaster: false,
    });
  }

  /** Arms Master_Down_Timer for a fresh BACKUP spell; keepalived clears preempt_time on entering BACKUP. */
  private backupPatch(masterAdverIntervalMs: number): Partial<InstanceState> {
    const tmp = { ...this.s, masterAdverIntervalMs };
    return {
      masterAdverIntervalMs,
      masterDownAt: this.downAt(mdi(tmp)),
      masterDownReason: "master down timer expired",
      adverAt: null,
      preemptAt: null,
      wantMaster: false,
    };
  }

  /**
   * MASTER -> BACKUP (keepalived vrrp_state_leave_master with wantstate BACKUP): VIPs removed, no
   * priority-0 advert unless `sendZero` (used for a graceful operator handover).
   */
  leaveMaster(reason: string, opts: { sendZero?: boolean; currentMaster?: string | null } = {}): void {
    if (opts.sendZero) this.act({ type: "send_advert", priority: 0 });
    this.act({ type: "stop_announce" });
    this.act({ type: "remove_vips" });
    this.transition("BACKUP", reason, {
      ...this.backupPatch(this.s.masterAdverIntervalMs),
      currentMaster: opts.currentMaster ?? null,
    });
  }

  /**
   * -> FAULT (keepalived down_instance / vrrp_sync_fault). A master sends a priority-0 advert so a
   * backup takes over after Skew_Time instead of Master_Down_Interval, then drops its VIPs.
   * (keepalived 2.2.7 actually sends two priority-0 adverts on this path, one in
   * vrrp_state_leave_master and one in vrrp_restore_interface; one is enough on the wire.)
   */
  enterFault(reason: string): void {
    if (this.s.state === "MASTER") {
      this.act({ type: "send_advert", priority: 0 });
      this.act({ type: "stop_announce" });
      this.act({ type: "remove_vips" });
    }
    this.transition("FAULT", reason, {
      masterDownAt: null,
      adverAt: null,
      preemptAt: null,
      wantMaster: false,
    });
  }

  /**
   * FAULT -> BACKUP once no fault remains (keepalived try_up_instance + vrrp_state_leave_fault):
   * Master_Adver_Interval back to the configured one and a full Master_Down_Timer — also for the
   * address owner, which then takes over when that timer expires (RFC 5798 would go straight to
   * MASTER from Initialize; keepalived goes through BACKUP).
   */
  leaveFault(reason: string): void {
    this.transition("BACKUP", reason, this.backupPatch(this.s.params.advertIntervalMs));
  }
}

/** Advances the state machine by one event at time `now` (ms). */
export function step(s: InstanceState, ev: VrrpEvent, now: number): StepResult {
  const st = new Step(s, now);
  switch (ev.type) {
    case "startup":
      onStartup(st);
      break;
    case "shutdown":
      onShutdown(st);
      break;
    case "tick":
      onTick(st);
      break;
    case "advert":
      onAdvert(st, ev);
      break;
    case "priority":
      onPriority(st, ev.effective);
      break;
    case "fault":
      onFault(st, ev.reason, ev.active);
      break;
    case "sync":
      onSync(st, ev.to, ev.reason);
      break;
    case "force_backup":
      onForceBackup(st, ev.active);
      break;
  }
  return { state: st.s, actions: st.actions };
}

/**
 * RFC 5798 §6.4.1 Initialize. keepalived (vrrp_init_state): an instance with a fault starts in FAULT;
 * the owner (priority 255) becomes master at once (keepalived arms a 1 µs down timer, same effect);
 * everyone else starts BACKUP with a full Master_Down_Interval — including `state MASTER` with a
 * priority below 255, which in 2.2.7 only differs by having nopreempt/preempt_delay cleared.
 * keepalived starts the owner as master when `state` is absent or MASTER, but makes it wait with an
 * explicit `state BACKUP`; the config model defaults `state` to BACKUP and cannot tell those apart,
 * so the owner always starts as master here, as RFC 5798 says (sync groups: see holdOwnerStart).
 * STOP -> startup restarts the instance (used after a shutdown or by simulations).
 */
function onStartup(st: Step): void {
  const s = st.s;
  if (s.state !== "INIT" && s.state !== "STOP") return;
  st.set({ masterAdverIntervalMs: s.params.advertIntervalMs, currentMaster: null, preemptAt: null });
  if (faulted(st.s)) {
    st.transition(
      "FAULT",
      `startup with fault: ${[...s.faults, ...(s.syncFault ? [s.syncFault] : [])].join(", ")}`,
      {
        masterDownAt: null,
        adverAt: null,
      },
    );
    return;
  }
  if (isOwner(s) && !s.params.holdOwnerStart && !s.forceBackup) {
    st.becomeMaster("address owner (priority 255) at startup");
    return;
  }
  st.transition("BACKUP", "startup", {
    masterDownAt: st.downAt(mdi(st.s)),
    masterDownReason: "master down timer expired",
    adverAt: null,
  });
}

/**
 * RFC 5798 §6.4.2/§6.4.3 Shutdown: a master sends priority 0 so a backup takes over after Skew_Time,
 * then releases its VIPs (keepalived restore_vrrp_interfaces); every instance ends in STOP and its
 * notify_stop runs (keepalived notify_shutdown).
 */
function onShutdown(st: Step): void {
  const s = st.s;
  if (s.state === "STOP") return;
  if (s.state === "MASTER") {
    st.act({ type: "send_advert", priority: 0 });
    st.act({ type: "stop_announce" });
    st.act({ type: "remove_vips" });
  }
  st.transition("STOP", "shutdown", {
    masterDownAt: null,
    adverAt: null,
    preemptAt: null,
    wantMaster: false,
  });
}

function onTick(st: Step): void {
  const s = st.s;
  if (s.state === "BACKUP" && s.masterDownAt !== null && st.now >= s.masterDownAt) {
    if (s.forceBackup) {
      // Held down by the operator: keep listening, re-arm so a master appearing is tracked as usual.
      st.set({ masterDownAt: st.downAt(mdi(s)) });
      return;
    }
    if (s.params.syncGroup) {
      // keepalived vrrp_state_goto_master -> vrrp_sync_can_goto_master(): a member only becomes master
      // when the whole group wants to; meanwhile it stays BACKUP with wantstate MASTER and a re-armed
      // full down timer ("prefer backup state to avoid thrashing").
      st.set({ wantMaster: true, masterDownAt: st.downAt(mdi(s)) });
      st.act({ type: "sync_group", why: "want_master" });
      return;
    }
    st.becomeMaster(s.masterDownReason);
    return;
  }
  if (s.state === "MASTER" && s.adverAt !== null && st.now >= s.adverAt) {
    // RFC 5798 §6.4.3 "Adver_Timer fires": send an ADVERTISEMENT, reset the timer. keepalived re-arms
    // from the time it handles the timer (vrrp_init_instance_sands), not from the previous deadline.
    st.act({ type: "send_advert", priority: s.effectivePriority });
    st.set({ adverAt: st.now + s.params.advertIntervalMs });
  }
}

function onAdvert(st: Step, ev: Extract<VrrpEvent, { type: "advert" }>): void {
  // keepalived vrrp_dispatcher_read: adverts are ignored in FAULT and INIT (and we are gone in STOP).
  if (st.s.state === "BACKUP") backupRx(st, ev);
  else if (st.s.state === "MASTER") masterRx(st, ev);
}

/** RFC 5798 §6.4.2 / RFC 3768 §6.4.2 "If an ADVERTISEMENT is received" in Backup; keepalived vrrp_state_backup. */
function backupRx(st: Step, ev: Extract<VrrpEvent, { type: "advert" }>): void {
  const s = st.s;
  if (ev.priority === 0) {
    // The master is leaving: take over after Skew_Time (computed with the current Master_Adver_Interval).
    st.set({
      masterDownAt: st.downAt(skewTimeMs(s.params.version, s.effectivePriority, s.masterAdverIntervalMs)),
      masterDownReason: `priority 0 advert from ${ev.srcText}`,
    });
    return;
  }
  const p = s.params;
  const inPreemptDelay = p.preemptDelayMs > 0 && (s.preemptAt === null || s.preemptAt > st.now);
  if (p.nopreempt || ev.priority >= s.effectivePriority || inPreemptDelay) {
    // Accept: v3 learns Master_Adver_Interval from the advert (RFC 5798); v2 keeps the configured
    // one (a different v2 interval never gets here: validate.ts drops it, as keepalived does).
    // An interval of 0 would make Master_Down_Interval just Skew_Time, so it is not learnt.
    const learnt = p.version === 3 && ev.advertIntervalMs > 0 ? ev.advertIntervalMs : s.masterAdverIntervalMs;
    let preemptAt = s.preemptAt;
    if (p.preemptDelayMs > 0) {
      // keepalived: preempt_time starts at the first lower-priority advert and is cleared by any advert
      // with a priority >= ours; lower adverts are accepted (no preemption) until it has passed.
      if (ev.priority >= s.effectivePriority) preemptAt = null;
      else if (preemptAt === null) preemptAt = st.now + p.preemptDelayMs;
    }
    const next = { ...s, masterAdverIntervalMs: learnt };
    st.set({
      masterAdverIntervalMs: learnt,
      masterDownAt: st.downAt(mdi(next)),
      masterDownReason: `master down timer expired (last advert from ${ev.srcText})`,
      currentMaster: ev.srcText,
      preemptAt,
      // keepalived: "Now we have received a backup, we want to be in BACKUP state" (wantstate = BACK).
      wantMaster: false,
    });
    return;
  }
  // Preempt mode and a lower priority: RFC "discard the ADVERTISEMENT". keepalived does not take over
  // any faster: the Master_Down_Timer keeps running (not reset) and we take over when it expires.
  st.set({
    currentMaster: ev.srcText,
    masterDownReason: `preempting lower priority master ${ev.srcText} (priority ${ev.priority} < ${s.effectivePriority})`,
  });
}

/** RFC 5798 §6.4.3 / RFC 3768 §6.4.3 "If an ADVERTISEMENT is received" in Master; keepalived vrrp_state_master_rx. */
function masterRx(st: Step, ev: Extract<VrrpEvent, { type: "advert" }>): void {
  let s = st.s;
  if (ev.priority === 0) {
    // A backup-to-be (or a leaving peer) asks for an advert now: send one and reset Adver_Timer.
    st.act({ type: "send_advert", priority: s.effectivePriority });
    st.set({ adverAt: st.now + s.params.advertIntervalMs });
    return;
  }
  // Unsigned big-endian comparison of the sender's address with our primary one (keepalived vrrp_saddr_cmp).
  const cmp = Math.sign(compareIp(ev.src, s.params.primaryAddress));
  if (ev.priority === s.effectivePriority) {
    if (cmp === 0) {
      st.act({
        type: "warn",
        message: `equal priority advert received from remote host with our IP address ${ev.srcText}`,
      });
      return;
    }
    if (s.effectivePriority === OWNER) {
      // keepalived: two address owners is a configuration error; it lowers its own (base and effective)
      // priority to 254 as a workaround, which makes the other owner win right below.
      st.act({
        type: "warn",
        message: `CONFIGURATION ERROR: ${ev.srcText} is also address owner (priority 255); reducing local priority to 254`,
      });
      st.set({ basePriority: OWNER - 1, effectivePriority: OWNER - 1 });
      s = st.s;
    }
  }
  if (ev.priority < s.effectivePriority || (ev.priority === s.effectivePriority && cmp < 0)) {
    // RFC: discard. keepalived (lower_prio_no_advert off, its default) answers with its own advert at
    // once to force the new election, and resets its Adver_Timer since it just advertised.
    if (!s.params.lowerPrioNoAdvert) {
      st.act({ type: "send_advert", priority: s.effectivePriority });
      st.set({ adverAt: st.now + s.params.advertIntervalMs });
    }
    st.act({ type: "master_rx_lower_pri", from: ev.srcText, priority: ev.priority });
    return;
  }
  // Higher priority, or equal priority from a higher primary address: -> BACKUP, learning the
  // master's interval in v3 and arming Master_Down_Timer. With higher_prio_send_advert keepalived
  // first advertises once more, so that the other side hears it too (e.g. after a partition).
  if (s.params.higherPrioSendAdvert) st.act({ type: "send_advert", priority: s.effectivePriority });
  const learnt =
    s.params.version === 3 && ev.advertIntervalMs > 0 ? ev.advertIntervalMs : s.masterAdverIntervalMs;
  st.set({ masterAdverIntervalMs: learnt });
  const reason =
    ev.priority > s.effectivePriority
      ? `higher priority advert from ${ev.srcText} (${ev.priority} > ${s.effectivePriority})`
      : `equal priority advert from higher address ${ev.srcText} (priority ${ev.priority})`;
  st.leaveMaster(reason, { currentMaster: ev.srcText });
}

/**
 * Tracking changed the priority (keepalived vrrp_set_effective_priority). As master the new value goes
 * out with the next scheduled advert; as backup the running Master_Down_Timer is moved by the change
 * of Skew_Time, so a raised priority takes over sooner and may now preempt (lower adverts get discarded).
 */
function onPriority(st: Step, effective: number): void {
  const s = st.s;
  const next = clampPriority(s.basePriority, effective);
  if (next === s.effectivePriority) return;
  const patch: Partial<InstanceState> = { effectivePriority: next };
  if (s.state === "BACKUP" && s.masterDownAt !== null) {
    patch.masterDownAt = s.masterDownAt + (mdi(s, next) - mdi(s));
  }
  st.set(patch);
}

function onFault(st: Step, reason: string, active: boolean): void {
  const s = st.s;
  const has = s.faults.includes(reason);
  if (active === has) return;
  const wasFaulted = faulted(s);
  const faults = active ? [...s.faults, reason] : s.faults.filter((f) => f !== reason);
  st.set({ faults });
  const ownToggled = (s.faults.length === 0) !== (faults.length === 0);
  if (active && !wasFaulted && (s.state === "BACKUP" || s.state === "MASTER")) {
    st.enterFault(reason);
  } else if (!active && s.state === "FAULT" && !faulted(st.s)) {
    st.leaveFault(`fault cleared: ${reason}`);
  } else if (ownToggled && s.params.syncGroup) {
    // No transition of ours, but the group's fault hold depends on our own faults (keepalived
    // num_member_fault): let the shell re-evaluate the group.
    st.act({ type: "sync_group", why: "fault" });
  }
}

/**
 * Transitions forced by the sync group (keepalived vrrp_sync.c). FAULT is a hold that lasts until the
 * group releases it with BACKUP; it does not mask this instance's own faults.
 */
function onSync(st: Step, to: "MASTER" | "BACKUP" | "FAULT", reason: string): void {
  const s = st.s;
  switch (to) {
    case "MASTER":
      // vrrp_sync_master -> vrrp_state_goto_master for every member not yet master.
      if (s.state === "BACKUP" && !faulted(s) && !s.forceBackup) st.becomeMaster(reason);
      return;
    case "BACKUP":
      // vrrp_sync_backup: masters leave without a priority-0 advert; held members leave FAULT.
      if (s.syncFault !== null) st.set({ syncFault: null });
      if (s.state === "MASTER") st.leaveMaster(reason);
      else if (s.state === "FAULT" && !faulted(st.s)) st.leaveFault(reason);
      return;
    case "FAULT":
      // vrrp_sync_fault: a master leaves with a priority-0 advert (vrrp_state_leave_master, FAULT).
      if (s.syncFault === null) st.set({ syncFault: reason });
      if (s.state === "BACKUP" || s.state === "MASTER") st.enterFault(reason);
      return;
  }
}

/**
 * Operator maintenance: hand mastership over gracefully (priority-0 advert so a backup takes over
 * after Skew_Time) and stay BACKUP until released. Not a keepalived feature.
 */
function onForceBackup(st: Step, active: boolean): void {
  const s = st.s;
  if (s.forceBackup === active) return;
  st.set({ forceBackup: active });
  if (active && s.state === "MASTER") st.leaveMaster("forced to BACKUP by operator", { sendZero: true });
}
