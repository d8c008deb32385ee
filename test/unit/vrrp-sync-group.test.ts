// Sync groups with keepalived 2.2.7's rules (vrrp_sync.c): rules in isolation, then whole groups of
// real instance state machines driven the way the shell drives them.
import { describe, expect, test } from "bun:test";
import {
  type Action,
  type InstanceParams,
  type InstanceState,
  initialState,
  nextDeadline,
  step,
  type VrrpEvent,
} from "../../agent/vrrp/instance.ts";
import {
  type GroupState,
  groupStateOf,
  memberView,
  type SyncMember,
  syncEvents,
  syncGroupStartParams,
} from "../../agent/vrrp/sync-group.ts";
import { parseIp } from "../../agent/wire/ip.ts";

const m = (name: string, state: SyncMember["state"], more: Partial<SyncMember> = {}): SyncMember => ({
  name,
  state,
  wantMaster: false,
  faults: [],
  syncFault: null,
  ...more,
});

const targets = (evs: ReturnType<typeof syncEvents>) => evs.map((e) => `${e.instance}:${e.event.to}`);

describe("rule 1: MASTER only when every member wants it", () => {
  test("one member wanting MASTER while another hears the master: nobody moves", () => {
    const evs = syncEvents([m("A", "BACKUP", { wantMaster: true }), m("B", "BACKUP")], "A");
    expect(evs).toEqual([]);
  });

  test("all members want MASTER: the asking member goes", () => {
    const evs = syncEvents(
      [
        m("A", "BACKUP", { wantMaster: true }),
        m("B", "BACKUP", { wantMaster: true }),
        m("C", "BACKUP", { wantMaster: true }),
      ],
      "B",
      undefined,
      { group: "G" },
    );
    expect(evs).toEqual([
      {
        instance: "B",
        event: { type: "sync", to: "MASTER", reason: "sync group G: all members want MASTER" },
      },
    ]);
  });

  test("the group already MASTER (others master): the asking member goes", () => {
    expect(targets(syncEvents([m("A", "BACKUP", { wantMaster: true }), m("B", "MASTER")], "A"))).toEqual([
      "A:MASTER",
    ]);
  });

  test("a member still starting (INIT) or faulty blocks it", () => {
    expect(syncEvents([m("A", "BACKUP", { wantMaster: true }), m("B", "INIT")], "A")).toEqual([]);
    expect(
      targets(syncEvents([m("A", "BACKUP", { wantMaster: true }), m("B", "FAULT", { faults: ["x"] })], "A")),
    ).toEqual(["A:FAULT"]);
  });
});

describe("rule 2: one MASTER takes the BACKUP members along", () => {
  test("BACKUP members get MASTER, masters and stopped ones nothing", () => {
    const evs = syncEvents(
      [m("A", "MASTER"), m("B", "BACKUP"), m("C", "MASTER"), m("D", "STOP")],
      "A",
      undefined,
      {
        group: "G",
      },
    );
    expect(evs).toEqual([
      { instance: "B", event: { type: "sync", to: "MASTER", reason: "sync group G: A became MASTER" } },
    ]);
  });

  test("`to` overrides the changed member's state (callers with the old view)", () => {
    expect(targets(syncEvents([m("A", "BACKUP"), m("B", "BACKUP")], "A", "MASTER"))).toEqual(["B:MASTER"]);
  });
});

describe("rule 3: one member back to BACKUP takes the masters along", () => {
  test("MASTER -> BACKUP", () => {
    expect(
      targets(
        syncEvents([m("A", "BACKUP"), m("B", "MASTER"), m("C", "MASTER")], "A", undefined, {
          from: "MASTER",
        }),
      ),
    ).toEqual(["B:BACKUP", "C:BACKUP"]);
  });

  test("a member that only started (INIT -> BACKUP) does not pull masters down", () => {
    expect(syncEvents([m("A", "BACKUP"), m("B", "MASTER")], "A", "BACKUP", { from: "INIT" })).toEqual([]);
  });
});

