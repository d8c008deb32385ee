// The VRRP state machine against RFC 5798 §6.4 (RFC 3768 §6.4 where v2 differs) and keepalived
// 2.2.7's behaviour, row by row, plus a simulated network of instances (fast-check).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type Action,
  type InstanceParams,
  type InstanceState,
  initialState,
  masterDownIntervalMs,
  nextDeadline,
  skewTimeMs,
  step,
  type VrrpEvent,
} from "../../agent/vrrp/instance.ts";
import { coalesceWindowMs } from "../../agent/vrrp/runtime.ts";
import { formatIp, parseIp } from "../../agent/wire/ip.ts";

const ME = "192.0.2.10";

function params(over: Partial<InstanceParams> = {}): InstanceParams {
  return {
    name: "VI_1",
    vrid: 51,
    version: 3,
    family: 4,
    advertIntervalMs: 1000,
    basePriority: 100,
    nopreempt: false,
    preemptDelayMs: 0,
    primaryAddress: parseIp(ME)!,
    initialState: "BACKUP",
    ...over,
  };
}

function advert(src: string, priority: number, advertIntervalMs = 1000): VrrpEvent {
  return { type: "advert", priority, advertIntervalMs, src: parseIp(src)!, srcText: src };
}

/** Runs events in order; returns the final state and the actions of the last event. */
function run(s: InstanceState, evs: [VrrpEvent, number][]): { state: InstanceState; actions: Action[] } {
  let r = { state: s, actions: [] as Action[] };
  for (const [ev, at] of evs) r = step(r.state, ev, at);
  return r;
}

function started(over: Partial<InstanceParams> = {}, at = 0): InstanceState {
  return step(initialState(params(over), at), { type: "startup" }, at).state;
}

/** A MASTER reached through Master_Down_Timer expiry at time MDI. */
function master(over: Partial<InstanceParams> = {}): InstanceState {
  const s = started(over);
  const r = step(s, { type: "tick" }, s.masterDownAt!);
  expect(r.state.state).toBe("MASTER");
  return r.state;
}

const types = (as: Action[]) => as.map((a) => a.type);

describe("timers (RFC 5798 §6.1, RFC 3768 §6.1, keepalived VRRP_TIMER_SKEW in µs)", () => {
  // [version, priority, Master_Adver_Interval ms, Skew_Time ms, Master_Down_Interval ms]
  const rows: [2 | 3, number, number, number, number][] = [
    [3, 100, 1000, 609.375, 3609.375],
    [2, 100, 1000, 609.375, 3609.375],
    // v2 skew is (256 − p)/256 s whatever the interval
    [2, 100, 3000, 609.375, 9609.375],
    [3, 100, 3000, 1828.125, 10828.125],
    [3, 254, 1000, 7.812, 3007.812], // 7812.5 µs truncated
    [2, 254, 1000, 7.812, 3007.812],
    [3, 255, 1000, 3.906, 3003.906], // 3906.25 µs truncated
    [3, 1, 1000, 996.093, 3996.093], // 996093.75 µs truncated
    [2, 1, 1000, 996.093, 3996.093],
    [3, 1, 100, 99.609, 399.609], // 99609.375 µs
    [3, 200, 50, 10.937, 160.937], // 56 × 5 cs × 625 / 16 = 10937.5 µs
    [3, 1, 40950, 40790.039, 163640.039], // 12-bit maximum, 4095 cs
  ];
  test.each(rows)("v%d priority %d interval %d ms: skew %d, down %d", (v, p, iv, skew, down) => {
    expect(skewTimeMs(v, p, iv)).toBeCloseTo(skew, 9);
    expect(masterDownIntervalMs(v, p, iv)).toBeCloseTo(down, 9);
  });

  test("priority 100, 1 s, v3: exactly 609.375 ms (no float drift)", () => {
    expect(skewTimeMs(3, 100, 1000)).toBe(609.375);
    expect(masterDownIntervalMs(3, 100, 1000)).toBe(3609.375);
  });

  test("higher priority always has a shorter (or equal) Master_Down_Interval", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 254 }), fc.integer({ min: 1, max: 4095 }), (p, cs) => {
        expect(masterDownIntervalMs(3, p + 1, cs * 10)).toBeLessThanOrEqual(
          masterDownIntervalMs(3, p, cs * 10),
        );
      }),
    );
  });
});

