// track_file with keepalived 2.2.7's semantics (trackers/track_file.c, vrrp_track.c): what a file's
// number does to an instance, how the number is read, and inotify records decoded from any bytes.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import pino from "pino";
import type { TrackFileDef } from "../../agent/config/model.ts";
import { TrackFiles } from "../../agent/vrrp/track-files.ts";
import { effectivePriority, trackedFileStatus } from "../../agent/vrrp/tracking.ts";
import {
  decodeInotifyEvents,
  encodeInotifyEvents,
  IN_CLOSE_WRITE,
  IN_DELETE,
  parseTrackFileValue,
} from "../../agent/wire/inotify.ts";

const file = (value: number, weight = 1, weightReverse = false, name = "f") => ({
  name,
  weight,
  weightReverse,
  value,
});

describe("a tracked file's effect (process_update_vrrp_track_file_status)", () => {
  // [case, value, weight, reverse, status]
  const rows: [string, number, number, boolean, "fault" | number][] = [
    ["weight 0: zero is fine", 0, 0, false, 0],
    ["weight 0: non-zero is a fault", 7, 0, false, "fault"],
    ["weight 0: negative is a fault too", -1, 0, false, "fault"],
    ["weight 0 reverse: zero is a fault", 0, 0, true, "fault"],
    ["weight 0 reverse: non-zero is fine", 3, 0, true, 0],
    ["weight 1 (default): the number itself", 15, 1, false, 15],
    ["negative numbers lower the priority", -20, 1, false, -20],
    ["weight multiplies", 3, -10, false, -30],
    ["reverse negates", 3, -10, true, 30],
    ["clamped at 253", 1000, 1, false, 253],
    ["-253 still counts", -253, 1, false, -253],
    ["-254 is a fault", -254, 1, false, "fault"],
    ["far below is a fault", -5, 100, false, "fault"],
  ];
  test.each(rows)("%s", (_n, value, weight, reverse, status) => {
    expect(trackedFileStatus(file(value, weight, reverse))).toBe(status);
  });

  test("effective priority adds file statuses and clamps to 1..254; faults name the file", () => {
    expect(effectivePriority(100, [], [], [file(20), file(-5, 2, false, "g")])).toEqual({
      priority: 110,
      faults: [],
      pending: [],
    });
    expect(effectivePriority(100, [], [], [file(200)]).priority).toBe(254);
    expect(effectivePriority(100, [], [], [file(-150)]).priority).toBe(1);
    expect(effectivePriority(100, [], [], [file(1, 0, false, "maint")]).faults).toEqual(["file maint"]);
    // an address owner ignores weights but still faults
    expect(effectivePriority(255, [], [], [file(-100)]).priority).toBe(255);
    expect(effectivePriority(255, [], [], [file(-300)]).faults).toEqual(["file f"]);
  });

  test("a fault's key does not depend on the number, so a changing bad number is one fault", () => {
    const a = effectivePriority(100, [], [], [file(1, 0)]).faults;
    const b = effectivePriority(100, [], [], [file(2, 0)]).faults;
    expect(a).toEqual(b);
  });
});

describe("the number in a file (strtol base 0, as process_track_file reads it)", () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  const rows: [string, number | null][] = [
    ["", 0],
    ["\n", 0],
    ["42\n", 42],
    ["  -17 trailing words", -17],
    ["+5", 5],
    ["0x1f", 31],
    ["0X1F\n", 31],
    ["010", 8],
    ["09", 0],
    ["0x", 0],
    ["abc", 0],
    ["- 5", 0],
    ["2147483648", 2147483648],
    ["2147483649", null],
    ["-2147483648", -2147483648],
    ["-2147483649", null],
    ["99999999999999999999999", null],
  ];
  test.each(rows)("%j", (text, value) => {
    expect(parseTrackFileValue(enc(text))).toBe(value);
  });

  test("only the first 127 bytes count, and a NUL ends the text", () => {
    expect(parseTrackFileValue(enc(`${" ".repeat(126)}55`))).toBe(5);
    expect(parseTrackFileValue(new Uint8Array([0x31, 0x32, 0, 0x33]))).toBe(12);
  });

  test("any bytes give a number in int32 range + 1, or null; never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
        const v = parseTrackFileValue(b);
        if (v !== null) {
          expect(Number.isInteger(v)).toBe(true);
          expect(v).toBeGreaterThanOrEqual(-(2 ** 31));
          expect(v).toBeLessThanOrEqual(2 ** 31);
        }
      }),
    );
  });

  test("decimal numbers round trip", () => {
    fc.assert(
      fc.property(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (n) => {
        expect(parseTrackFileValue(enc(`${n}\n`))).toBe(n);
      }),
    );
  });
});

