import { afterEach, describe, expect, test } from "bun:test";
import { CheckScheduler, type HealthEvent } from "../../agent/check/scheduler.ts";
import type { CheckerSpec, CheckResult, CheckTiming } from "../../agent/check/types.ts";
import { loopback } from "./check-helpers.ts";
import { VirtualClock } from "./virtual-clock.ts";
import { until } from "./wait.ts";

const T0 = performance.now();
const since = () => performance.now() - T0;

/** A fake checker: results are taken in order (the last one repeats). */
function scripted(
  name: string,
  outcomes: Array<boolean | number>,
  timing: Partial<CheckTiming>,
): CheckerSpec {
  return { type: "MISC_CHECK", name, miscPath: JSON.stringify(outcomes), timing };
}

/** Runs scripted checkers instantly and records the virtual time of every call. */
function fakeRunner(clock: VirtualClock) {
  const calls = new Map<string, number[]>();
  const run = async (spec: CheckerSpec): Promise<CheckResult> => {
    const name = spec.name ?? "?";
    const list = calls.get(name) ?? [];
    list.push(clock.now());
    calls.set(name, list);
    const outcomes = JSON.parse(spec.type === "MISC_CHECK" ? spec.miscPath : "[]") as Array<boolean | number>;
    const o = outcomes[Math.min(list.length - 1, outcomes.length - 1)]!;
    if (typeof o === "number") return { ok: true, reason: `exit ${o + 2}`, latencyMs: 0, weight: o };
    return { ok: o, reason: o ? "ok" : "fail", latencyMs: 0 };
  };
  return { run, calls };
}

let sched: CheckScheduler | null = null;
afterEach(() => {
  sched?.stop();
  sched = null;
});

/** A scheduler on a virtual clock with scripted checkers. */
function start(random = () => 0) {
  const clock = new VirtualClock();
  const f = fakeRunner(clock);
  const events: Array<HealthEvent & { t: number }> = [];
  sched = new CheckScheduler({
    onChange: (e) => events.push({ ...e, t: clock.now() }),
    run: f.run,
    random,
    timers: clock,
  });
  return { sched, events, clock, calls: f.calls };
}

const fast = { delayLoopMs: 40, delayBeforeRetryMs: 10, warmupMs: 0 };