describe("RFC 5798 §6.4.1 Initialize", () => {
  test("not started: INIT, no timer", () => {
    const s = initialState(params(), 0);
    expect(s.state).toBe("INIT");
    expect(nextDeadline(s)).toBeNull();
    // events other than startup do nothing before it
    expect(step(s, advert("192.0.2.2", 200), 1).actions).toEqual([]);
    expect(step(s, { type: "tick" }, 1).state.state).toBe("INIT");
  });

  test("Priority = 255: send ADVERTISEMENT, announce, Adver_Timer, -> MASTER", () => {
    const r = step(initialState(params({ basePriority: 255 }), 5), { type: "startup" }, 5);
    expect(r.state.state).toBe("MASTER");
    expect(r.actions).toEqual([
      { type: "send_advert", priority: 255 },
      { type: "add_vips" },
      { type: "announce" },
      { type: "transition", from: "INIT", to: "MASTER", reason: "address owner (priority 255) at startup" },
    ]);
    expect(nextDeadline(r.state)).toBe(1005);
  });

  test("Priority < 255: Master_Adver_Interval = Advertisement_Interval, Master_Down_Timer, -> BACKUP", () => {
    const r = step(initialState(params({ advertIntervalMs: 2000 }), 10), { type: "startup" }, 10);
    expect(r.state.state).toBe("BACKUP");
    expect(r.state.masterAdverIntervalMs).toBe(2000);
    expect(r.actions).toEqual([{ type: "transition", from: "INIT", to: "BACKUP", reason: "startup" }]);
    expect(nextDeadline(r.state)).toBe(10 + masterDownIntervalMs(3, 100, 2000));
  });

  test("keepalived: `state MASTER` below 255 still starts BACKUP with a full Master_Down_Interval", () => {
    const s = started({ initialState: "MASTER", nopreempt: true, preemptDelayMs: 5000 });
    expect(s.state).toBe("BACKUP");
    expect(s.masterDownAt).toBe(3609.375);
    // ... and keepalived clears nopreempt and preempt_delay for it (vrrp_complete_instance)
    expect(s.params.nopreempt).toBe(false);
    expect(s.params.preemptDelayMs).toBe(0);
  });

  test("keepalived: nopreempt is cleared for the owner, preempt_delay with nopreempt", () => {
    expect(initialState(params({ basePriority: 255, nopreempt: true }), 0).params.nopreempt).toBe(false);
    expect(initialState(params({ nopreempt: true, preemptDelayMs: 3000 }), 0).params.preemptDelayMs).toBe(0);
  });

  test("owner in a mixed sync group is held back (holdOwnerStart) and starts BACKUP", () => {
    expect(started({ basePriority: 255, holdOwnerStart: true }).state).toBe("BACKUP");
  });

  test("a fault active at startup: -> FAULT, no timers", () => {
    const s0 = step(
      initialState(params(), 0),
      { type: "fault", reason: "interface eth0 down", active: true },
      0,
    ).state;
    expect(s0.state).toBe("INIT");
    const r = step(s0, { type: "startup" }, 1);
    expect(r.state.state).toBe("FAULT");
    expect(r.actions).toEqual([
      { type: "transition", from: "INIT", to: "FAULT", reason: "startup with fault: interface eth0 down" },
    ]);
    expect(nextDeadline(r.state)).toBeNull();
  });

  test("startup twice is ignored", () => {
    const s = started();
    expect(step(s, { type: "startup" }, 100)).toEqual({ state: s, actions: [] });
  });
});

describe("RFC 5798 §6.4.2 Backup", () => {
  test("Shutdown: cancel Master_Down_Timer, -> STOP, nothing sent", () => {
    const r = step(started(), { type: "shutdown" }, 50);
    expect(r.state.state).toBe("STOP");
    expect(r.actions).toEqual([{ type: "transition", from: "BACKUP", to: "STOP", reason: "shutdown" }]);
    expect(nextDeadline(r.state)).toBeNull();
  });

  test("Master_Down_Timer fires: send ADVERTISEMENT, announce, Adver_Timer, -> MASTER", () => {
    const s = started();
    const r = step(s, { type: "tick" }, 3609.375);
    expect(r.state.state).toBe("MASTER");
    expect(r.actions).toEqual([
      { type: "send_advert", priority: 100 },
      { type: "add_vips" },
      { type: "announce" },
      { type: "transition", from: "BACKUP", to: "MASTER", reason: "master down timer expired" },
    ]);
    expect(r.state.adverAt).toBe(4609.375);
    expect(r.state.masterDownAt).toBeNull();
  });

  test("a tick before the deadline does nothing", () => {
    const s = started();
    expect(step(s, { type: "tick" }, 3609)).toEqual({ state: s, actions: [] });
  });

  test("ADVERTISEMENT with Priority 0: Master_Down_Timer = Skew_Time", () => {
    const r = step(started(), advert("192.0.2.2", 0), 1000);
    expect(r.actions).toEqual([]);
    expect(r.state.masterDownAt).toBe(1000 + 609.375);
    const t = step(r.state, { type: "tick" }, 1609.375);
    expect(t.state.state).toBe("MASTER");
    expect(t.actions.at(-1)).toEqual({
      type: "transition",
      from: "BACKUP",
      to: "MASTER",
      reason: "priority 0 advert from 192.0.2.2",
    });
  });

  test("priority 0 uses the learnt Master_Adver_Interval for Skew_Time (v3)", () => {
    const s = run(started(), [
      [advert("192.0.2.2", 150, 200), 100],
      [advert("192.0.2.2", 0, 200), 200],
    ]).state;
    expect(s.masterDownAt).toBe(200 + skewTimeMs(3, 100, 200));
  });

  // [case, nopreempt, advert priority]: Preempt_Mode False, or Priority >= local -> reset the timer
  const resets: [string, boolean, number][] = [
    ["higher priority", false, 150],
    ["equal priority", false, 100],
    ["lower priority with nopreempt", true, 50],
    ["higher priority with nopreempt", true, 150],
  ];
  test.each(resets)("ADVERTISEMENT, %s: learn interval, reset Master_Down_Timer", (_n, nopreempt, prio) => {
    const r = step(started({ nopreempt }), advert("192.0.2.2", prio, 500), 2000);
    expect(r.actions).toEqual([]);
    expect(r.state.state).toBe("BACKUP");
    expect(r.state.masterAdverIntervalMs).toBe(500);
    expect(r.state.masterDownAt).toBe(2000 + masterDownIntervalMs(3, 100, 500));
    expect(r.state.currentMaster).toBe("192.0.2.2");
  });

  test("RFC 3768 (v2): the configured interval stays Master_Adver_Interval", () => {
    const r = step(started({ version: 2 }), advert("192.0.2.2", 150, 1000), 2000);
    expect(r.state.masterAdverIntervalMs).toBe(1000);
    expect(r.state.masterDownAt).toBe(2000 + 3609.375);
    // even if a different one got through (validate.ts drops those), it is not learnt
    const r2 = step(started({ version: 2 }), advert("192.0.2.2", 150, 3000), 2000);
    expect(r2.state.masterAdverIntervalMs).toBe(1000);
  });

  test("lower priority with preemption: discarded, timer not reset, take over at expiry (keepalived)", () => {
    const s = started(); // down at 3609.375
    const r = step(s, advert("192.0.2.2", 50), 3000);
    expect(r.actions).toEqual([]);
    expect(r.state.masterDownAt).toBe(3609.375);
    const t = step(r.state, { type: "tick" }, 3609.375);
    expect(t.state.state).toBe("MASTER");
    expect(t.actions.at(-1)).toMatchObject({
      reason: "preempting lower priority master 192.0.2.2 (priority 50 < 100)",
    });
  });

  test("an interval of 0 is not learnt", () => {
    const r = step(started(), advert("192.0.2.2", 150, 0), 100);
    expect(r.state.masterAdverIntervalMs).toBe(1000);
  });
});

