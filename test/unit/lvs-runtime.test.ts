// The check child's engine (agent/lvs/runtime.ts) on a fake IPVS kernel and fake checks: health
// changes reach the kernel (debounced), kernel refusals stay with their service, reloads keep the
// health of unchanged servers, scripts run on transitions, no IPVS is a reported state, not a crash.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import pino from "pino";
import type { HealthEvent } from "../../agent/check/scheduler.ts";
import type { CheckerSpec, CheckResult } from "../../agent/check/types.ts";
import { Config, type ConfigInput } from "../../agent/config/model.ts";
import { computeDesired, quorumStates, type RsHealth } from "../../agent/lvs/desired.ts";
import { IpvsClient } from "../../agent/lvs/ipvs-client.ts";
import { LvsRuntime, type LvsRuntimeDeps } from "../../agent/lvs/runtime.ts";
import {
  IPVS_CMD_DEL_DEST,
  IPVS_CMD_DEL_SERVICE,
  IPVS_CMD_FLUSH,
  IPVS_CMD_GET_DEST,
  IPVS_CMD_GET_SERVICE,
} from "../../agent/wire/ipvs.ts";
import { FakeIpvsKernel } from "./ipvs-fake-kernel.ts";
import { drivenRuntime } from "./lvs-driven.ts";
import { until } from "./wait.ts";

const RS1 = "198.51.100.1";
const RS2 = "198.51.100.2";
const SORRY = "203.0.113.9";
const VIP = "192.0.2.10";
/** fast, deterministic checks: no warmup, no retries, 10 ms apart */
const CHECK = { type: "TCP_CHECK" as const, warmup: 0, retry: 0, delayLoop: 0.01, delayBeforeRetry: 0.01 };

type VsIn = NonNullable<ConfigInput["virtualServers"]>[number];
function cfg(vs: Partial<VsIn> = {}, more: VsIn[] = [], globalDefs: ConfigInput["globalDefs"] = {}): Config {
  return Config.parse({
    globalDefs,
    virtualServers: [
      {
        address: VIP,
        port: 80,
        protocol: "TCP",
        lbAlgo: "rr",
        lbKind: "NAT",
        realServers: [
          { address: RS1, checkers: [CHECK], notifyUp: "/bin/up rs1", notifyDown: "/bin/down rs1" },
          { address: RS2, checkers: [CHECK] },
        ],
        ...vs,
      },
      ...more,
    ],
  });
}

interface Harness {
  rt: LvsRuntime;
  kernel: FakeIpvsKernel;
  alive: Set<string>;
  scripts: string[];
  logs: Record<string, unknown>[];
}

function harness(o: Partial<LvsRuntimeDeps> & { kernel?: FakeIpvsKernel } = {}): Harness {
  const kernel = o.kernel ?? new FakeIpvsKernel();
  const alive = new Set([RS1, RS2, SORRY]);
  const scripts: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const log = pino({ level: "debug" }, { write: (s: string) => void logs.push(JSON.parse(s)) });
  const runCheck = async (spec: CheckerSpec): Promise<CheckResult> => {
    const ip = spec.type === "MISC_CHECK" ? "" : spec.conn.connectIp;
    return alive.has(ip)
      ? { ok: true, reason: "connected", latencyMs: 1 }
      : { ok: false, reason: "ECONNREFUSED", latencyMs: 1 };
  };
  const rt = new LvsRuntime({
    log,
    openIpvs: () => IpvsClient.open(kernel),
    runCheck,
    notify: (argv, what) => scripts.push(`${argv.join(" ")} | ${what}`),
    ...o,
  });
  return { rt, kernel, alive, scripts, logs };
}