describe("scheduler state rules (keepalived), on a virtual clock", () => {
  test("non-alpha: starts up, and one failure is enough before the first success", async () => {
    const { sched, events, clock, calls } = start();
    sched.add({ rs: "a", checkers: [scripted("c", [false], { ...fast, retry: 3 })] });
    expect(sched.status("a")?.up).toBe(true);
    await clock.advance(25);
    expect(events.map((e) => [e.up, e.t])).toEqual([[false, 0]]);
    expect(events[0]!.reason).toBe("c: fail");
    expect(calls.get("c")).toEqual([0]);
  });

  test("after a success, down only after `retry` more failures spaced by delay_before_retry", async () => {
    const { sched, events, clock, calls } = start();
    // ok, then fail forever; retry 2
    sched.add({ rs: "a", checkers: [scripted("c", [true, false], { ...fast, retry: 2 })] });
    await clock.advance(150);
    // call 0 ok; call 1 fails after delay_loop; 2 and 3 are the retries, delay_before_retry apart;
    // once down, re-checked every delay_loop (no retry cadence)
    expect(calls.get("c")).toEqual([0, 40, 50, 60, 100, 140]);
    expect(events.map((e) => [e.up, e.t])).toEqual([[false, 60]]);
  });

  test("a success between failures resets the count", async () => {
    const { sched, events, clock, calls } = start();
    sched.add({
      rs: "a",
      checkers: [scripted("c", [true, false, false, true, false, false, true], { ...fast, retry: 2 })],
    });
    await clock.advance(250);
    expect(calls.get("c")!.length).toBeGreaterThanOrEqual(7);
    expect(events).toEqual([]);
    expect(sched.status("a")?.up).toBe(true);
  });

  test("alpha: starts down, comes up on the first success", async () => {
    const { sched, events, clock } = start();
    sched.add({ rs: "a", checkers: [scripted("c", [true], { ...fast, alpha: true })] });
    expect(sched.status("a")?.up).toBe(false);
    await clock.advance(20);
    expect(events.map((e) => [e.up, e.t])).toEqual([[true, 0]]);
  });

  test("a real server is up only while all its checkers are up", async () => {
    const { sched, events, clock } = start();
    sched.add({
      rs: "a",
      checkers: [
        scripted("good", [true], { ...fast, alpha: true }),
        scripted("late", [false, false, true], { ...fast, alpha: true, retry: 0 }),
      ],
    });
    await clock.advance(79);
    expect(events).toEqual([]);
    await clock.advance(1);
    expect(events.map((e) => [e.up, e.reason, e.t])).toEqual([[true, "late: ok", 80]]);
  });

  test("warmup delays the first check by random * warmup", async () => {
    const { sched, clock, calls } = start(() => 0.5);
    sched.add({ rs: "a", checkers: [scripted("c", [true], { delayLoopMs: 1000, warmupMs: 100 })] });
    await clock.advance(49);
    expect(calls.get("c")).toBeUndefined();
    await clock.advance(1);
    expect(calls.get("c")).toEqual([50]);
  });

  test("MISC_CHECK: the next run is delay_loop after the start of the last one, not its end", async () => {
    const clock = new VirtualClock();
    const starts: number[] = [];
    // each run takes 15 virtual ms
    const run = (): Promise<CheckResult> => {
      starts.push(clock.now());
      return new Promise((r) => clock.set(() => r({ ok: true, reason: "ok", latencyMs: 15 }), 15));
    };
    sched = new CheckScheduler({ onChange: () => {}, run, random: () => 0, timers: clock });
    sched.add({ rs: "a", checkers: [scripted("m", [true], { delayLoopMs: 40, warmupMs: 0 })] });
    await clock.advance(130);
    expect(starts).toEqual([0, 40, 80, 120]);
  });

  test("misc_dynamic weights: share = weight - configured, back on exit 0, dropped on failure", async () => {
    const { sched, events, clock } = start();
    sched.add({
      rs: "a",
      weight: 3,
      checkers: [
        { ...scripted("m", [5, 5, true, 7, false], { ...fast, retry: 0 }), miscDynamic: true } as CheckerSpec,
      ],
    });
    await clock.advance(200);
    expect(events.map((e) => [e.up, e.weight, e.t])).toEqual([
      [true, 5, 0],
      [true, 3, 80],
      [true, 7, 120],
      [false, 3, 160],
    ]);
  });

  test("remove stops further checks and events", async () => {
    const { sched, events, clock, calls } = start();
    sched.add({ rs: "a", checkers: [scripted("c", [true, false], { ...fast, retry: 0 })] });
    await clock.advance(10);
    sched.remove("a");
    expect(clock.armed).toBe(0);
    await clock.advance(100);
    expect(calls.get("c")).toEqual([0]);
    expect(events).toEqual([]);
    expect(sched.status("a")).toBeUndefined();
  });

  test("a thousand real servers on one loop", async () => {
    const { sched, events, clock } = start();
    for (let i = 0; i < 1000; i++)
      sched.add({ rs: `rs${i}`, checkers: [scripted(`c${i}`, [i % 2 === 0], { ...fast })] });
    await clock.advance(100);
    expect(events.length).toBe(500);
    expect(events.every((e) => !e.up && e.t === 0)).toBe(true);
    expect(sched.keys().length).toBe(1000);
    expect(clock.armed).toBe(1000);
  });
});

