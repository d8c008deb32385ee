// Tracking, pure: the rise/fall filter of track scripts, the effective priority and fault set that
// tracked interfaces, scripts and files give an instance, and the argv of notify scripts — all with
// keepalived 2.2.7's semantics (keepalived/vrrp/vrrp_scheduler.c vrrp_script_child_thread and
// vrrp_init_script, vrrp_track.c process_script_update_priority / initialise_*_tracking_priorities /
// vrrp_set_effective_priority, core/keepalived_netlink.c for interfaces, vrrp_notify.c).
import type { NotifyScripts } from "../config/model.ts";

// ---------------------------------------------------------------------------------------------------
// Script result filter

/**
 * keepalived keeps one counter per script, `result` in 0 .. rise+fall-1; the script counts as OK when
 * result >= rise. "init": no result yet since start (keepalived SCRIPT_INIT_STATE_INIT); the first
 * result decides at once ("one success is enough", and one failure too).
 */
export type ScriptStatus = "init" | "ok" | "failed";

export interface ScriptFilterState {
  rise: number;
  fall: number;
  result: number;
  init: boolean;
}

export function scriptFilterInit(rise: number, fall: number, initFail = false): ScriptFilterState {
  const r = Math.max(1, Math.trunc(rise));
  const f = Math.max(1, Math.trunc(fall));
  // vrrp_init_script: result = rise - 1 (one success is enough) or, with init_fail, 0 and already
  // decided as failed (needs `rise` successes).
  return initFail
    ? { rise: r, fall: f, result: 0, init: false }
    : { rise: r, fall: f, result: r - 1, init: true };
}

export function scriptStatus(s: ScriptFilterState): ScriptStatus {
  if (s.init) return "init";
  return s.result >= s.rise ? "ok" : "failed";
}

/**
 * One script run (vrrp_script_child_thread). A success while below `rise` counts up; the rise-th in a
 * row flips to OK and jumps to the top (rise+fall-1), so a success also cancels a partial fall. A
 * failure while above `rise` counts down; at `rise` it flips to failed and drops to 0, so a failure
 * also cancels a partial rise. A timed-out or killed script is a failure.
 */
export function scriptFilterStep(
  s: ScriptFilterState,
  ok: boolean,
): { state: ScriptFilterState; changed: boolean } {
  const before = scriptStatus(s);
  const top = s.rise + s.fall - 1;
  let result = s.result;
  if (ok) {
    if (result < s.rise - 1) result++;
    else result = top;
  } else if (result > s.rise) {
    result--;
  } else {
    result = 0;
  }
  const state = { ...s, result, init: false };
  return { state, changed: scriptStatus(state) !== before };
}

/** Mutable convenience wrapper around the pure filter, for the shell. */
export class ScriptFilter {
  private s: ScriptFilterState;
  constructor(rise: number, fall: number, initFail = false) {
    this.s = scriptFilterInit(rise, fall, initFail);
  }
  /** Records one run; true when the status changed. */
  record(ok: boolean): boolean {
    const r = scriptFilterStep(this.s, ok);
    this.s = r.state;
    return r.changed;
  }
  get status(): ScriptStatus {
    return scriptStatus(this.s);
  }
  /** OK now; false while failed and while no result has come in yet (use `status` to tell apart). */
  get ok(): boolean {
    return this.status === "ok";
  }
  /** The value `effectivePriority` wants: true / false, or null before the first result. */
  get okOrNull(): boolean | null {
    const st = this.status;
    return st === "init" ? null : st === "ok";
  }
  get state(): ScriptFilterState {
    return this.s;
  }
}

// ---------------------------------------------------------------------------------------------------
// Effective priority and faults

export interface TrackedInterfaceInput {
  name?: string;
  weight: number;
  weightReverse: boolean;
  up: boolean;
}

export interface TrackedScriptInput {
  name?: string;
  weight: number;
  weightReverse: boolean;
  /** null: no result yet (keepalived init state) */
  ok: boolean | null;
}

export interface TrackedFileInput {
  name?: string;
  weight: number;
  weightReverse: boolean;
  /** the number last read from the file (0 when missing or empty) */
  value: number;
}

/** keepalived clamps a file's weighted value to this; reaching the bottom means FAULT */
const FILE_FAULT = -254;
const FILE_MAX = 253;

/**
 * What one tracked file contributes (keepalived track_file.c update_track_file_status and
 * initialise_vrrp_file_tracking_priorities): "fault", or a priority change. With weight 0 a non-zero
 * value is a fault (with reverse: a zero value). Otherwise value x weight (negated by reverse),
 * clamped to -254..253, is added; -254 or below is a fault.
 */
export function trackedFileStatus(t: TrackedFileInput): "fault" | number {
  if (t.weight === 0) return (t.value !== 0) !== t.weightReverse ? "fault" : 0;
  const v = t.value * t.weight * (t.weightReverse ? -1 : 1);
  if (v <= FILE_FAULT) return "fault";
  return Math.min(v, FILE_MAX);
}