/** "ADDR:PORT=W" of a service in the fake kernel */
function table(k: FakeIpvsKernel, svc = `tcp ${VIP}:80`): string[] {
  const e = k.table.get(svc);
  if (!e) return [];
  return [...e.dests.values()].map((d) => `${d.addr}:${d.port}=${d.weight}`).sort();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("programming the kernel", () => {
  test("first config: services and dests in the kernel, status reports them", () => {
    const h = harness();
    h.rt.apply(cfg(), 1);
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`, `${RS2}:80=1`]);
    const st = h.rt.status();
    expect(st.ipvs).toBe("ok");
    expect(st.generation).toBe(1);
    expect(st.virtualServers[0]).toMatchObject({
      key: `${VIP}:80/TCP`,
      inKernel: true,
      quorumUp: true,
      weightSum: 2,
    });
    expect(st.virtualServers[0]!.realServers.map((r) => [r.key, r.up, r.inKernel, r.kernelWeight])).toEqual([
      [`${RS1}:80`, true, true, 1],
      [`${RS2}:80`, true, true, 1],
    ]);
    h.rt.stop();
  });

  test("a failing server leaves the table and comes back; scripts on transitions; one apply per burst", async () => {
    const h = harness();
    h.rt.apply(cfg(), 1);
    h.alive.delete(RS1);
    await until(() => table(h.kernel).length === 1);
    expect(table(h.kernel)).toEqual([`${RS2}:80=1`]);
    expect(h.scripts).toContain(`/bin/down rs1 | notify_down ${VIP}:80/TCP -> ${RS1}:80`);
    expect(h.rt.status().virtualServers[0]!.realServers[0]).toMatchObject({
      up: false,
      inKernel: false,
      inTable: false,
    });
    const last = h.rt.status().virtualServers[0]!.realServers[0]!.checkers[0]!.last;
    expect(last?.reason).toBe("ECONNREFUSED");
    h.alive.add(RS1);
    await until(() => table(h.kernel).length === 2);
    expect(h.scripts).toContain(`/bin/up rs1 | notify_up ${VIP}:80/TCP -> ${RS1}:80`);
    h.rt.stop();
  });

  test("health changes in one tick are applied once (debounce)", async () => {
    const deferred: (() => void)[] = [];
    const h = harness({ defer: (fn) => deferred.push(fn) });
    h.rt.apply(cfg(), 1);
    h.alive.clear();
    await sleep(40);
    // both servers went down, possibly several events, but at most one pending apply
    expect(deferred.length).toBe(1);
    deferred.shift()!();
    expect(table(h.kernel)).toEqual([]);
    h.rt.stop();
  });

  test("inhibit_on_failure: weight 0 instead of removal", async () => {
    const h = harness();
    h.rt.apply(cfg({ inhibitOnFailure: true }), 1);
    h.alive.delete(RS2);
    await until(() => table(h.kernel).includes(`${RS2}:80=0`));
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`, `${RS2}:80=0`]);
    h.rt.stop();
  });

  test("quorum lost: sorry server takes over, quorum scripts run; regained: back", async () => {
    const h = harness();
    h.rt.apply(
      cfg({ quorum: 2, sorryServer: { address: SORRY }, quorumUp: "/bin/qup", quorumDown: "/bin/qdown" }),
      1,
    );
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`, `${RS2}:80=1`]);
    h.alive.delete(RS1);
    await until(() => table(h.kernel).includes(`${SORRY}:80=1`));
    expect(table(h.kernel)).toEqual([`${SORRY}:80=1`]);
    expect(h.scripts).toContain(`/bin/qdown | quorum_down ${VIP}:80/TCP`);
    expect(h.rt.status().virtualServers[0]).toMatchObject({ quorumUp: false, sorryActive: true });
    h.alive.add(RS1);
    await until(() => table(h.kernel).length === 2 && !table(h.kernel).includes(`${SORRY}:80=1`));
    expect(h.scripts).toContain(`/bin/qup | quorum_up ${VIP}:80/TCP`);
    h.rt.stop();
  });

  test("a kernel refusal (unknown scheduler) is logged with its service; other services programmed", () => {
    const kernel = new FakeIpvsKernel();
    kernel.schedulers.delete("lblcr");
    const h = harness({ kernel });
    const other: VsIn = {
      address: "192.0.2.11",
      port: 443,
      protocol: "TCP",
      lbAlgo: "lblcr",
      lbKind: "NAT",
      realServers: [{ address: RS1 }],
    };
    h.rt.apply(cfg({}, [other]), 1);
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`, `${RS2}:80=1`]);
    expect(h.kernel.table.has("tcp 192.0.2.11:443")).toBe(false);
    const err = h.logs.find((l) => l["level"] === 50 && l["service"] === "tcp 192.0.2.11:443");
    expect(err).toBeDefined();
    expect(String(err?.["msg"])).toContain("ENOENT");
    const st = h.rt.status();
    expect(st.virtualServers[1]).toMatchObject({ inKernel: false });
    expect(st.virtualServers[1]!.errors[0]).toContain("add-service");
    expect(st.virtualServers[0]!.errors).toEqual([]);
    expect(st.lastReconcile).toMatchObject({ errors: 1, skipped: 1 });
    h.rt.stop();
  });

  test("foreign services are never touched; no flush", () => {
    const kernel = new FakeIpvsKernel();
    const h0 = harness({ kernel });
    h0.rt.apply(cfg({ address: "192.0.2.99" }), 1); // a service "someone else" made, via another runtime
    h0.rt.stop();
    const h = harness({ kernel });
    h.rt.apply(cfg(), 1);
    expect(kernel.table.has("tcp 192.0.2.99:80")).toBe(true);
    expect(kernel.log.some((l) => l.cmd === IPVS_CMD_FLUSH)).toBe(false);
    h.rt.stop();
  });
});

