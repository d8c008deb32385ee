// Tracking with keepalived 2.2.7's semantics: the script rise/fall filter, effective priority and
// faults from weights, notify script arguments.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  effectivePriority,
  notifyArgs,
  notifyScripts,
  ScriptFilter,
  type ScriptStatus,
  scriptFilterInit,
  scriptFilterStep,
  scriptStatus,
} from "../../agent/vrrp/tracking.ts";

/** Feeds results ("1" ok, "0" failed) and returns the status after each. */
function feed(rise: number, fall: number, initFail: boolean, runs: string): ScriptStatus[] {
  let s = scriptFilterInit(rise, fall, initFail);
  const out: ScriptStatus[] = [];
  for (const c of runs) {
    s = scriptFilterStep(s, c === "1").state;
    out.push(scriptStatus(s));
  }
  return out;
}
const short = (xs: ScriptStatus[]) => xs.map((x) => (x === "ok" ? "O" : x === "failed" ? "F" : "I")).join("");

describe("script filter (keepalived vrrp_script_child_thread)", () => {
  test("no result yet: init", () => {
    expect(scriptStatus(scriptFilterInit(3, 2))).toBe("init");
    expect(scriptStatus(scriptFilterInit(3, 2, true))).toBe("failed");
  });

  // [rise, fall, init_fail, runs, statuses after each run]
  const rows: [number, number, boolean, string, string][] = [
    [1, 1, false, "1010", "OFOF"],
    // the first result decides at once, whatever rise and fall ("one success is enough")
    [3, 3, false, "1", "O"],
    [3, 3, false, "0", "F"],
    // fall 3: three failures in a row to fail; a success in between starts over
    [1, 3, false, "1001000", "OOOOOOF"],
    // rise 3: three successes in a row to recover; a failure in between starts over
    [3, 1, false, "0110111", "FFFFFFO"],
    // init_fail: failed from the start, needs `rise` successes
    [2, 1, true, "11", "FO"],
    [1, 1, true, "1", "O"],
    [2, 2, false, "100110011", "OOFFOOFFO"],
  ];
  test.each(rows)("rise %d fall %d init_fail %p: %s -> %s", (rise, fall, initFail, runs, want) => {
    expect(short(feed(rise, fall, initFail, runs))).toBe(want);
  });

  test("changed is reported exactly on status flips", () => {
    let s = scriptFilterInit(2, 2);
    const changes: boolean[] = [];
    for (const ok of [true, true, false, false, true, true]) {
      const r = scriptFilterStep(s, ok);
      changes.push(r.changed);
      s = r.state;
    }
    expect(changes).toEqual([true, false, false, true, false, true]);
  });

  test("property: the status only flips after `rise` successes / `fall` failures in a row", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 60 }),
        (rise, fall, runs) => {
          let s = scriptFilterInit(rise, fall);
          let streak = 0;
          let last: boolean | null = null;
          runs.forEach((ok, i) => {
            streak = ok === last ? streak + 1 : 1;
            last = ok;
            const before = scriptStatus(s);
            s = scriptFilterStep(s, ok).state;
            const after = scriptStatus(s);
            expect(s.result).toBeGreaterThanOrEqual(0);
            expect(s.result).toBeLessThanOrEqual(rise + fall - 1);
            if (i > 0 && before !== after) {
              if (after === "ok") expect(streak).toBeGreaterThanOrEqual(rise);
              else expect(streak).toBeGreaterThanOrEqual(fall);
            }
          });
        },
      ),
    );
  });

  test("ScriptFilter wraps it for the shell", () => {
    const f = new ScriptFilter(1, 2);
    expect(f.status).toBe("init");
    expect(f.ok).toBe(false);
    expect(f.okOrNull).toBeNull();
    expect(f.record(true)).toBe(true);
    expect(f.ok).toBe(true);
    expect(f.record(false)).toBe(false);
    expect(f.record(false)).toBe(true);
    expect(f.okOrNull).toBe(false);
  });
});