describe("preempt_delay (keepalived: counted from the first lower-priority advert)", () => {
  const P = { preemptDelayMs: 10_000 };

  test("lower adverts are accepted until the delay has passed, then we preempt", () => {
    let s = started(P);
    // the first lower advert starts the delay and is accepted (timer reset)
    s = step(s, advert("192.0.2.2", 50), 1000).state;
    expect(s.preemptAt).toBe(11_000);
    expect(s.masterDownAt).toBe(1000 + 3609.375);
    // within the delay: accepted
    for (let t = 2000; t < 11_000; t += 1000) {
      s = step(s, advert("192.0.2.2", 50), t).state;
      expect(s.masterDownAt).toBe(t + 3609.375);
      expect(s.state).toBe("BACKUP");
    }
    // once it has passed (keepalived: preempt_time > now no longer holds): discarded, the timer runs out
    s = step(s, advert("192.0.2.2", 50), 11_000).state;
    s = step(s, advert("192.0.2.2", 50), 12_000).state;
    expect(s.masterDownAt).toBe(10_000 + 3609.375);
    const r = step(s, { type: "tick" }, 10_000 + 3609.375);
    expect(r.state.state).toBe("MASTER");
  });

  test("a higher (or equal) priority advert cancels the delay", () => {
    let s = step(started(P), advert("192.0.2.2", 50), 1000).state;
    s = step(s, advert("192.0.2.3", 100), 1500).state;
    expect(s.preemptAt).toBeNull();
  });

  test("entering BACKUP clears it", () => {
    let s = step(started(P), advert("192.0.2.2", 50), 1000).state;
    s = step(s, { type: "fault", reason: "x", active: true }, 2000).state;
    s = step(s, { type: "fault", reason: "x", active: false }, 3000).state;
    expect(s.state).toBe("BACKUP");
    expect(s.preemptAt).toBeNull();
  });
});