describe("incremental programming", () => {
  const reads = (k: FakeIpvsKernel) =>
    k.log.filter((e) => e.cmd === IPVS_CMD_GET_SERVICE || e.cmd === IPVS_CMD_GET_DEST).length;

  test("a health change sends only its op, no kernel read; a reload and the resync timer read it again", async () => {
    const h = harness({ resyncMs: 150 });
    h.rt.apply(cfg(), 1);
    expect(reads(h.kernel)).toBeGreaterThan(0); // adoption
    h.kernel.log.length = 0;
    h.alive.delete(RS1);
    await until(() => table(h.kernel).length === 1);
    expect(h.kernel.log.map((e) => e.cmd)).toEqual([IPVS_CMD_DEL_DEST]);

    // someone deletes the service by hand: the next resync (timer) reads the kernel and repairs it
    h.kernel.table.delete(`tcp ${VIP}:80`);
    await until(() => table(h.kernel).length === 1, 3000);
    expect(reads(h.kernel)).toBeGreaterThan(0);

    h.kernel.log.length = 0;
    h.rt.apply(cfg({ lbAlgo: "wrr" }), 2);
    expect(reads(h.kernel)).toBeGreaterThan(0);
    expect(h.kernel.table.get(`tcp ${VIP}:80`)?.service.sched).toBe("wrr");
    h.rt.stop();
  });

  test("after a refusal the next reconcile reads the kernel; status shows what the kernel has", async () => {
    const kernel = new FakeIpvsKernel();
    kernel.schedulers.delete("wrr");
    const h = harness({ kernel, resyncMs: 0 });
    h.rt.apply(cfg({ lbAlgo: "wrr" }), 1);
    expect(h.rt.status().virtualServers[0]).toMatchObject({ inKernel: false });
    expect(h.rt.status().lastReconcile).toMatchObject({ errors: 1, skipped: 2 });
    kernel.schedulers.add("wrr");
    kernel.log.length = 0;
    h.alive.delete(RS2);
    await until(() => table(kernel).length === 1);
    expect(reads(kernel)).toBeGreaterThan(0);
    expect(table(kernel)).toEqual([`${RS1}:80=1`]);
    expect(h.rt.status().virtualServers[0]).toMatchObject({ inKernel: true });
    h.rt.stop();
  });
});