export interface TrackingResult {
  /** effective priority: base + weights, clamped to 1..254; the owner (255) stays 255 */
  priority: number;
  /** active fault reasons, one per failing weight-0 object, stable text (used as fault event keys) */
  faults: string[];
  /**
   * weight-0 scripts with no result yet. keepalived keeps such an instance out of BACKUP/MASTER until
   * they report (vrrp_init_state, num_script_init) without calling it a fault: the shell should hold
   * `startup` until this is empty (scripts run immediately at start, so this lasts one run).
   */
  pending: string[];
}

const OWNER = 255;

/**
 * keepalived's tracking arithmetic. Per object, with m = -1 for `reverse` and +1 otherwise:
 * - weight 0: the instance goes to FAULT while the object is down/failing — or, with reverse, while it
 *   is up/OK (keepalived: `up != (multiplier == 1)` -> down_instance);
 * - weight > 0: adds weight·m while up/OK, nothing while down/failing;
 * - weight < 0: adds weight·m (i.e. subtracts |weight| unless reverse) while down/failing, nothing while up.
 * The sum is clamped to 1..254 (vrrp_set_effective_priority); an address owner (base 255) ignores
 * weights entirely but still faults.
 * Scripts with no result yet add nothing (initialise_track_script_state) and weight-0 ones are pending.
 */
export function effectivePriority(
  base: number,
  trackedInterfaces: readonly TrackedInterfaceInput[],
  trackedScripts: readonly TrackedScriptInput[],
  trackedFiles: readonly TrackedFileInput[] = [],
): TrackingResult {
  let total = base;
  const faults: string[] = [];
  const pending: string[] = [];
  trackedInterfaces.forEach((t, i) => {
    const name = t.name ?? `#${i}`;
    const m = t.weightReverse ? -1 : 1;
    if (t.weight === 0) {
      if (t.up === t.weightReverse)
        faults.push(t.weightReverse ? `interface ${name} up (reverse)` : `interface ${name} down`);
    } else if (t.up ? t.weight > 0 : t.weight < 0) {
      total += t.weight * m;
    }
  });
  trackedScripts.forEach((t, i) => {
    const name = t.name ?? `#${i}`;
    const m = t.weightReverse ? -1 : 1;
    if (t.ok === null) {
      if (t.weight === 0) pending.push(`script ${name}`);
      return;
    }
    if (t.weight === 0) {
      if (t.ok === t.weightReverse)
        faults.push(t.weightReverse ? `script ${name} succeeded (reverse)` : `script ${name} failed`);
    } else if (t.ok ? t.weight > 0 : t.weight < 0) {
      total += t.weight * m;
    }
  });
  trackedFiles.forEach((t, i) => {
    const st = trackedFileStatus(t);
    if (st === "fault") faults.push(`file ${t.name ?? `#${i}`}`);
    else total += st;
  });
  let priority: number;
  if (base === OWNER) priority = OWNER;
  else if (total < 1) priority = 1;
  else if (total >= OWNER) priority = OWNER - 1;
  else priority = total;
  return { priority, faults, pending };
}

// ---------------------------------------------------------------------------------------------------
// Notify scripts

export type NotifyState = "MASTER" | "BACKUP" | "FAULT" | "STOP";

/**
 * The arguments keepalived appends to the generic `notify` script (notify_script_exec):
 * `$1` INSTANCE|GROUP, `$2` name, `$3` MASTER|BACKUP|FAULT|STOP, `$4` priority (0 for a group).
 */
export function notifyArgs(
  kind: "INSTANCE" | "GROUP",
  name: string,
  state: string,
  priority: number,
): [string, string, string, string] {
  return [kind, name, state, String(kind === "GROUP" ? 0 : priority)];
}

export interface NotifyCall {
  /** the configured command line (the shell splits it as keepalived does) */
  command: string;
  /** append `notifyArgs(...)` — only the generic `notify` gets them */
  withArgs: boolean;
  /** keepalived gives STOP notifies 1 s (system_call_script with TIMER_HZ) since it is exiting */
  timeoutMs?: number;
}

/** The states keepalived notifies (send_instance_notifies / send_group_notifies): not INIT. */
export const NOTIFIED_STATES: ReadonlySet<string> = new Set(["MASTER", "BACKUP", "FAULT", "STOP", "DELETED"]);

/**
 * Which scripts run for entering `state`, in keepalived's order (send_instance_notifies /
 * send_group_notifies): the state's own script (notify_master, notify_backup, notify_fault,
 * notify_stop) without arguments, then the generic `notify` with the four arguments.
 * Nothing runs for other states (INIT).
 */
export function notifyScripts(scripts: NotifyScripts, state: string): NotifyCall[] {
  const own =
    state === "MASTER"
      ? scripts.master
      : state === "BACKUP"
        ? scripts.backup
        : state === "FAULT"
          ? scripts.fault
          : state === "STOP"
            ? scripts.stop
            : state === "DELETED"
              ? scripts.deleted
              : undefined;
  if (!NOTIFIED_STATES.has(state)) return [];
  // keepalived runs STOP notifies (own and generic) with a 1 s limit since it is exiting.
  const limit = state === "STOP" ? { timeoutMs: 1000 } : {};
  const out: NotifyCall[] = [];
  if (own) out.push({ command: own, withArgs: false, ...limit });
  if (scripts.any) out.push({ command: scripts.any, withArgs: true, ...limit });
  return out;
}