describe("scheduler with real checks", () => {
  test("HTTP server failing N times then recovering: retry + delay_before_retry counted at the server", async () => {
    let hits = 0;
    const hitTimes: number[] = [];
    // 1st request ok, then 3 failures, then ok again
    const srv = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch() {
        hits++;
        hitTimes.push(since());
        return new Response("x", { status: hits >= 2 && hits <= 4 ? 500 : 200 });
      },
    });
    try {
      const events: HealthEvent[] = [];
      sched = new CheckScheduler({ onChange: (e) => events.push(e), random: () => 0 });
      const spec: CheckerSpec = {
        type: "HTTP_GET",
        conn: loopback(srv.port!, 500),
        urls: [{ path: "/" }],
        timing: { delayLoopMs: 400, retry: 3, delayBeforeRetryMs: 20, warmupMs: 0 },
      };
      sched.add({ rs: "web", checkers: [spec] });
      // waits for the hits rather than a fixed time: a loaded machine only makes this slower
      for (let t = 0; hits < 5 && t < 3000; t += 10) await Bun.sleep(10);
      // three failures are within retry 3: never down
      expect(events).toEqual([]);
      expect(hits).toBeGreaterThanOrEqual(5);
      // the retries came delay_before_retry apart, the regular checks delay_loop apart
      // (400 against 20 ms: wide apart, so that a loaded machine cannot blur the two)
      expect(hitTimes[1]! - hitTimes[0]!).toBeGreaterThanOrEqual(395);
      expect(hitTimes[2]! - hitTimes[1]!).toBeLessThan(200);
      expect(hitTimes[3]! - hitTimes[2]!).toBeLessThan(200);
      expect(hitTimes[4]! - hitTimes[3]!).toBeLessThan(200);
      sched.stop();

      // the same failure pattern with retry 2 takes the server down, and the next success brings it back
      hits = 0;
      hitTimes.length = 0;
      sched = new CheckScheduler({ onChange: (e) => events.push(e), random: () => 0 });
      sched.add({ rs: "web", checkers: [{ ...spec, timing: { ...spec.timing, retry: 2 } }] });
      for (let t = 0; events.length < 2 && t < 3000; t += 10) await Bun.sleep(10);
      expect(events.map((e) => e.up)).toEqual([false, true]);
      expect(events[0]!.reason).toBe("HTTP_GET 127.0.0.1:" + srv.port + ": /: status 500");
    } finally {
      srv.stop(true);
    }
  });

  test("TCP listener going away and coming back", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    const events: HealthEvent[] = [];
    sched = new CheckScheduler({ onChange: (e) => events.push(e), random: () => 0 });
    sched.add({
      rs: "tcp",
      checkers: [
        {
          type: "TCP_CHECK",
          conn: loopback(port, 200),
          timing: { delayLoopMs: 30, retry: 1, delayBeforeRetryMs: 10, warmupMs: 0 },
        },
      ],
    });
    await until(() => (sched?.status("tcp")?.checkers[0]?.hasRun ?? false) && events.length === 0, 5000);
    l.stop(true);
    await until(() => events.length > 0, 5000);
    expect(events.map((e) => [e.up, e.reason.split(": ")[1]])).toEqual([[false, "ECONNREFUSED"]]);
    const l2 = Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } });
    try {
      await until(() => events.length > 1, 5000);
      expect(events.map((e) => e.up)).toEqual([false, true]);
      expect(events[1]!.latencyMs).toBeLessThan(200);
    } finally {
      l2.stop(true);
    }
  });

  test("MISC_CHECK with misc_dynamic sets the weight through the scheduler", async () => {
    const events: HealthEvent[] = [];
    sched = new CheckScheduler({ onChange: (e) => events.push(e), random: () => 0 });
    sched.add({
      rs: "m",
      weight: 1,
      checkers: [
        {
          type: "MISC_CHECK",
          miscPath: "/bin/sh -c 'exit 12'",
          miscDynamic: true,
          timing: { delayLoopMs: 1000, warmupMs: 0 },
        },
      ],
    });
    await until(() => events.length > 0, 5000);
    await Bun.sleep(50);
    expect(events).toEqual([expect.objectContaining({ rs: "m", up: true, weight: 10 })]);
  });
});