describe("incremental desired table", () => {
  // five virtual servers that exercise every rule that couples the real servers of one: quorum with
  // hysteresis, a sorry server (also duplicating a real server), inhibit_on_failure, dynamic weights
  const rsOf = (n: number) =>
    Array.from({ length: 4 }, (_, i) => ({
      address: `198.51.100.${n * 10 + i + 1}`,
      port: 80,
      weight: i + 1,
      checkers: [CHECK],
    }));
  const vs = { port: 80, protocol: "TCP", lbAlgo: "rr", lbKind: "NAT" } as const;
  const big = Config.parse({
    virtualServers: [
      { ...vs, address: "192.0.2.1", realServers: rsOf(0) },
      {
        ...vs,
        address: "192.0.2.2",
        quorum: 5,
        hysteresis: 2,
        realServers: rsOf(1),
        sorryServer: { address: SORRY, port: 80 },
      },
      { ...vs, address: "192.0.2.3", inhibitOnFailure: true, realServers: rsOf(2) },
      {
        ...vs,
        address: "192.0.2.4",
        quorum: 3,
        realServers: rsOf(3),
        sorryServer: { address: "198.51.100.31", port: 80 },
        sorryServerInhibit: true,
      },
      {
        ...vs,
        address: "192.0.2.5",
        port: 443,
        protocol: "UDP",
        lbAlgo: "wrr",
        quorum: 2,
        hysteresis: 1,
        realServers: rsOf(4),
      },
    ],
  });

  test("after any sequence of health changes and drains it equals a computation from scratch", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({
              vs: fc.nat(4),
              rs: fc.nat(3),
              up: fc.boolean(),
              weight: fc.option(fc.nat(20), { nil: undefined }),
            }),
            fc.record({ drain: fc.uniqueArray(fc.tuple(fc.nat(4), fc.nat(3)), { maxLength: 3 }) }),
          ),
          { maxLength: 25 },
        ),
        (steps) => {
          const { rt, ids, fire } = drivenRuntime(() => IpvsClient.open(new FakeIpvsKernel()));
          rt.apply(big, 1);
          // the reference: every virtual server recomputed every time, quorum carried over
          const health = new Map<string, RsHealth>();
          let drained = new Set<string>();
          let quorum = quorumStates(computeDesired(big, () => undefined));
          const idOf = (vs: number, rs: number) => ids[vs * 4 + rs]!;
          for (const st of steps) {
            if ("drain" in st) {
              drained = new Set(st.drain.map(([v, r]) => idOf(v, r)));
              rt.setDrained(drained);
            } else {
              const e: HealthEvent = { rs: idOf(st.vs, st.rs), up: st.up, reason: "x", latencyMs: 0 };
              if (st.weight !== undefined) e.weight = st.weight;
              fire(e);
              health.set(e.rs, e.weight === undefined ? { up: e.up } : { up: e.up, weight: e.weight });
            }
            const want = computeDesired(big, (id) => health.get(id), quorum, drained);
            quorum = quorumStates(want);
            expect(rt.desired()).toEqual(want);
          }
          rt.stop();
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("restart and reload", () => {
  test("a new runtime on a programmed kernel adopts the table: no ops at all", () => {
    const kernel = new FakeIpvsKernel();
    const a = harness({ kernel });
    a.rt.apply(cfg({ sorryServer: { address: SORRY }, sorryServerInhibit: true }), 1);
    a.rt.stop(); // stop leaves the table
    const before = JSON.stringify([...kernel.table.entries()].map(([k, e]) => [k, [...e.dests.keys()]]));
    const n = kernel.log.length;
    const b = harness({ kernel });
    b.rt.apply(cfg({ sorryServer: { address: SORRY }, sorryServerInhibit: true }), 1);
    const writes = kernel.log.slice(n).filter((l) => l.cmd !== 4 && l.cmd !== 8); // not GET_SERVICE/GET_DEST
    expect(writes).toEqual([]);
    expect(JSON.stringify([...kernel.table.entries()].map(([k, e]) => [k, [...e.dests.keys()]]))).toBe(
      before,
    );
    expect(b.rt.status().lastReconcile).toMatchObject({ ops: 0 });
    b.rt.stop();
  });

  test("reload: unchanged servers keep their health; changed ones restart; removed vs deleted", async () => {
    const h = harness();
    const second: VsIn = {
      address: "192.0.2.12",
      port: 80,
      protocol: "TCP",
      lbAlgo: "rr",
      lbKind: "NAT",
      realServers: [{ address: RS1 }],
    };
    h.rt.apply(cfg({}, [second]), 1);
    h.alive.delete(RS2);
    await until(() => table(h.kernel).length === 1);
    // RS2 must stay down across the reload although the fake check would now pass at once for RS1 only
    const stats = h.rt.apply(cfg({ lbAlgo: "wrr" }), 2);
    expect(stats).toEqual({ added: 0, changed: 0, removed: 1, kept: 2 });
    expect(h.kernel.table.get(`tcp ${VIP}:80`)?.service.sched).toBe("wrr");
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`]);
    expect(h.kernel.table.has("tcp 192.0.2.12:80")).toBe(false);
    expect(h.kernel.log.filter((l) => l.cmd === IPVS_CMD_DEL_SERVICE).map((l) => l.service)).toEqual([
      "tcp 192.0.2.12:80",
    ]);
    // a changed real server (new weight) is re-added with its checks starting over
    const s2 = h.rt.apply(
      cfg({
        lbAlgo: "wrr",
        realServers: [
          { address: RS1, weight: 3, checkers: [CHECK] },
          { address: RS2, checkers: [CHECK] },
        ],
      }),
      3,
    );
    expect(s2).toEqual({ added: 0, changed: 1, removed: 0, kept: 1 });
    expect(table(h.kernel)).toEqual([`${RS1}:80=3`]);
    expect(h.kernel.log.some((l) => l.cmd === IPVS_CMD_DEL_DEST)).toBe(true);
    h.rt.stop();
  });

  test("omega: stop runs notify_down and quorum_down scripts; table stays", () => {
    const h = harness();
    h.rt.apply(cfg({ omega: true, quorumDown: "/bin/qdown" }), 1);
    h.rt.stop();
    expect(h.scripts).toEqual([
      `/bin/down rs1 | notify_down ${VIP}:80/TCP -> ${RS1}:80 (omega)`,
      `/bin/qdown | quorum_down ${VIP}:80/TCP (omega)`,
    ]);
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`, `${RS2}:80=1`]);
    const h2 = harness();
    h2.rt.apply(cfg({ quorumDown: "/bin/qdown" }), 1);
    h2.rt.stop();
    expect(h2.scripts).toEqual([]);
  });
});