describe("effectivePriority (keepalived vrrp_track.c)", () => {
  const up = (weight: number, isUp: boolean, weightReverse = false, name = "eth1") => ({
    name,
    weight,
    weightReverse,
    up: isUp,
  });
  const sc = (weight: number, ok: boolean | null, weightReverse = false, name = "chk") => ({
    name,
    weight,
    weightReverse,
    ok,
  });

  // [case, base, interfaces, scripts, priority, faults]
  const rows: [string, number, ReturnType<typeof up>[], ReturnType<typeof sc>[], number, string[]][] = [
    ["nothing tracked", 100, [], [], 100, []],
    ["positive weight adds while OK", 100, [], [sc(20, true)], 120, []],
    ["positive weight: nothing while failing", 100, [], [sc(20, false)], 100, []],
    ["negative weight subtracts while failing", 100, [], [sc(-30, false)], 70, []],
    ["negative weight: nothing while OK", 100, [], [sc(-30, true)], 100, []],
    ["reverse positive: subtracts while OK", 100, [], [sc(20, true, true)], 80, []],
    ["reverse positive: nothing while failing", 100, [], [sc(20, false, true)], 100, []],
    ["reverse negative: adds while failing", 100, [], [sc(-30, false, true)], 130, []],
    ["interface positive weight while up", 100, [up(10, true)], [], 110, []],
    ["interface negative weight while down", 100, [up(-10, false)], [], 90, []],
    [
      "weights add up",
      100,
      [up(10, true), up(-50, false, false, "eth2")],
      [sc(5, true), sc(-7, false, false, "c2")],
      58,
      [],
    ],
    ["clamped at 254", 240, [], [sc(50, true)], 254, []],
    ["clamped at 1", 20, [], [sc(-100, false)], 1, []],
    ["weight 0 interface down: fault", 100, [up(0, false)], [], 100, ["interface eth1 down"]],
    ["weight 0 interface up: fine", 100, [up(0, true)], [], 100, []],
    [
      "weight 0 reverse interface up: fault",
      100,
      [up(0, true, true)],
      [],
      100,
      ["interface eth1 up (reverse)"],
    ],
    ["weight 0 script failing: fault", 100, [], [sc(0, false)], 100, ["script chk failed"]],
    [
      "weight 0 reverse script OK: fault",
      100,
      [],
      [sc(0, true, true)],
      100,
      ["script chk succeeded (reverse)"],
    ],
    ["owner ignores weights", 255, [up(-50, false)], [sc(-50, false)], 255, []],
    ["owner still faults", 255, [up(0, false)], [], 255, ["interface eth1 down"]],
    [
      "several faults",
      100,
      [up(0, false)],
      [sc(0, false)],
      100,
      ["interface eth1 down", "script chk failed"],
    ],
    ["script without result: no weight", 100, [], [sc(-30, null), sc(20, null, false, "c2")], 100, []],
  ];
  test.each(rows)("%s", (_n, base, ifs, scripts, priority, faults) => {
    const r = effectivePriority(base, ifs, scripts);
    expect(r.priority).toBe(priority);
    expect(r.faults).toEqual(faults);
  });

  test("weight-0 scripts without a result are pending, not faults", () => {
    const r = effectivePriority(100, [], [sc(0, null)]);
    expect(r.faults).toEqual([]);
    expect(r.pending).toEqual(["script chk"]);
  });
});

describe("notify scripts (keepalived vrrp_notify.c)", () => {
  test("argument list: $1 INSTANCE|GROUP $2 name $3 state $4 priority (0 for groups)", () => {
    expect(notifyArgs("INSTANCE", "VI_1", "MASTER", 150)).toEqual(["INSTANCE", "VI_1", "MASTER", "150"]);
    expect(notifyArgs("GROUP", "G1", "BACKUP", 150)).toEqual(["GROUP", "G1", "BACKUP", "0"]);
  });

  const all = { master: "/m", backup: "/b", fault: "/f", stop: "/s", any: "/n", deleted: "/d" };
  const rows: [string, { command: string; withArgs: boolean; timeoutMs?: number }[]][] = [
    [
      "MASTER",
      [
        { command: "/m", withArgs: false },
        { command: "/n", withArgs: true },
      ],
    ],
    [
      "BACKUP",
      [
        { command: "/b", withArgs: false },
        { command: "/n", withArgs: true },
      ],
    ],
    [
      "FAULT",
      [
        { command: "/f", withArgs: false },
        { command: "/n", withArgs: true },
      ],
    ],
    [
      "STOP",
      [
        { command: "/s", withArgs: false, timeoutMs: 1000 },
        { command: "/n", withArgs: true, timeoutMs: 1000 },
      ],
    ],
    [
      "DELETED",
      [
        { command: "/d", withArgs: false },
        { command: "/n", withArgs: true },
      ],
    ],
    ["INIT", []],
  ];
  test.each(rows)("entering %s: the state's own script, then `notify` with arguments", (state, want) => {
    expect(notifyScripts(all, state)).toEqual(want);
  });

  test("only what is configured", () => {
    expect(notifyScripts({ master: "/m" }, "MASTER")).toEqual([{ command: "/m", withArgs: false }]);
    expect(notifyScripts({ any: "/n" }, "FAULT")).toEqual([{ command: "/n", withArgs: true }]);
    expect(notifyScripts({}, "BACKUP")).toEqual([]);
  });
});