describe("RFC 5798 §6.4.3 Master", () => {
  test("Shutdown: cancel Adver_Timer, send priority 0, release VIPs, -> STOP", () => {
    const r = step(master(), { type: "shutdown" }, 5000);
    expect(r.actions).toEqual([
      { type: "send_advert", priority: 0 },
      { type: "stop_announce" },
      { type: "remove_vips" },
      { type: "transition", from: "MASTER", to: "STOP", reason: "shutdown" },
    ]);
    expect(nextDeadline(r.state)).toBeNull();
  });

  test("Adver_Timer fires: send ADVERTISEMENT, reset Adver_Timer", () => {
    const m = master(); // became master at 3609.375
    const r = step(m, { type: "tick" }, m.adverAt!);
    expect(r.actions).toEqual([{ type: "send_advert", priority: 100 }]);
    expect(r.state.adverAt).toBe(m.adverAt! + 1000);
    // re-armed from the handling time, like keepalived
    expect(step(m, { type: "tick" }, m.adverAt! + 7).state.adverAt).toBe(m.adverAt! + 1007);
  });

  test("ADVERTISEMENT with Priority 0: send ADVERTISEMENT, reset Adver_Timer", () => {
    const r = step(master(), advert("192.0.2.2", 0), 4000);
    expect(r.state.state).toBe("MASTER");
    expect(r.actions).toEqual([{ type: "send_advert", priority: 100 }]);
    expect(r.state.adverAt).toBe(5000);
  });

  // [case, advert priority, source, goes BACKUP]
  const rows: [string, number, string, boolean][] = [
    ["higher priority", 101, "192.0.2.2", true],
    ["equal priority, greater address", 100, "192.0.2.11", true],
    ["equal priority, greater address (last octet 200 vs 10: unsigned)", 100, "192.0.2.200", true],
    ["equal priority, smaller address", 100, "192.0.2.9", false],
    ["lower priority, greater address", 99, "192.0.2.250", false],
  ];
  test.each(rows)("ADVERTISEMENT, %s", (_n, prio, src, toBackup) => {
    const r = step(master(), advert(src, prio, 300), 4000);
    if (toBackup) {
      expect(r.state.state).toBe("BACKUP");
      expect(types(r.actions)).toEqual(["stop_announce", "remove_vips", "transition"]);
      expect(r.state.adverAt).toBeNull();
      // v3: Master_Adver_Interval learnt from the advert, Master_Down_Timer armed
      expect(r.state.masterAdverIntervalMs).toBe(300);
      expect(r.state.masterDownAt).toBe(4000 + masterDownIntervalMs(3, 100, 300));
      expect(r.state.currentMaster).toBe(src);
    } else {
      // keepalived answers a lower-priority advert with its own at once (RFC: discard)
      expect(r.state.state).toBe("MASTER");
      expect(r.actions).toEqual([
        { type: "send_advert", priority: 100 },
        { type: "master_rx_lower_pri", from: src, priority: prio },
      ]);
      expect(r.state.adverAt).toBe(5000);
    }
  });

  test("transition reasons name the cause", () => {
    expect(step(master(), advert("192.0.2.2", 150), 4000).actions.at(-1)).toEqual({
      type: "transition",
      from: "MASTER",
      to: "BACKUP",
      reason: "higher priority advert from 192.0.2.2 (150 > 100)",
    });
    expect(step(master(), advert("192.0.2.99", 100), 4000).actions.at(-1)).toMatchObject({
      reason: "equal priority advert from higher address 192.0.2.99 (priority 100)",
    });
  });

  test("IPv6 tie-break compares all 16 bytes unsigned", () => {
    const me = "fe80::1:ff00";
    const m = master({ family: 6, primaryAddress: parseIp(me)! });
    expect(step(m, advert("fe80::1:ff01", 100), 4000).state.state).toBe("BACKUP");
    expect(step(m, advert("fe80::1:feff", 100), 4000).state.state).toBe("MASTER");
    expect(step(m, advert("fe80::2:0", 100), 4000).state.state).toBe("BACKUP");
  });

  test("equal priority from our own address: warning only", () => {
    const m = master();
    const r = step(m, advert(ME, 100), 4000);
    expect(r.state.state).toBe("MASTER");
    expect(types(r.actions)).toEqual(["warn"]);
  });

  test("RFC 3768 (v2): higher priority -> BACKUP with the configured interval", () => {
    const r = step(master({ version: 2 }), advert("192.0.2.2", 150, 1000), 4000);
    expect(r.state.state).toBe("BACKUP");
    expect(r.state.masterDownAt).toBe(4000 + 3609.375);
  });

  test("keepalived: two address owners -> ours drops to 254 and yields", () => {
    const m = step(initialState(params({ basePriority: 255 }), 0), { type: "startup" }, 0).state;
    const r = step(m, advert("192.0.2.2", 255), 500);
    expect(r.state.state).toBe("BACKUP");
    expect(r.state.basePriority).toBe(254);
    expect(r.state.effectivePriority).toBe(254);
    expect(types(r.actions)).toEqual(["warn", "stop_announce", "remove_vips", "transition"]);
    // ... even when our address is the higher one
    const hi = step(
      initialState(params({ basePriority: 255, primaryAddress: parseIp("192.0.2.250")! }), 0),
      { type: "startup" },
      0,
    ).state;
    expect(step(hi, advert("192.0.2.2", 255), 500).state.state).toBe("BACKUP");
  });
});

describe("faults", () => {
  test("several reasons: FAULT on the first, BACKUP only when the last clears", () => {
    let r = step(master(), { type: "fault", reason: "interface eth0 down", active: true }, 5000);
    // keepalived: a master going to FAULT sends priority 0 and releases its VIPs
    expect(r.actions).toEqual([
      { type: "send_advert", priority: 0 },
      { type: "stop_announce" },
      { type: "remove_vips" },
      { type: "transition", from: "MASTER", to: "FAULT", reason: "interface eth0 down" },
    ]);
    expect(nextDeadline(r.state)).toBeNull();
    r = step(r.state, { type: "fault", reason: "script chk_http failed", active: true }, 5100);
    expect(r.actions).toEqual([]);
    expect(r.state.faults).toEqual(["interface eth0 down", "script chk_http failed"]);
    r = step(r.state, { type: "fault", reason: "interface eth0 down", active: false }, 5200);
    expect(r.state.state).toBe("FAULT");
    expect(r.actions).toEqual([]);
    r = step(r.state, { type: "fault", reason: "script chk_http failed", active: false }, 5300);
    expect(r.state.state).toBe("BACKUP");
    expect(r.actions).toEqual([
      { type: "transition", from: "FAULT", to: "BACKUP", reason: "fault cleared: script chk_http failed" },
    ]);
    expect(r.state.masterDownAt).toBe(5300 + 3609.375);
  });

  test("BACKUP -> FAULT sends nothing; a repeated or unknown event is a no-op", () => {
    const s = started();
    const r = step(s, { type: "fault", reason: "a", active: true }, 10);
    expect(r.actions).toEqual([{ type: "transition", from: "BACKUP", to: "FAULT", reason: "a" }]);
    expect(step(r.state, { type: "fault", reason: "a", active: true }, 11).actions).toEqual([]);
    expect(step(s, { type: "fault", reason: "b", active: false }, 12)).toEqual({ state: s, actions: [] });
  });

  test("adverts and ticks are ignored in FAULT", () => {
    const f = step(started(), { type: "fault", reason: "a", active: true }, 10).state;
    expect(step(f, advert("192.0.2.2", 0), 20)).toEqual({ state: f, actions: [] });
    expect(step(f, { type: "tick" }, 1e9)).toEqual({ state: f, actions: [] });
  });

  test("leaving FAULT resets Master_Adver_Interval to the configured one", () => {
    let s = step(started(), advert("192.0.2.2", 150, 300), 10).state;
    expect(s.masterAdverIntervalMs).toBe(300);
    s = run(s, [
      [{ type: "fault", reason: "a", active: true }, 20],
      [{ type: "fault", reason: "a", active: false }, 30],
    ]).state;
    expect(s.masterAdverIntervalMs).toBe(1000);
  });

  test("keepalived: the owner leaves FAULT through BACKUP and takes over when its timer expires", () => {
    const m = step(initialState(params({ basePriority: 255 }), 0), { type: "startup" }, 0).state;
    let r = run(m, [
      [{ type: "fault", reason: "a", active: true }, 100],
      [{ type: "fault", reason: "a", active: false }, 200],
    ]);
    expect(r.state.state).toBe("BACKUP");
    expect(r.state.masterDownAt).toBe(200 + masterDownIntervalMs(3, 255, 1000));
    // the lower-priority master that took over meanwhile is preempted at expiry
    r = step(r.state, advert("192.0.2.2", 100), 1200);
    expect(r.state.masterDownAt).toBe(200 + 3003.906);
    expect(step(r.state, { type: "tick" }, 3203.906).state.state).toBe("MASTER");
  });
});