describe("notifications as keepalived 2.2.7 makes them (ipwrapper.c)", () => {
  const Q = { quorumUp: "/bin/qup", quorumDown: "/bin/qdown" };
  const OTHER: VsIn = {
    address: VIP,
    port: 8080,
    protocol: "TCP",
    lbAlgo: "rr",
    lbKind: "NAT",
    quorumUp: "/bin/qup2",
    realServers: [{ address: RS2, checkers: [CHECK], notifyDown: "/bin/down rs2@8080" }],
  };

  test("rs_init_notifies: notify_up for a server that starts up, at start and when a reload adds it", async () => {
    const init = { rsInitNotifies: true };
    const up1 = `/bin/up rs1 | notify_up ${VIP}:80/TCP -> ${RS1}:80 (rs_init_notifies)`;
    const h = harness();
    h.rt.apply(cfg({}, [], init), 1);
    expect(h.scripts).toEqual([up1]);
    // its checks then pass: no transition, no second notify_up
    await until(() => h.rt.status().virtualServers[0]!.realServers[0]!.checkers[0]!.hasRun);
    await sleep(50);
    expect(h.scripts).toEqual([up1]);
    // a reload that keeps it does not notify again; one that adds a server notifies that one
    const added: VsIn = {
      address: VIP,
      port: 8080,
      protocol: "TCP",
      lbAlgo: "rr",
      lbKind: "NAT",
      realServers: [{ address: RS2, notifyUp: "/bin/up rs2@8080" }],
    };
    h.rt.apply(cfg({}, [added], init), 2);
    expect(h.scripts).toEqual([
      up1,
      `/bin/up rs2@8080 | notify_up ${VIP}:8080/TCP -> ${RS2}:8080 (rs_init_notifies)`,
    ]);
    h.rt.stop();

    // without it (keepalived's default) nothing runs at start
    const h2 = harness();
    h2.rt.apply(cfg(), 1);
    await sleep(50);
    expect(h2.scripts).toEqual([]);
    h2.rt.stop();
  });

  test("rs_init_notifies: an alpha server starts down and is notified on its first success only", async () => {
    const h = harness();
    h.rt.apply(cfg({ alpha: true }, [], { rsInitNotifies: true }), 1);
    expect(h.scripts).toEqual([]);
    await until(() => h.scripts.length > 0);
    expect(h.scripts).toEqual([`/bin/up rs1 | notify_up ${VIP}:80/TCP -> ${RS1}:80`]);
    h.rt.stop();
  });

  test("start-up with enough weight: quorum_up once (gained quorum from the initial down)", async () => {
    const h = harness();
    h.rt.apply(cfg({ quorum: 2, ...Q }), 1);
    await sleep(50);
    expect(h.scripts).toEqual([`/bin/qup | quorum_up ${VIP}:80/TCP`]);
    h.rt.stop();
  });

  test("start-up below quorum: quorum_down with a sorry server, nothing without one", () => {
    // alpha: the servers start down, so the initial weight is 0
    const h = harness();
    h.rt.apply(cfg({ alpha: true, sorryServer: { address: SORRY }, ...Q }), 1);
    expect(h.scripts).toEqual([`/bin/qdown | quorum_down ${VIP}:80/TCP`]);
    expect(h.logs.some((l) => l["msg"] === "starting with quorum down")).toBe(true);
    h.rt.stop();
    const h2 = harness();
    h2.rt.apply(cfg({ alpha: true, ...Q }), 1);
    expect(h2.scripts).toEqual([]);
    h2.rt.stop();
  });

  test("a virtual server removed by a reload: notify_down for its alive servers, quorum_down, omega or not", async () => {
    const h = harness();
    h.rt.apply(cfg({ ...Q }, [OTHER]), 1);
    await until(() => h.rt.status().virtualServers[0]!.realServers.every((r) => r.checkers[0]?.hasRun));
    h.scripts.length = 0;
    // the second virtual server stays and is not notified
    h.rt.apply(Config.parse({ virtualServers: [OTHER] }), 2);
    expect(h.scripts).toEqual([
      `/bin/down rs1 | notify_down ${VIP}:80/TCP -> ${RS1}:80 (removed)`,
      `/bin/qdown | quorum_down ${VIP}:80/TCP (removed)`,
    ]);
    expect(h.kernel.table.has(`tcp ${VIP}:80`)).toBe(false);
    h.rt.stop();
  });

  test("a removed server that was already down gets no second notify_down; quorum down: no quorum_down", async () => {
    const h = harness();
    h.rt.apply(cfg({ quorum: 2, ...Q }, [OTHER]), 1);
    h.alive.delete(RS1);
    await until(() => h.scripts.includes(`/bin/qdown | quorum_down ${VIP}:80/TCP`));
    h.scripts.length = 0;
    h.rt.apply(Config.parse({ virtualServers: [OTHER] }), 2);
    expect(h.scripts).toEqual([]);
    h.rt.stop();
  });

  test("a real server removed from a virtual server that stays: notify_down; a virtual server added: start-up rules", () => {
    const h = harness();
    h.rt.apply(cfg({ ...Q }), 1);
    h.scripts.length = 0;
    h.rt.apply(cfg({ ...Q, realServers: [{ address: RS2, checkers: [CHECK] }] }, [OTHER]), 2);
    expect(h.scripts).toEqual([
      `/bin/down rs1 | notify_down ${VIP}:80/TCP -> ${RS1}:80 (removed)`,
      `/bin/qup2 | quorum_up ${VIP}:8080/TCP`,
    ]);
    h.rt.stop();
  });
});

