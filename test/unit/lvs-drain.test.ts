// Operator drain (API SetMaintenance) in the load-balancing engine: the desired table keeps a drained
// real server with weight 0 (keepalived's graceful drain), quorum counts it as 0, undrain gives back the
// health-determined weight; the runtime applies the set to the (fake) kernel, before and after the
// first config, and publishes health and quorum events.
import { describe, expect, test } from "bun:test";
import pino from "pino";
import type { CheckerSpec, CheckResult } from "../../agent/check/types.ts";
import { Config, type ConfigInput } from "../../agent/config/model.ts";
import { computeDesired } from "../../agent/lvs/desired.ts";
import { IpvsClient } from "../../agent/lvs/ipvs-client.ts";
import { type LvsEvent, LvsRuntime } from "../../agent/lvs/runtime.ts";
import { FakeIpvsKernel } from "./ipvs-fake-kernel.ts";
import { until } from "./wait.ts";

const VIP = "192.0.2.10";
const RS1 = "198.51.100.1";
const RS2 = "198.51.100.2";
const SORRY = "203.0.113.9";
const CHECK = { type: "TCP_CHECK" as const, warmup: 0, retry: 0, delayLoop: 0.01, delayBeforeRetry: 0.01 };
const ID1 = `${VIP}:80/TCP -> ${RS1}:80`;
const ID2 = `${VIP}:80/TCP -> ${RS2}:80`;

type VsIn = NonNullable<ConfigInput["virtualServers"]>[number];
function cfg(vs: Partial<VsIn> = {}): Config {
  return Config.parse({
    virtualServers: [
      {
        address: VIP,
        port: 80,
        protocol: "TCP",
        lbAlgo: "wrr",
        lbKind: "NAT",
        realServers: [
          { address: RS1, weight: 3, checkers: [CHECK] },
          { address: RS2, weight: 2, checkers: [CHECK] },
        ],
        ...vs,
      },
    ],
  });
}

const up = { up: true };
const down = { up: false };
function dests(c: Config, health: Record<string, { up: boolean; weight?: number }>, drained: string[]) {
  const t = computeDesired(c, (id) => health[id], new Map(), new Set(drained));
  return {
    dests: t.services[0]!.dests.map((d) => `${d.addr}=${d.weight}`).sort(),
    plan: t.virtualServers[0]!,
  };
}

describe("desired table with drained real servers", () => {
  test("a drained live server stays with weight 0 and counts 0 towards quorum", () => {
    const { dests: d, plan } = dests(cfg(), { [ID1]: up, [ID2]: up }, [ID1]);
    expect(d).toEqual([`${RS1}=0`, `${RS2}=2`]);
    expect(plan.weightSum).toBe(2);
    expect(plan.realServers[0]).toMatchObject({ drained: true, weight: 3, inTable: true, tableWeight: 0 });
    expect(plan.realServers[1]!.drained).toBeUndefined();
  });

  test("undrained: the health-determined weight again (dynamic weight included)", () => {
    expect(dests(cfg(), { [ID1]: { up: true, weight: 7 }, [ID2]: up }, []).dests).toEqual([
      `${RS1}=7`,
      `${RS2}=2`,
    ]);
    expect(dests(cfg(), { [ID1]: { up: true, weight: 7 }, [ID2]: up }, [ID1]).dests).toEqual([
      `${RS1}=0`,
      `${RS2}=2`,
    ]);
  });

  test("a drained server that fails leaves like any failed one (or weight 0 under inhibit)", () => {
    expect(dests(cfg(), { [ID1]: down, [ID2]: up }, [ID1]).dests).toEqual([`${RS2}=2`]);
    expect(dests(cfg({ inhibitOnFailure: true }), { [ID1]: down, [ID2]: up }, [ID1]).dests).toEqual([
      `${RS1}=0`,
      `${RS2}=2`,
    ]);
  });

  test("draining below quorum brings the sorry server, as weight 0 does in keepalived", () => {
    const c = cfg({ quorum: 3, sorryServer: { address: SORRY, port: 80 } });
    expect(dests(c, { [ID1]: up, [ID2]: up }, []).dests).toEqual([`${RS1}=3`, `${RS2}=2`]);
    const r = dests(c, { [ID1]: up, [ID2]: up }, [ID1]);
    expect(r.plan.quorumUp).toBe(false);
    expect(r.dests).toEqual([`${SORRY}=1`]);
  });
});