describe("priority changes from tracking", () => {
  test("clamped to 1..254; the owner is never changed", () => {
    const s = started();
    expect(step(s, { type: "priority", effective: 300 }, 1).state.effectivePriority).toBe(254);
    expect(step(s, { type: "priority", effective: -20 }, 1).state.effectivePriority).toBe(1);
    const o = started({ basePriority: 255, holdOwnerStart: true });
    expect(step(o, { type: "priority", effective: 100 }, 1).state.effectivePriority).toBe(255);
  });

  test("as master the new priority goes out with the next scheduled advert", () => {
    const m = master();
    const r = step(m, { type: "priority", effective: 80 }, 4000);
    expect(r.actions).toEqual([]);
    expect(step(r.state, { type: "tick" }, r.state.adverAt!).actions).toEqual([
      { type: "send_advert", priority: 80 },
    ]);
  });

  test("as backup the Master_Down_Timer moves by the change of Skew_Time (keepalived)", () => {
    const s = started(); // 3609.375 at priority 100
    const r = step(s, { type: "priority", effective: 200 }, 1000);
    expect(r.state.masterDownAt).toBe(3000 + skewTimeMs(3, 200, 1000));
  });

  test("a raised priority lets a backup preempt the current master", () => {
    let s = step(started(), advert("192.0.2.2", 150), 1000).state; // accepted
    s = step(s, { type: "priority", effective: 200 }, 1500).state;
    s = step(s, advert("192.0.2.2", 150), 2000).state; // now lower: discarded
    expect(s.masterDownAt).toBe(1000 + masterDownIntervalMs(3, 200, 1000));
    const r = step(s, { type: "tick" }, s.masterDownAt!);
    expect(r.state.state).toBe("MASTER");
    expect(r.actions[0]).toEqual({ type: "send_advert", priority: 200 });
  });
});

describe("sync group members", () => {
  const syncMaster = () =>
    step(started({ syncGroup: true }), { type: "sync", to: "MASTER", reason: "all" }, 5).state;

  test("Master_Down_Timer expiry asks the group instead of taking over", () => {
    const s = started({ syncGroup: true });
    expect(s.state).toBe("BACKUP");
    const r = step(s, { type: "tick" }, s.masterDownAt!);
    expect(r.state.state).toBe("BACKUP");
    expect(r.state.wantMaster).toBe(true);
    expect(r.actions).toEqual([{ type: "sync_group", why: "want_master" }]);
    expect(r.state.masterDownAt).toBe(s.masterDownAt! + 3609.375);
    // an accepted advert withdraws the wish (keepalived wantstate = BACKUP)
    expect(step(r.state, advert("192.0.2.2", 150), 4000).state.wantMaster).toBe(false);
  });

  test("transitions of members carry a sync_group action", () => {
    const s = started({ syncGroup: true });
    const r = step(s, { type: "sync", to: "MASTER", reason: "sync group G: all members want MASTER" }, 10);
    expect(r.state.state).toBe("MASTER");
    expect(types(r.actions)).toEqual(["send_advert", "add_vips", "announce", "transition", "sync_group"]);
  });

  test("sync FAULT holds, sync BACKUP releases; own faults are not masked", () => {
    let r = step(syncMaster(), { type: "sync", to: "FAULT", reason: "sync group G: B in fault" }, 10);
    expect(r.state.state).toBe("FAULT");
    expect(types(r.actions)).toEqual([
      "send_advert",
      "stop_announce",
      "remove_vips",
      "transition",
      "sync_group",
    ]);
    expect(r.actions[0]).toEqual({ type: "send_advert", priority: 0 });
    // an own fault arrives while held: no transition, but the group must know
    r = step(r.state, { type: "fault", reason: "interface eth1 down", active: true }, 20);
    expect(r.actions).toEqual([{ type: "sync_group", why: "fault" }]);
    r = step(r.state, { type: "sync", to: "BACKUP", reason: "released" }, 30);
    expect(r.state.state).toBe("FAULT");
    expect(r.state.syncFault).toBeNull();
    r = step(r.state, { type: "fault", reason: "interface eth1 down", active: false }, 40);
    expect(r.state.state).toBe("BACKUP");
  });

  test("sync BACKUP: a master leaves without a priority-0 advert; sync MASTER is ignored in FAULT", () => {
    const r = step(syncMaster(), { type: "sync", to: "BACKUP", reason: "sync group G: A became BACKUP" }, 10);
    expect(r.state.state).toBe("BACKUP");
    expect(types(r.actions)).toEqual(["stop_announce", "remove_vips", "transition", "sync_group"]);
    const f = step(started(), { type: "fault", reason: "a", active: true }, 1).state;
    expect(step(f, { type: "sync", to: "MASTER", reason: "x" }, 2).state.state).toBe("FAULT");
  });
});

