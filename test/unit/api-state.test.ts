// GetState's load-balancing part (agent/api/state.ts): the check child's LvsStatus, as a real
// LvsRuntime on a fake IPVS kernel produces it and as it crosses the supervisor socket (JSON), turned
// into VirtualServerState/RealServerState for every server of the running config; what is reported
// before the check child said anything; malformed input; and the check child's events.
import { describe, expect, test } from "bun:test";
import pino from "pino";
import { AgentState, parseLvsEvent } from "../../agent/api/state.ts";
import type { CheckerSpec, CheckResult } from "../../agent/check/types.ts";
import { Config } from "../../agent/config/model.ts";
import { IpvsClient } from "../../agent/lvs/ipvs-client.ts";
import { LvsRuntime } from "../../agent/lvs/runtime.ts";
import * as pb from "../../proto/gen/vigil/v1/agent.ts";
import { FakeIpvsKernel } from "./ipvs-fake-kernel.ts";

const VIP = "192.0.2.10";
const VS = `${VIP}:80/TCP`;
const CHECK = { type: "TCP_CHECK" as const, warmup: 0, retry: 0, delayLoop: 0.01, delayBeforeRetry: 0.01 };
const CFG = Config.parse({
  virtualServers: [
    {
      address: VIP,
      port: 80,
      protocol: "TCP",
      lbAlgo: "rr",
      lbKind: "NAT",
      realServers: [
        { address: "198.51.100.1", weight: 4, checkers: [CHECK] },
        { address: "198.51.100.2", port: 8080, checkers: [CHECK] },
      ],
    },
  ],
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("virtual and real servers in GetState", () => {
  test("before the check child reports: every configured server, UNKNOWN, the operator's drain", () => {
    const st = new AgentState();
    expect(st.ipvs()).toEqual({ state: "unknown", error: "" });
    const vss = st.virtualServerStates(CFG, (vs, rs) => vs === VS && rs === "198.51.100.2:8080");
    expect(vss.map((v) => pb.VirtualServerState.toJSON(v))).toEqual([
      {
        name: VS,
        realServers: [
          { key: `${VS} -> 198.51.100.1:80`, address: "198.51.100.1", port: 80, health: "UNKNOWN" },
          {
            key: `${VS} -> 198.51.100.2:8080`,
            address: "198.51.100.2",
            port: 8080,
            health: "UNKNOWN",
            drained: true,
          },
        ],
      },
    ]);
  });

  test("from a runtime's status through JSON: health, weights, kernel, last check, drain", async () => {
    const kernel = new FakeIpvsKernel();
    const rt = new LvsRuntime({
      log: pino({ level: "silent" }),
      openIpvs: () => IpvsClient.open(kernel),
      runCheck: async (spec: CheckerSpec): Promise<CheckResult> =>
        spec.type !== "MISC_CHECK" && spec.conn.connectIp === "198.51.100.1"
          ? { ok: true, reason: "connected", latencyMs: 1 }
          : { ok: false, reason: "ECONNREFUSED", latencyMs: 1 },
      notify: () => {},
    });
    rt.setDrained([`${VS} -> 198.51.100.1:80`]);
    rt.apply(CFG, 3);
    const deadline = Date.now() + 2000;
    while (rt.status().virtualServers[0]!.realServers.some((r) => !r.checkers[0]?.hasRun)) {
      if (Date.now() > deadline) throw new Error("checks did not run");
      await sleep(5);
    }
    await sleep(20);
    const st = new AgentState();
    st.onLvsStatus(JSON.parse(JSON.stringify(rt.status())));
    rt.stop();
    expect(st.ipvs()).toEqual({ state: "ok", error: "" });
    const [vs] = st.virtualServerStates(CFG, (v, r) => v === VS && r === "198.51.100.1:80");
    // the only live server is drained: weight 0 is below quorum 1
    expect(vs).toMatchObject({ name: VS, inKernel: true, quorumUp: false, weightSum: 0, errors: [] });
    const [a, b] = vs!.realServers;
    expect(a).toMatchObject({
      health: "UP",
      weight: 4,
      inTable: true,
      tableWeight: 0,
      inKernel: true,
      kernelWeight: 0,
      drained: true,
      lastCheckResult: "TCP_CHECK 198.51.100.1:80: ok, connected",
    });
    expect(a!.lastCheckUnixMs).toBeGreaterThan(Date.now() - 5000);
    expect(b).toMatchObject({
      health: "DOWN",
      weight: 1,
      inTable: false,
      inKernel: false,
      drained: false,
      lastCheckResult: "TCP_CHECK 198.51.100.2:8080: failed, ECONNREFUSED",
    });
  });

  test("a malformed status is counted and ignored; the check child gone is UNKNOWN again", () => {
    const st = new AgentState();
    st.onLvsStatus({ ipvs: "unavailable", ipvsError: "no IPVS", virtualServers: [] });
    st.onLvsStatus({ ipvs: 1, virtualServers: "x" });
    expect(st.invalidSnapshots).toBe(1);
    expect(st.ipvs()).toEqual({ state: "unavailable", error: "no IPVS" });
    st.onLvsStatus(null);
    expect(st.ipvs().state).toBe("unknown");
  });
});

describe("check child events", () => {
  test("health and quorum become WatchEvents bodies; anything else is dropped", () => {
    expect(
      parseLvsEvent("health", {
        vs: VS,
        rs: "198.51.100.1:80",
        up: false,
        weight: 4,
        reason: "TCP_CHECK: x",
      }),
    ).toEqual({
      health: pb.HealthChange.fromPartial({
        virtualServer: VS,
        realServer: "198.51.100.1:80",
        healthy: false,
        weight: 4,
        detail: "TCP_CHECK: x",
      }),
    });
    expect(parseLvsEvent("quorum", { vs: VS, up: true, weightSum: 5, quorum: 2, hysteresis: 1 })).toEqual({
      quorum: pb.QuorumChange.fromPartial({
        virtualServer: VS,
        up: true,
        weightSum: 5,
        quorum: 2,
        hysteresis: 1,
      }),
    });
    expect(parseLvsEvent("health", { vs: VS, up: "yes" })).toBeNull();
    expect(parseLvsEvent("quorum", undefined)).toBeNull();
    expect(parseLvsEvent("transition", { instance: "VI_1" })).toBeNull();
  });
});