describe("rule 4: a member's own fault holds the whole group in FAULT", () => {
  test("one faulty member: the others are held", () => {
    const evs = syncEvents(
      [m("A", "FAULT", { faults: ["interface eth0 down"] }), m("B", "MASTER"), m("C", "BACKUP")],
      "A",
      undefined,
      {
        group: "G",
      },
    );
    expect(evs).toEqual([
      { instance: "B", event: { type: "sync", to: "FAULT", reason: "sync group G: A in fault" } },
      { instance: "C", event: { type: "sync", to: "FAULT", reason: "sync group G: A in fault" } },
    ]);
  });

  test("the hold is released only when no member has a fault of its own", () => {
    const still = [
      m("A", "FAULT", { syncFault: "h" }), // A's own fault cleared, B still faulty
      m("B", "FAULT", { faults: ["x"], syncFault: "h" }),
    ];
    // B (faulty) is released from its hold since nobody else is faulty; A stays held
    expect(targets(syncEvents(still, "A"))).toEqual(["B:BACKUP"]);
    const clear = [m("A", "BACKUP"), m("B", "FAULT", { syncFault: "h" })];
    expect(targets(syncEvents(clear, "A"))).toEqual(["B:BACKUP"]);
  });

  test("already held members get nothing again; stopped members are out", () => {
    expect(
      syncEvents(
        [m("A", "FAULT", { faults: ["x"] }), m("B", "FAULT", { syncFault: "h" }), m("C", "STOP")],
        "A",
      ),
    ).toEqual([]);
  });
});

describe("groupStateOf", () => {
  const rows: [SyncMember["state"][], GroupState | null][] = [
    [["MASTER", "MASTER"], "MASTER"],
    [["BACKUP", "BACKUP"], "BACKUP"],
    [["BACKUP", "MASTER"], "BACKUP"],
    [["FAULT", "MASTER"], "FAULT"],
    [["FAULT", "INIT"], "FAULT"],
    [["STOP", "STOP"], "STOP"],
    [["INIT", "BACKUP"], null],
    [[], null],
  ];
  test.each(rows)("%j -> %s", (states, want) => {
    expect(groupStateOf(states)).toBe(want);
  });
});