describe("operator force_backup", () => {
  test("a master hands over with priority 0 and stays BACKUP until released", () => {
    let r = step(master(), { type: "force_backup", active: true }, 5000);
    expect(r.state.state).toBe("BACKUP");
    expect(r.actions).toEqual([
      { type: "send_advert", priority: 0 },
      { type: "stop_announce" },
      { type: "remove_vips" },
      { type: "transition", from: "MASTER", to: "BACKUP", reason: "forced to BACKUP by operator" },
    ]);
    r = step(r.state, { type: "tick" }, r.state.masterDownAt!);
    expect(r.state.state).toBe("BACKUP");
    expect(r.actions).toEqual([]);
    r = step(r.state, { type: "force_backup", active: false }, r.state.masterDownAt! - 1);
    r = step(r.state, { type: "tick" }, r.state.masterDownAt!);
    expect(r.state.state).toBe("MASTER");
  });
});

describe("shutdown and restart", () => {
  test("FAULT and INIT also end in STOP; STOP ignores everything but startup", () => {
    const f = step(started(), { type: "fault", reason: "a", active: true }, 1).state;
    expect(step(f, { type: "shutdown" }, 2).actions).toEqual([
      { type: "transition", from: "FAULT", to: "STOP", reason: "shutdown" },
    ]);
    const stop = step(started(), { type: "shutdown" }, 2).state;
    expect(step(stop, { type: "shutdown" }, 3).actions).toEqual([]);
    expect(step(stop, advert("192.0.2.2", 0), 3).actions).toEqual([]);
    const again = step(stop, { type: "startup" }, 10);
    expect(again.state.state).toBe("BACKUP");
    expect(again.state.masterDownAt).toBe(10 + 3609.375);
  });

  test("lastTransition and since follow the transitions", () => {
    const m = master();
    expect(m.since).toBe(3609.375);
    expect(m.lastTransition).toEqual({
      at: 3609.375,
      from: "BACKUP",
      to: "MASTER",
      reason: "master down timer expired",
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// A simulated LAN: N instances exchanging adverts with a fixed delay, no loss, on a virtual clock.

interface Node {
  id: number;
  addr: string;
  s: InstanceState;
  alive: boolean;
  becameMasterAt: number | null;
}

interface Sim {
  nodes: Node[];
  now: number;
  /** adverts in flight: deliver at `at` to everyone alive but the sender */
  wire: { at: number; from: number; priority: number; intervalMs: number }[];
  delay: number;
}

function apply(sim: Sim, n: Node, actions: Action[]): void {
  for (const a of actions) {
    if (a.type === "send_advert") {
      sim.wire.push({
        at: sim.now + sim.delay,
        from: n.id,
        priority: a.priority,
        intervalMs: n.s.params.advertIntervalMs,
      });
    }
    if (a.type === "transition" && a.to === "MASTER") n.becameMasterAt = sim.now;
  }
}

function dispatch(sim: Sim, n: Node, ev: VrrpEvent): void {
  const r = step(n.s, ev, sim.now);
  n.s = r.state;
  apply(sim, n, r.actions);
}

/** Advances the virtual clock to `until`, processing deliveries before timers at equal times. */
function runUntil(sim: Sim, until: number): void {
  for (;;) {
    const nextWire = sim.wire.reduce((m, w) => Math.min(m, w.at), Number.POSITIVE_INFINITY);
    let nextTimer = Number.POSITIVE_INFINITY;
    let timerNode: Node | null = null;
    for (const n of sim.nodes) {
      if (!n.alive) continue;
      const d = nextDeadline(n.s);
      if (d !== null && d < nextTimer) {
        nextTimer = d;
        timerNode = n;
      }
    }
    const t = Math.min(nextWire, nextTimer);
    if (t > until) break;
    sim.now = t;
    if (nextWire <= nextTimer) {
      const due = sim.wire.filter((w) => w.at === t);
      sim.wire = sim.wire.filter((w) => w.at !== t);
      for (const w of due) {
        const sender = sim.nodes[w.from]!;
        for (const n of sim.nodes) {
          if (n === sender || !n.alive) continue;
          dispatch(sim, n, {
            type: "advert",
            priority: w.priority,
            advertIntervalMs: w.intervalMs,
            src: parseIp(sender.addr)!,
            srcText: sender.addr,
          });
        }
      }
    } else if (timerNode) {
      dispatch(sim, timerNode, { type: "tick" });
    }
  }
  sim.now = until;
}

const masters = (sim: Sim) => sim.nodes.filter((n) => n.alive && n.s.state === "MASTER");

/** Highest (priority, address) among the given nodes. */
function best(nodes: Node[]): Node {
  return [...nodes].sort(
    (a, b) =>
      b.s.params.basePriority - a.s.params.basePriority ||
      formatSortKey(b.addr).localeCompare(formatSortKey(a.addr)),
  )[0]!;
}
function formatSortKey(addr: string): string {
  return [...parseIp(addr)!].map((x) => x.toString(16).padStart(2, "0")).join("");
}

const scenario = fc.record({
  version: fc.constantFrom<2 | 3>(2, 3),
  intervalCs: fc.constantFrom(10, 50, 100, 200),
  priorities: fc.array(fc.integer({ min: 1, max: 254 }), { minLength: 2, maxLength: 6 }),
  uniquePriorities: fc.uniqueArray(fc.integer({ min: 1, max: 254 }), { minLength: 2, maxLength: 6 }),
  lastOctets: fc.uniqueArray(fc.integer({ min: 1, max: 254 }), { minLength: 6, maxLength: 6 }),
  jitterCs: fc.option(fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 6, maxLength: 6 }), {
    nil: null,
  }),
  nopreempt: fc.boolean(),
});
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

function makeSim(sc: Scenario): { sim: Sim; starts: number[]; interval: number } {
  const interval = sc.version === 2 ? 1000 : sc.intervalCs * 10;
  // "The best wins" depends on the start order in two cases, both per RFC: without preemption the
  // first to time out keeps mastership, and with equal priorities a backup accepts the master's
  // adverts (">= local priority") so the address tie-break only decides between simultaneous masters.
  // Staggered starts are therefore only generated with preemption and distinct priorities.
  const staggered = sc.jitterCs !== null && !sc.nopreempt;
  const prios = staggered ? sc.uniquePriorities : sc.priorities;
  const nodes: Node[] = prios.map((p, i) => {
    const addr = formatIp(Uint8Array.from([192, 0, 2, sc.lastOctets[i]!]));
    return {
      id: i,
      addr,
      alive: true,
      becameMasterAt: null,
      s: initialState(
        params({
          version: sc.version,
          advertIntervalMs: interval,
          basePriority: p,
          nopreempt: sc.nopreempt,
          primaryAddress: parseIp(addr)!,
        }),
        0,
      ),
    };
  });
  const starts = nodes.map((_, i) => (staggered ? (sc.jitterCs![i]! * interval) / 100 : 0));
  return { sim: { nodes, now: 0, wire: [], delay: 1 }, starts, interval };
}

function startAll(sim: Sim, starts: number[]): void {
  const order = sim.nodes.map((n) => n.id).sort((a, b) => starts[a]! - starts[b]!);
  for (const id of order) {
    runUntil(sim, starts[id]!);
    dispatch(sim, sim.nodes[id]!, { type: "startup" });
  }
}

describe("simulated network (fast-check)", () => {
  test("one master, the best; after its death the next best within Master_Down_Interval; nopreempt holds", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { sim, starts, interval } = makeSim(sc);
        startAll(sim, starts);
        const horizon = Math.max(...starts) + 12 * interval + 2000;
        runUntil(sim, horizon);
        // converged: exactly one master, the highest (priority, address)
        const m = masters(sim);
        expect(m.length).toBe(1);
        const first = best(sim.nodes);
        expect(m[0]!.id).toBe(first.id);
        // everyone else is BACKUP and follows it
        for (const n of sim.nodes) if (n !== first) expect(n.s.state).toBe("BACKUP");

        // kill the master (no priority 0: a crash)
        const kill = sim.now + interval / 3;
        runUntil(sim, kill);
        first.alive = false;
        const rest = sim.nodes.filter((n) => n.alive);
        const next = best(rest);
        const bound = kill + sim.delay + masterDownIntervalMs(sc.version, next.s.effectivePriority, interval);
        runUntil(sim, bound);
        expect(next.s.state).toBe("MASTER");
        expect(next.becameMasterAt!).toBeGreaterThan(kill);
        expect(next.becameMasterAt!).toBeLessThanOrEqual(bound);
        runUntil(sim, bound + 6 * interval);
        expect(masters(sim).map((n) => n.id)).toEqual([next.id]);

        // the old master returns
        first.alive = true;
        first.becameMasterAt = null;
        first.s = initialState(first.s.params, sim.now);
        dispatch(sim, first, { type: "startup" });
        runUntil(sim, sim.now + 12 * interval + 2000);
        const after = masters(sim).map((n) => n.id);
        if (sc.nopreempt || first.s.params.basePriority === next.s.params.basePriority) {
          // it hears the current master's adverts and accepts them (nopreempt, or an equal
          // priority, which RFC 5798 §6.4.2 accepts too): no takeover
          expect(after).toEqual([next.id]);
          expect(first.becameMasterAt).toBeNull();
        } else {
          // preemption: the higher priority discards the lower adverts and takes over
          expect(after).toEqual([first.id]);
        }
      }),
      { numRuns: 300 },
    );
  });

  test("graceful shutdown of the master: the next best takes over after Skew_Time", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const { sim, starts, interval } = makeSim({ ...sc, nopreempt: false });
        startAll(sim, starts);
        runUntil(sim, Math.max(...starts) + 12 * interval + 2000);
        const first = best(sim.nodes);
        expect(masters(sim).map((n) => n.id)).toEqual([first.id]);
        const at = sim.now + interval / 2;
        runUntil(sim, at);
        dispatch(sim, first, { type: "shutdown" });
        first.alive = false;
        const next = best(sim.nodes.filter((n) => n.alive));
        // priority 0 arrives after the delay; the next best then waits its Skew_Time (learnt interval)
        const bound = at + sim.delay + skewTimeMs(sc.version, next.s.effectivePriority, interval);
        runUntil(sim, bound);
        expect(next.s.state).toBe("MASTER");
        runUntil(sim, bound + 6 * interval);
        expect(masters(sim).map((n) => n.id)).toEqual([next.id]);
      }),
      { numRuns: 200 },
    );
  });
});

