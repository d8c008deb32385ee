// ha_suspend (agent/lvs/ha-suspend.ts, CheckScheduler.suspend, LvsRuntime): checkers of a virtual
// server with ha_suspend run only while its address is on this host, as keepalived 2.2.7's
// update_checker_activity / disabled checkers do; state is kept across a suspension.
import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import pino from "pino";
import { CheckScheduler } from "../../agent/check/scheduler.ts";
import type { CheckerSpec, CheckResult } from "../../agent/check/types.ts";
import { Config, virtualServerKey } from "../../agent/config/model.ts";
import { type HostAddress, haSuspendActive, haSuspendChanges } from "../../agent/lvs/ha-suspend.ts";
import { IpvsClient } from "../../agent/lvs/ipvs-client.ts";
import { LvsRuntime } from "../../agent/lvs/runtime.ts";
import { FakeIpvsKernel } from "./ipvs-fake-kernel.ts";
import { until } from "./wait.ts";

const VIP = "192.0.2.10";
const VIP6 = "2001:db8::10";
const CHECK = { type: "TCP_CHECK" as const, warmup: 0, retry: 0, delayLoop: 0.01, delayBeforeRetry: 0.01 };

function cfg(): Config {
  const vs = (address: string, haSuspend: boolean, rs: string) => ({
    address,
    port: 80,
    protocol: "TCP" as const,
    lbAlgo: "rr" as const,
    lbKind: "NAT" as const,
    haSuspend,
    realServers: [{ address: rs, checkers: [CHECK] }],
  });
  return Config.parse({
    virtualServers: [
      vs(VIP, true, "198.51.100.1"),
      vs(VIP6, true, "2001:db8::1"),
      vs("192.0.2.11", false, "198.51.100.2"),
    ],
  });
}

describe("haSuspendActive (pure)", () => {
  const vss = cfg().virtualServers;
  test("only ha_suspend virtual servers, active iff their address is on the host", () => {
    expect(haSuspendActive(vss, [])).toEqual(
      new Map([
        [`${VIP}:80/TCP`, false],
        [`[${VIP6}]:80/TCP`, false],
      ]),
    );
    const host: HostAddress[] = [
      { family: 4, address: "192.0.2.1" },
      { family: 4, address: VIP },
      // non-canonical spelling of the IPv6 VIP, as any producer might give it
      { family: 6, address: "2001:0db8:0:0::10" },
    ];
    expect(haSuspendActive(vss, host)).toEqual(
      new Map([
        [`${VIP}:80/TCP`, true],
        [`[${VIP6}]:80/TCP`, true],
      ]),
    );
  });
  test("the same address on several interfaces counts once present; order does not matter", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(VIP, "192.0.2.1", "192.0.2.11", VIP6, "2001:db8::99"), { maxLength: 8 }),
        (addrs) => {
          const host = addrs.map((a): HostAddress => ({ family: a.includes(":") ? 6 : 4, address: a }));
          const m = haSuspendActive(vss, host);
          expect(m.get(`${VIP}:80/TCP`)).toBe(addrs.includes(VIP));
          expect(m.get(`[${VIP6}]:80/TCP`)).toBe(addrs.includes(VIP6));
          expect(m.has("192.0.2.11:80/TCP")).toBe(false);
          expect(haSuspendActive(vss, [...host].reverse())).toEqual(m);
        },
      ),
    );
  });
  test("changes: new keys and flipped ones only", () => {
    const a = new Map([
      ["x", true],
      ["y", false],
    ]);
    const b = new Map([
      ["x", true],
      ["y", true],
      ["z", false],
    ]);
    expect(haSuspendChanges(a, b)).toEqual([
      ["y", true],
      ["z", false],
    ]);
    expect(haSuspendChanges(b, b)).toEqual([]);
  });
});

let sched: CheckScheduler | null = null;
afterEach(() => {
  sched?.stop();
  sched = null;
});