describe("syncGroupStartParams (keepalived vrrp_complete_init)", () => {
  const p = (basePriority: number): InstanceParams => ({
    name: `p${basePriority}`,
    vrid: 1,
    version: 3,
    family: 4,
    advertIntervalMs: 1000,
    basePriority,
    nopreempt: false,
    preemptDelayMs: 0,
    primaryAddress: parseIp("192.0.2.10")!,
    initialState: "BACKUP",
  });
  test("owners only: they keep the immediate start", () => {
    expect(syncGroupStartParams([p(255), p(255)]).map((x) => [x.syncGroup, x.holdOwnerStart])).toEqual([
      [true, false],
      [true, false],
    ]);
  });
  test("any non-owner: every owner is held", () => {
    expect(syncGroupStartParams([p(255), p(100)]).map((x) => x.holdOwnerStart)).toEqual([true, true]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Whole groups: real state machines, dispatched like the shell does.

class Group {
  states = new Map<string, InstanceState>();
  log: string[] = [];
  constructor(
    names: string[],
    readonly name = "G",
  ) {
    const ps = syncGroupStartParams(
      names.map((n, i) => ({
        name: n,
        vrid: 10 + i,
        version: 3,
        family: 4,
        advertIntervalMs: 1000,
        basePriority: 100,
        nopreempt: false,
        preemptDelayMs: 0,
        primaryAddress: parseIp("192.0.2.10")!,
        initialState: "BACKUP",
      })),
    );
    for (const p of ps) this.states.set(p.name, initialState(p, 0));
  }
  get(n: string): InstanceState {
    return this.states.get(n)!;
  }
  dispatch(n: string, ev: VrrpEvent, now: number): void {
    const before = this.get(n).state;
    const r = step(this.get(n), ev, now);
    this.states.set(n, r.state);
    this.apply(n, before, r.actions, now);
  }
  private apply(n: string, before: InstanceState["state"], actions: Action[], now: number): void {
    for (const a of actions) {
      if (a.type === "transition") this.log.push(`${n}:${a.from}->${a.to}`);
      if (a.type === "send_advert" && a.priority === 0) this.log.push(`${n}:prio0`);
    }
    if (!actions.some((a) => a.type === "sync_group")) return;
    const views = [...this.states].map(([name, s]) => memberView(name, s));
    for (const e of syncEvents(views, n, undefined, { from: before, group: this.name }))
      this.dispatch(e.instance, e.event, now);
  }
  states_(): InstanceState["state"][] {
    return [...this.states.values()].map((s) => s.state);
  }
  /** Fires every due timer up to `until`. */
  runUntil(until: number): void {
    for (;;) {
      let best: [string, number] | null = null;
      for (const [n, s] of this.states) {
        const d = nextDeadline(s);
        if (d !== null && d <= until && (!best || d < best[1])) best = [n, d];
      }
      if (!best) return;
      this.dispatch(best[0], { type: "tick" }, best[1]);
    }
  }
}

const adv = (src: string, priority: number): VrrpEvent => ({
  type: "advert",
  priority,
  advertIntervalMs: 1000,
  src: parseIp(src)!,
  srcText: src,
});

describe("groups of instances", () => {
  test("no master heard anywhere: all become MASTER together once all timers expired", () => {
    const g = new Group(["A", "B"]);
    g.dispatch("A", { type: "startup" }, 0);
    g.dispatch("B", { type: "startup" }, 500);
    g.runUntil(3609.375);
    // A's timer expired first but B's has not: A waits
    expect(g.states_()).toEqual(["BACKUP", "BACKUP"]);
    expect(g.get("A").wantMaster).toBe(true);
    g.runUntil(4109.375);
    expect(g.states_()).toEqual(["MASTER", "MASTER"]);
    expect(groupStateOf(g.states_())).toBe("MASTER");
  });

  test("one member still hearing the remote master keeps the other from taking over", () => {
    const g = new Group(["A", "B"]);
    g.dispatch("A", { type: "startup" }, 0);
    g.dispatch("B", { type: "startup" }, 0);
    for (let t = 1000; t <= 20_000; t += 1000) {
      g.dispatch("B", adv("192.0.2.2", 200), t); // only B's link carries the remote master's adverts
      g.runUntil(t);
    }
    expect(g.states_()).toEqual(["BACKUP", "BACKUP"]);
  });

  test("a master member losing to a higher priority takes the group to BACKUP (no priority 0)", () => {
    const g = new Group(["A", "B"]);
    g.dispatch("A", { type: "startup" }, 0);
    g.dispatch("B", { type: "startup" }, 0);
    g.runUntil(4000);
    expect(g.states_()).toEqual(["MASTER", "MASTER"]);
    g.log = [];
    g.dispatch("A", adv("192.0.2.2", 200), 4500);
    expect(g.states_()).toEqual(["BACKUP", "BACKUP"]);
    expect(g.log).toEqual(["A:MASTER->BACKUP", "B:MASTER->BACKUP"]);
  });

  test("fault of one member: all FAULT (masters send priority 0); back only when the last fault clears", () => {
    const g = new Group(["A", "B", "C"]);
    for (const n of ["A", "B", "C"]) g.dispatch(n, { type: "startup" }, 0);
    g.runUntil(4000);
    expect(g.states_()).toEqual(["MASTER", "MASTER", "MASTER"]);
    g.log = [];
    g.dispatch("A", { type: "fault", reason: "interface eth0 down", active: true }, 5000);
    expect(g.states_()).toEqual(["FAULT", "FAULT", "FAULT"]);
    expect(g.log).toEqual([
      "A:prio0",
      "A:MASTER->FAULT",
      "B:prio0",
      "B:MASTER->FAULT",
      "C:prio0",
      "C:MASTER->FAULT",
    ]);
    // a second member faults on its own, then the first recovers: still all FAULT
    g.dispatch("B", { type: "fault", reason: "script chk failed", active: true }, 5100);
    g.dispatch("A", { type: "fault", reason: "interface eth0 down", active: false }, 5200);
    expect(g.states_()).toEqual(["FAULT", "FAULT", "FAULT"]);
    // the last own fault clears: everybody BACKUP, then MASTER together
    g.dispatch("B", { type: "fault", reason: "script chk failed", active: false }, 5300);
    expect(g.states_()).toEqual(["BACKUP", "BACKUP", "BACKUP"]);
    g.runUntil(5300 + 3609.375);
    expect(g.states_()).toEqual(["MASTER", "MASTER", "MASTER"]);
  });
});
