// The WatchEvents log (agent/api/events.ts) and where each run's sequences start
// (agent/api/sequence-base.ts): replay, "you fell behind", sequences that keep increasing across agent
// restarts (a client from an earlier run is told what it lost), and a sequence from no history.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { EventRing } from "../../agent/api/events.ts";
import { nextSequenceBase, RUN_SPAN, takeSequenceBase } from "../../agent/api/sequence-base.ts";
import { createLogger } from "../../agent/observe/log.ts";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";

const log = createLogger({ level: "silent" });
const body = (i: number) => ({ transition: pb.Transition.fromPartial({ instance: `I${i}` }) });
const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
});

function seqs(s: ReturnType<EventRing["since"]>): number[] {
  if (s.kind !== "ok") throw new Error(`since: ${s.kind}`);
  return s.events.map((e) => e.sequence);
}

describe("event ring", () => {
  test("sequences, replay from a sequence, and only-new", () => {
    const r = new EventRing(4);
    for (let i = 1; i <= 3; i++) r.push(body(i));
    expect(seqs(r.since(2))).toEqual([2, 3]);
    expect(r.since(2)).toMatchObject({ kind: "ok", lost: null });
    expect(seqs(r.since(0))).toEqual([]);
    expect(seqs(r.since(4))).toEqual([]);
  });

  test("a client asking for overwritten events is told the range it lost", () => {
    const r = new EventRing(4);
    for (let i = 1; i <= 10; i++) r.push(body(i));
    const s = r.since(3);
    expect(s).toMatchObject({ kind: "ok", lost: { firstMissed: 3, lastMissed: 6 } });
    expect(seqs(s)).toEqual([7, 8, 9, 10]);
  });

  test("a sequence beyond the newest + 1 is from no history of this agent", () => {
    const r = new EventRing(4, 1000);
    r.push(body(1));
    expect(r.since(1003)).toEqual({ kind: "beyond", last: 1001 });
    expect(seqs(r.since(1002))).toEqual([]);
  });

  test("subscribers see pushes in order", () => {
    const r = new EventRing(2);
    const seen: number[] = [];
    const off = r.subscribe((e) => seen.push(e.sequence));
    r.push(body(1));
    r.push(body(2));
    off();
    r.push(body(3));
    expect(seen).toEqual([1, 2]);
  });

  test("after a restart, a client from the previous run is told it lost everything up to the new run", () => {
    // run 1
    const base1 = nextSequenceBase(null, 1_700_000_000_000);
    const run1 = new EventRing(8, base1);
    for (let i = 0; i < 5; i++) run1.push(body(i));
    const clientNext = run1.last + 1;
    // run 2, 3 s later: its events are numbered above run 1's
    const base2 = nextSequenceBase(base1, 1_700_000_003_000);
    const run2 = new EventRing(8, base2);
    expect(seqs(run2.since(clientNext))).toEqual([]);
    expect(run2.since(clientNext)).toMatchObject({
      kind: "ok",
      lost: { firstMissed: clientNext, lastMissed: base2 },
    });
    run2.push(body(9));
    const s = run2.since(clientNext);
    expect(s).toMatchObject({ lost: { firstMissed: clientNext, lastMissed: base2 } });
    expect(seqs(s)).toEqual([base2 + 1]);
    expect(base2 + 1).toBeGreaterThan(run1.last);
  });

  test("property: any pushes and any from give a replay that is exactly the held part of [from, last]", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 0, max: 40 }),
        fc.integer({ min: -5, max: 50 }),
        (cap, base, n, delta) => {
          const r = new EventRing(cap, base);
          for (let i = 0; i < n; i++) r.push(body(i));
          const from = base + delta;
          const s = r.since(from);
          if (from <= 0 || from === base + n + 1) {
            expect(s).toEqual({ kind: "ok", lost: null, events: [] });
            return;
          }
          if (from > base + n + 1) {
            expect(s).toEqual({ kind: "beyond", last: base + n });
            return;
          }
          const firstHeld = Math.max(base + 1, base + n + 1 - cap);
          const want: number[] = [];
          for (let q = Math.max(from, firstHeld); q <= base + n; q++) want.push(q);
          expect(seqs(s)).toEqual(want);
          const lost = s.kind === "ok" ? s.lost : null;
          expect(lost).toEqual(from < firstHeld ? { firstMissed: from, lastMissed: firstHeld - 1 } : null);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("sequence base", () => {
  test("from the clock in microseconds; never below the previous run's base + 2^32", () => {
    expect(nextSequenceBase(null, 1_700_000_000_123)).toBe(1_700_000_000_123_000);
    // the clock moved on: the clock wins
    expect(nextSequenceBase(1_700_000_000_000_000, 1_800_000_000_000)).toBe(1_800_000_000_000_000);
    // the clock stepped back between runs: still above the previous run
    expect(nextSequenceBase(1_700_000_000_000_000, 1_600_000_000_000)).toBe(1_700_000_000_000_000 + RUN_SPAN);
    // exact in a double for centuries
    expect(Number.isSafeInteger(nextSequenceBase(null, Date.UTC(2250, 0, 1)) + RUN_SPAN * 1000)).toBe(true);
  });

  test("persisted at each start; increasing over restarts even with a clock going backwards", () => {
    const d = mkdtempSync(join(tmpdir(), "vigil-seq-"));
    tmp.push(d);
    const a = takeSequenceBase(d, log, 1_700_000_000_000);
    const b = takeSequenceBase(d, log, 1_700_000_000_001);
    const c = takeSequenceBase(d, log, 1_600_000_000_000);
    expect(b).toBeGreaterThan(a);
    expect(c).toBeGreaterThan(b);
    expect(JSON.parse(readFileSync(join(d, "events.json"), "utf8"))).toEqual({ version: 1, base: c });
    // a damaged file: the clock alone, and the file is whole again
    writeFileSync(join(d, "events.json"), "{");
    expect(takeSequenceBase(d, log, 1_800_000_000_000)).toBe(1_800_000_000_000_000);
    expect(JSON.parse(readFileSync(join(d, "events.json"), "utf8")).base).toBe(1_800_000_000_000_000);
  });
});