describe("no IPVS", () => {
  test("unavailable: logged once, reported, checks keep running, reloads do not throw", async () => {
    const kernel = new FakeIpvsKernel();
    kernel.ipvs = false;
    const h = harness({ kernel });
    h.rt.apply(cfg(), 1);
    h.rt.apply(cfg({ lbAlgo: "wrr" }), 2);
    const st = h.rt.status();
    expect(st.ipvs).toBe("unavailable");
    expect(st.ipvsError).toContain("ENOENT");
    expect(h.logs.filter((l) => String(l["msg"]).includes("IPVS is not available")).length).toBe(1);
    h.alive.delete(RS1);
    await until(() => h.rt.status().virtualServers[0]!.realServers[0]!.up === false);
    expect(h.rt.status().virtualServers[0]!.realServers[0]).toMatchObject({
      inTable: false,
      inKernel: false,
    });
    h.rt.stop();
  });
  test("IPVS appears later: the next reload programs it", () => {
    const kernel = new FakeIpvsKernel();
    kernel.ipvs = false;
    const h = harness({ kernel });
    h.rt.apply(cfg(), 1);
    kernel.ipvs = true;
    h.rt.apply(cfg(), 2);
    expect(h.rt.status().ipvs).toBe("ok");
    expect(table(h.kernel)).toEqual([`${RS1}:80=1`, `${RS2}:80=1`]);
    h.rt.stop();
  });
});