describe("inotify records", () => {
  const ev = fc.record({
    wd: fc.integer({ min: -1, max: 1000 }),
    mask: fc.integer({ min: 0, max: 0xffffffff }),
    cookie: fc.integer({ min: 0, max: 0xffffffff }),
    name: fc.stringMatching(/^[a-z0-9._-]{0,40}$/),
  });

  test("encode -> decode is the identity", () => {
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 8 }), (events) => {
        const r = decodeInotifyEvents(encodeInotifyEvents(events));
        expect(r.ok).toBe(true);
        if (r.ok) expect(r.value).toEqual(events);
      }),
    );
  });

  test("the kernel's layout: 16-byte header, name padded with NULs to 4 bytes", () => {
    const b = encodeInotifyEvents([{ wd: 1, mask: IN_CLOSE_WRITE, cookie: 0, name: "flag" }]);
    expect(b.length).toBe(16 + 8);
    expect([...b.subarray(16)]).toEqual([0x66, 0x6c, 0x61, 0x67, 0, 0, 0, 0]);
  });

  test("a record cut short is a typed error", () => {
    const b = encodeInotifyEvents([
      { wd: 1, mask: IN_DELETE, cookie: 0, name: "a" },
      { wd: 1, mask: IN_CLOSE_WRITE, cookie: 0, name: "longer-name" },
    ]);
    for (const cut of [3, 15, 17, b.length - 1]) {
      const r = decodeInotifyEvents(b.subarray(0, cut));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.reason).toBe("truncated");
    }
  });

  test("any bytes give events or a typed error, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const r = decodeInotifyEvents(b);
        if (!r.ok) expect(r.error.reason).toBe("truncated");
      }),
    );
  });
});

describe("TrackFiles (the VRRP child's view of the files)", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  function setup() {
    const dir = mkdtempSync(join(tmpdir(), "vigil-trackfiles-"));
    dirs.push(dir);
    const handlers = new Map<string, (name: string | null, gone: boolean) => void>();
    const io = {
      watchDirectory(d: string, h: (name: string | null, gone: boolean) => void) {
        handlers.set(d, h);
        return () => handlers.delete(d);
      },
    };
    let changes = 0;
    const tf = new TrackFiles(io, pino({ level: "silent" }), () => changes++);
    const def = (name: string, file: string, init?: { value: number; overwrite: boolean }): TrackFileDef => ({
      name,
      file: join(dir, file),
      weight: 1,
      weightReverse: false,
      ...(init ? { init } : {}),
    });
    return { dir: realpathSync(dir), tf, handlers, def, changes: () => changes };
  }

  test("reads at configure, then on events for its own file only; gone is 0", () => {
    const { dir, tf, handlers, def, changes } = setup();
    writeFileSync(join(dir, "a"), "12\n");
    tf.configure([def("a", "a"), def("b", "b")], false);
    expect(tf.value("a")).toBe(12);
    expect(tf.value("b")).toBe(0);
    expect([...handlers.keys()]).toEqual([dir]);
    writeFileSync(join(dir, "a"), "-3");
    handlers.get(dir)!("other", false);
    expect(tf.value("a")).toBe(12);
    handlers.get(dir)!("a", false);
    expect(tf.value("a")).toBe(-3);
    expect(changes()).toBe(1);
    handlers.get(dir)!("a", true);
    expect(tf.value("a")).toBe(0);
    // lost events: everything is read again
    writeFileSync(join(dir, "b"), "4");
    handlers.get(dir)!(null, false);
    expect(tf.value("b")).toBe(4);
    expect(changes()).toBe(3);
    // an unchanged value is no change
    handlers.get(dir)!("b", false);
    expect(changes()).toBe(3);
    tf.close();
    expect(handlers.size).toBe(0);
  });

  test("an invalid number keeps the previous value", () => {
    const { dir, tf, handlers, def } = setup();
    writeFileSync(join(dir, "a"), "7");
    tf.configure([def("a", "a")], false);
    writeFileSync(join(dir, "a"), "99999999999");
    handlers.get(dir)!("a", false);
    expect(tf.value("a")).toBe(7);
  });

  test("init_file creates a missing file; overwrite rewrites it at start, never on reload", () => {
    const { dir, tf, def } = setup();
    tf.configure([def("a", "a", { value: 5, overwrite: false })], false);
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("5\n");
    expect(tf.value("a")).toBe(5);
    writeFileSync(join(dir, "a"), "9");
    const t2 = setup();
    writeFileSync(join(t2.dir, "o"), "9");
    t2.tf.configure([t2.def("o", "o", { value: 1, overwrite: true })], true);
    expect(readFileSync(join(t2.dir, "o"), "utf8")).toBe("9");
    t2.tf.configure([], true);
    t2.tf.configure([t2.def("o", "o", { value: 1, overwrite: true })], false);
    expect(readFileSync(join(t2.dir, "o"), "utf8")).toBe("1\n");
    // without overwrite an existing file is left alone
    tf.configure([], false);
    tf.configure([def("a", "a", { value: 5, overwrite: false })], false);
    expect(readFileSync(join(dir, "a"), "utf8")).toBe("9");
  });

  test("a reload reads every file again and stops watching unused directories", () => {
    const { dir, tf, handlers, def, changes } = setup();
    writeFileSync(join(dir, "a"), "3");
    tf.configure([def("a", "a")], false);
    tf.configure([{ ...def("a", "a"), weight: 4 }], true);
    expect(changes()).toBe(0);
    writeFileSync(join(dir, "a"), "8"); // without an event: read at the reload, as keepalived does
    tf.configure([{ ...def("a", "a"), weight: 4 }], true);
    expect(tf.value("a")).toBe(8);
    expect(changes()).toBe(1);
    tf.configure([], true);
    expect(handlers.size).toBe(0);
    expect(tf.value("a")).toBe(0);
  });
});