describe("receive coalescing window (agent/vrrp/runtime.ts)", () => {
  test("a tenth of the shortest interval, at most 100 ms, none for a single instance", () => {
    expect(coalesceWindowMs([])).toBe(0);
    expect(coalesceWindowMs([1000])).toBe(0);
    expect(coalesceWindowMs([1000, 1000])).toBe(100);
    expect(coalesceWindowMs([3000, 5000])).toBe(100);
    expect(coalesceWindowMs([1000, 100])).toBe(10);
    expect(coalesceWindowMs([10, 1000])).toBe(1);
  });

  test("always well inside Skew_Time and Master_Down_Interval", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4095 }), { minLength: 2, maxLength: 20 }), (cs) => {
        const ms = cs.map((c) => c * 10);
        const w = coalesceWindowMs(ms);
        const shortest = Math.min(...ms);
        // a held advert resets Master_Down (>= 3 intervals) at most a tenth of an interval late
        expect(w).toBeLessThanOrEqual(shortest / 10);
        expect(w).toBeLessThanOrEqual(masterDownIntervalMs(3, 255, shortest) / 30);
      }),
    );
  });
});

describe("vrrp_startup_delay (keepalived vrrp_init_instance_sands)", () => {
  const MDI = masterDownIntervalMs(3, 100, 1000);
  const SKEW = skewTimeMs(3, 100, 1000);
  const delayed = { startDelayUntil: 5000 };

  test("a backup's first Master_Down_Timer runs from the end of the delay", () => {
    const s = started(delayed);
    expect(s.state).toBe("BACKUP");
    expect(s.masterDownAt).toBe(5000 + MDI);
    expect(step(s, { type: "tick" }, MDI).state.state).toBe("BACKUP");
    expect(step(s, { type: "tick" }, 5000 + MDI).state.state).toBe("MASTER");
  });

  test("within the delay every re-arm counts from its end: adverts, priority 0 and lower priorities", () => {
    const s = started(delayed);
    expect(run(s, [[advert("192.0.2.20", 200), 1000]]).state.masterDownAt).toBe(5000 + MDI);
    expect(run(s, [[advert("192.0.2.20", 0), 2000]]).state.masterDownAt).toBe(5000 + SKEW);
  });

  test("after the delay the timers are the usual ones", () => {
    const s = started(delayed);
    expect(run(s, [[advert("192.0.2.20", 200), 6000]]).state.masterDownAt).toBe(6000 + MDI);
    expect(run(s, [[advert("192.0.2.20", 0), 7000]]).state.masterDownAt).toBe(7000 + SKEW);
  });

  test("an address owner still takes over at once (keepalived 2.2.7 delays only backups)", () => {
    const s = started({ ...delayed, basePriority: 255, initialState: "MASTER" });
    expect(s.state).toBe("MASTER");
  });

  test("without a delay nothing changes", () => {
    expect(started().masterDownAt).toBe(MDI);
    expect(started({ startDelayUntil: 0 }).masterDownAt).toBe(MDI);
  });
});