describe("CheckScheduler.suspend", () => {
  test("a suspended server runs no check and keeps its state; resumed, checks run again", async () => {
    let calls = 0;
    let ok = false;
    const run = async (): Promise<CheckResult> => {
      calls++;
      return { ok, reason: ok ? "ok" : "fail", latencyMs: 0 };
    };
    const changes: boolean[] = [];
    sched = new CheckScheduler({ onChange: (e) => changes.push(e.up), run, random: () => 0 });
    const spec: CheckerSpec = {
      type: "TCP_CHECK",
      conn: { connectIp: "198.51.100.1", connectPort: 80, connectTimeoutMs: 100 },
      timing: { delayLoopMs: 10, retry: 0, warmupMs: 0 },
    };
    sched.add({ rs: "a", checkers: [spec] });
    await until(() => changes.length === 1, 5000);
    expect(changes).toEqual([false]);
    sched.suspend("a", true);
    // a check already in flight still reports; then nothing runs
    await Bun.sleep(15);
    const frozen = calls;
    ok = true;
    await Bun.sleep(60);
    expect(calls).toBe(frozen);
    expect(sched.status("a")).toMatchObject({ up: false, suspended: true });
    sched.suspend("a", false);
    await until(() => changes.length === 2, 5000);
    expect(calls).toBeGreaterThan(frozen);
    expect(changes).toEqual([false, true]);
    expect(sched.status("a")).toMatchObject({ up: true, suspended: false });
  });
});

describe("LvsRuntime with ha_suspend", () => {
  test("checks follow the VIP; other virtual servers are not affected; the table is programmed throughout", async () => {
    const host: HostAddress[] = [];
    const checked = new Map<string, number>();
    const runCheck = async (spec: CheckerSpec): Promise<CheckResult> => {
      const ip = spec.type === "MISC_CHECK" ? "" : spec.conn.connectIp;
      checked.set(ip, (checked.get(ip) ?? 0) + 1);
      return { ok: true, reason: "connected", latencyMs: 0 };
    };
    const logs: Record<string, unknown>[] = [];
    const kernel = new FakeIpvsKernel();
    const rt = new LvsRuntime({
      log: pino({ level: "info" }, { write: (s: string) => void logs.push(JSON.parse(s)) }),
      openIpvs: () => IpvsClient.open(kernel),
      runCheck,
      hostAddresses: () => host,
      haSuspendPollMs: 5,
    });
    const c = cfg();
    rt.apply(c, 1);
    await until(() => (checked.get("198.51.100.2") ?? 0) >= 3, 5000);
    expect(checked.get("198.51.100.1")).toBeUndefined();
    expect(checked.get("2001:db8::1")).toBeUndefined();
    expect(checked.get("198.51.100.2")).toBeGreaterThan(0);
    expect(kernel.table.has(`tcp ${VIP}:80`)).toBe(true);
    const suspended = () =>
      rt
        .status()
        .virtualServers.map((v) => [
          v.key,
          v.realServers[0]!.checkers.length > 0 && v.realServers[0]!.suspended,
        ]);
    expect(suspended()).toEqual([
      [virtualServerKey(c.virtualServers[0]!), true],
      [virtualServerKey(c.virtualServers[1]!), true],
      [virtualServerKey(c.virtualServers[2]!), false],
    ]);
    host.push({ family: 4, address: VIP });
    await until(() => (checked.get("198.51.100.1") ?? 0) > 0, 5000);
    expect(checked.get("2001:db8::1")).toBeUndefined();
    expect(logs.some((l) => l["msg"] === "activating health checkers" && l["vs"] === `${VIP}:80/TCP`)).toBe(
      true,
    );
    host.length = 0;
    await until(() => suspended()[0]![1] === true, 5000);
    const after = checked.get("198.51.100.1") ?? 0;
    await Bun.sleep(60);
    expect(checked.get("198.51.100.1")).toBe(after);
    expect(logs.some((l) => l["msg"] === "suspending health checkers" && l["vs"] === `${VIP}:80/TCP`)).toBe(
      true,
    );
    rt.stop();
  });
});