interface Harness {
  rt: LvsRuntime;
  kernel: FakeIpvsKernel;
  alive: Set<string>;
  events: LvsEvent[];
}

function harness(): Harness {
  const kernel = new FakeIpvsKernel();
  const alive = new Set([RS1, RS2, SORRY]);
  const events: LvsEvent[] = [];
  const runCheck = async (spec: CheckerSpec): Promise<CheckResult> => {
    const ip = spec.type === "MISC_CHECK" ? "" : spec.conn.connectIp;
    return alive.has(ip)
      ? { ok: true, reason: "connected", latencyMs: 1 }
      : { ok: false, reason: "ECONNREFUSED", latencyMs: 1 };
  };
  const rt = new LvsRuntime({
    log: pino({ level: "silent" }),
    openIpvs: () => IpvsClient.open(kernel),
    runCheck,
    notify: () => {},
    onEvent: (e) => events.push(e),
  });
  return { rt, kernel, alive, events };
}

function table(k: FakeIpvsKernel): string[] {
  const e = k.table.get(`tcp ${VIP}:80`);
  return e ? [...e.dests.values()].map((d) => `${d.addr}=${d.weight}`).sort() : [];
}

describe("runtime drain", () => {
  test("drain -> weight 0 in the kernel and in status; undrain -> weight back", () => {
    const h = harness();
    h.rt.apply(cfg(), 1);
    expect(table(h.kernel)).toEqual([`${RS1}=3`, `${RS2}=2`]);
    h.rt.setDrained([ID1]);
    expect(table(h.kernel)).toEqual([`${RS1}=0`, `${RS2}=2`]);
    const rs1 = h.rt.status().virtualServers[0]!.realServers[0]!;
    expect(rs1).toMatchObject({
      drained: true,
      up: true,
      weight: 3,
      inKernel: true,
      kernelWeight: 0,
      tableWeight: 0,
    });
    h.rt.setDrained([]);
    expect(table(h.kernel)).toEqual([`${RS1}=3`, `${RS2}=2`]);
    expect(h.rt.status().virtualServers[0]!.realServers[0]).toMatchObject({
      drained: false,
      kernelWeight: 3,
    });
    h.rt.stop();
  });

  test("a set given before the first config is in the first table programmed", () => {
    const h = harness();
    h.rt.setDrained([ID2]);
    expect(h.kernel.table.size).toBe(0);
    h.rt.apply(cfg(), 1);
    expect(table(h.kernel)).toEqual([`${RS1}=3`, `${RS2}=0`]);
    h.rt.stop();
  });

  test("a reload keeps the drain; ids of servers not in the config change nothing", () => {
    const h = harness();
    h.rt.setDrained([ID1, `${VIP}:80/TCP -> 198.51.100.99:80`]);
    h.rt.apply(cfg(), 1);
    h.rt.apply(cfg({ lbAlgo: "rr" }), 2);
    expect(table(h.kernel)).toEqual([`${RS1}=0`, `${RS2}=2`]);
    h.rt.stop();
  });

  test("health and quorum changes are published as events", async () => {
    const h = harness();
    h.rt.apply(cfg({ quorum: 4 }), 1);
    // at start quorum counts as down first (keepalived), so enough weight is a "gained" event
    await until(() => h.events.some((e) => e.type === "quorum"));
    h.alive.delete(RS1);
    await until(() => h.events.some((e) => e.type === "quorum" && !e.up));
    expect(h.events).toContainEqual({
      type: "health",
      vs: `${VIP}:80/TCP`,
      rs: `${RS1}:80`,
      up: false,
      weight: 3,
      reason: expect.stringContaining("ECONNREFUSED"),
    });
    expect(h.events).toContainEqual({
      type: "quorum",
      vs: `${VIP}:80/TCP`,
      up: false,
      weightSum: 2,
      quorum: 4,
      hysteresis: 0,
    });
    h.alive.add(RS1);
    await until(() => h.events.some((e) => e.type === "health" && e.up));
    await until(() => h.events.filter((e) => e.type === "quorum").length === 3);
    expect(h.events.filter((e) => e.type === "quorum").map((e) => e.up)).toEqual([true, false, true]);
    // the status carries when a check last finished
    expect(h.rt.status().virtualServers[0]!.realServers[0]!.lastCheckAt).toBeGreaterThan(Date.now() - 5000);
    h.rt.stop();
  });
});
