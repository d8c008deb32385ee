// Sync groups, pure: which `sync` events the members of a vrrp_sync_group must receive after one of
// them changed, with keepalived 2.2.7's rules (keepalived/vrrp/vrrp_sync.c vrrp_sync_can_goto_master,
// vrrp_sync_master, vrrp_sync_backup, vrrp_sync_fault; vrrp_track.c down_instance;
// vrrp_scheduler.c try_up_instance and the VRRP_TSM table; vrrp.c vrrp_complete_init):
//
// 1. MASTER only together. A member whose Master_Down_Timer expires does not take over alone: it
//    "wants" MASTER and stays BACKUP until every member wants it (or the group already is MASTER);
//    then all become MASTER. This avoids half the group moving when only one link hiccups.
// 2. One member MASTER -> the others in BACKUP follow to MASTER (TSM BACKUP->MASTER: vrrp_sync_master).
// 3. One member back to BACKUP (from MASTER or out of FAULT) -> the masters follow to BACKUP, without
//    priority-0 adverts (TSM MASTER->BACKUP: vrrp_sync_backup).
// 4. One member with a fault of its own -> every other member is held in FAULT (a master sends
//    priority 0 on the way); nobody leaves FAULT until no member has a fault of its own any more
//    (keepalived counts num_member_fault), then all return to BACKUP together.
// Members in STOP take no part. The shell calls `syncEvents` after applying an instance's actions
// whenever they contain `sync_group`, dispatches the returned events in order, and repeats for the
// `sync_group` actions those produce; the rules are idempotent, so the cascade settles.
import type { InstanceParams, InstanceState, VrrpEvent, VrrpState } from "./instance.ts";

export interface SyncMember {
  name: string;
  state: VrrpState;
  /** BACKUP member whose Master_Down_Timer expired (InstanceState.wantMaster) */
  wantMaster?: boolean;
  /** the member's own fault reasons (InstanceState.faults), not the group's hold */
  faults?: readonly string[];
  /** the group's hold on this member (InstanceState.syncFault) */
  syncFault?: string | null;
}

export interface SyncEvent {
  instance: string;
  event: Extract<VrrpEvent, { type: "sync" }>;
}

/** The view of one member that `syncEvents` needs. */
export function memberView(name: string, s: InstanceState): SyncMember {
  return { name, state: s.state, wantMaster: s.wantMaster, faults: s.faults, syncFault: s.syncFault };
}

const ownFaulty = (m: SyncMember): boolean => (m.faults?.length ?? 0) > 0;
const held = (m: SyncMember): boolean => m.syncFault !== undefined && m.syncFault !== null;

/**
 * The `sync` events for the other members (and, for rule 1, the changed member itself) after member
 * `changed` changed. `to` overrides the changed member's state in `members` (for callers holding the
 * state from before the step); `opts.from` is the state it came from, when known: a member that only
 * started up (INIT -> BACKUP) does not pull masters down, as in keepalived (vrrp_init_state runs no
 * TSM handler).
 */
export function syncEvents(
  members: readonly SyncMember[],
  changed: string,
  to?: VrrpState,
  opts: { from?: VrrpState; group?: string } = {},
): SyncEvent[] {
  const tag = opts.group ? `sync group ${opts.group}` : "sync group";
  const view = members.map((m) => (m.name === changed && to !== undefined ? { ...m, state: to } : m));
  const live = view.filter((m) => m.state !== "STOP");
  const c = live.find((m) => m.name === changed);
  const out: SyncEvent[] = [];
  const send = (instance: string, target: "MASTER" | "BACKUP" | "FAULT", reason: string) =>
    out.push({ instance, event: { type: "sync", to: target, reason } });

  // Rule 4: the fault hold of each member follows whether any *other* member has a fault of its own.
  for (const m of live) {
    const culprit = live.find((o) => o !== m && ownFaulty(o));
    if (culprit && !held(m)) send(m.name, "FAULT", `${tag}: ${culprit.name} in fault`);
    else if (!culprit && held(m)) send(m.name, "BACKUP", `${tag}: all members out of fault`);
  }
  if (!c) return out;
  const heldAfter = (m: SyncMember) => live.some((o) => o !== m && ownFaulty(o));
  const others = live.filter((m) => m !== c);

  if (c.state === "MASTER") {
    // Rule 2.
    for (const o of others) {
      if (o.state === "BACKUP" && !ownFaulty(o) && !heldAfter(o))
        send(o.name, "MASTER", `${tag}: ${c.name} became MASTER`);
    }
  } else if (c.state === "BACKUP") {
    const canGoMaster =
      c.wantMaster === true &&
      !ownFaulty(c) &&
      !heldAfter(c) &&
      others.every(
        (o) => o.state === "MASTER" || (o.state === "BACKUP" && o.wantMaster === true && !heldAfter(o)),
      );
    if (canGoMaster) {
      // Rule 1: the whole group wants MASTER (or already is): this member goes, rule 2 brings the rest.
      send(c.name, "MASTER", `${tag}: all members want MASTER`);
    } else if (opts.from !== "INIT" && opts.from !== "STOP") {
      // Rule 3.
      for (const o of others) {
        if (o.state === "MASTER") send(o.name, "BACKUP", `${tag}: ${c.name} became BACKUP`);
      }
    }
  }
  return out;
}

export type GroupState = "MASTER" | "BACKUP" | "FAULT" | "STOP";

/**
 * The group's state for its notify scripts (keepalived sets it in vrrp_sync_master/backup/fault):
 * FAULT if any member is in FAULT, MASTER when all are, BACKUP when all are BACKUP or MASTER with at
 * least one BACKUP, STOP when all stopped; null while members are still starting (INIT).
 */
export function groupStateOf(states: readonly VrrpState[]): GroupState | null {
  if (states.length === 0) return null;
  if (states.some((s) => s === "FAULT")) return "FAULT";
  if (states.every((s) => s === "MASTER")) return "MASTER";
  if (states.every((s) => s === "STOP")) return "STOP";
  if (states.every((s) => s === "BACKUP" || s === "MASTER")) return "BACKUP";
  return null;
}

/**
 * Startup parameters of a group's members (keepalived vrrp_complete_init: "if any sync group has a
 * member wanting to start in master state, then all can start in master state" — otherwise none
 * does). Only address owners start as master (instance.ts), so a group with any non-owner member
 * holds every owner's immediate takeover; a group of owners only keeps it. Every member is marked
 * `syncGroup`.
 */
export function syncGroupStartParams(members: readonly InstanceParams[]): InstanceParams[] {
  const anyNonOwner = members.some((p) => p.basePriority !== 255);
  return members.map((p) => ({ ...p, syncGroup: true, holdOwnerStart: anyNonOwner }));
}