describe("lower_prio_no_advert / higher_prio_send_advert (keepalived vrrp_state_master_rx)", () => {
  const lower = advert("192.0.2.20", 50);
  const higher = advert("192.0.2.20", 200);
  const sends = (as: Action[]) => as.filter((a) => a.type === "send_advert").length;

  test("default: a lower-priority advert is answered at once, a higher one is not", () => {
    const m = master();
    const r1 = step(m, lower, 4000);
    expect(sends(r1.actions)).toBe(1);
    expect(r1.state.adverAt).toBe(4000 + 1000);
    const r2 = step(m, higher, 4000);
    expect(sends(r2.actions)).toBe(0);
    expect(r2.state.state).toBe("BACKUP");
  });

  test("lower_prio_no_advert: no answer, the Adver_Timer keeps running; the notify event still fires", () => {
    const m = master({ lowerPrioNoAdvert: true });
    const r = step(m, lower, 4000);
    expect(sends(r.actions)).toBe(0);
    expect(r.state.adverAt).toBe(m.adverAt);
    expect(types(r.actions)).toContain("master_rx_lower_pri");
  });

  test("higher_prio_send_advert: one advert with our priority, then BACKUP", () => {
    const m = master({ higherPrioSendAdvert: true });
    const r = step(m, higher, 4000);
    expect(r.actions.filter((a) => a.type === "send_advert")).toEqual([
      { type: "send_advert", priority: 100 },
    ]);
    expect(r.state.state).toBe("BACKUP");
    // also for an equal priority from a higher address
    const eq = step(m, advert("192.0.2.200", 100), 4000);
    expect(sends(eq.actions)).toBe(1);
    expect(eq.state.state).toBe("BACKUP");
  });
});

describe("down_timer_adverts (keepalived VRRP_MS_DOWN_TIMER)", () => {
  test("Master_Down_Interval counts N advert intervals plus Skew_Time", () => {
    expect(masterDownIntervalMs(3, 100, 1000, 2)).toBeCloseTo(2609.375, 6);
    expect(masterDownIntervalMs(3, 100, 1000)).toBeCloseTo(3609.375, 6);
    expect(started({ downTimerAdverts: 1 }).masterDownAt).toBeCloseTo(1609.375, 6);
    // and it follows the master's learnt interval in v3
    const s = started({ downTimerAdverts: 2 });
    expect(run(s, [[advert("192.0.2.20", 200, 500), 100]]).state.masterDownAt).toBeCloseTo(
      100 + 2 * 500 + skewTimeMs(3, 100, 500),
      6,
    );
  });
});
