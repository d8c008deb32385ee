// The desired IPVS table from config + health (agent/lvs/desired.ts), against keepalived's semantics
// (check/ipwrapper.c): failing servers removed or inhibited, quorum with hysteresis, sorry server and
// sorry_server_inhibit, alpha, groups, persistence and flags; plus reconcile() round trips.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { Config, type ConfigInput } from "../../agent/config/model.ts";
import {
  computeDesired,
  type DesiredTable,
  expandRange,
  granularityPrefix,
  nextQuorumUp,
  quorumNotification,
  quorumStates,
  type RsHealth,
  rsId,
} from "../../agent/lvs/desired.ts";
import { reconcile } from "../../agent/lvs/reconcile.ts";
import {
  IP_VS_SVC_F_ONEPACKET,
  IP_VS_SVC_F_PERSISTENT,
  IP_VS_SVC_F_SCHED_SH_FALLBACK,
  IP_VS_SVC_F_SCHED_SH_PORT,
  serviceKeyString,
} from "../../agent/wire/ipvs.ts";

type VsIn = NonNullable<ConfigInput["virtualServers"]>[number];
const RS1 = "198.51.100.1";
const RS2 = "198.51.100.2";
const RS3 = "198.51.100.3";
const SORRY = "203.0.113.9";
const tcp = [{ type: "TCP_CHECK" as const }];

function cfg(vs: Partial<VsIn>, extra: Partial<ConfigInput> = {}): Config {
  return Config.parse({
    virtualServers: [
      {
        address: "192.0.2.10",
        port: 80,
        protocol: "TCP",
        lbAlgo: "wrr",
        lbKind: "NAT",
        realServers: [
          { address: RS1, weight: 1, checkers: tcp },
          { address: RS2, weight: 2, checkers: tcp },
        ],
        ...vs,
      },
    ],
    ...extra,
  });
}

/** health by real server address (first virtual server) */
function healthOf(c: Config, h: Record<string, RsHealth>) {
  const vs = c.virtualServers[0]!;
  const byId = new Map(vs.realServers.map((r) => [rsId(vs, r), h[r.address]]));
  return (id: string) => byId.get(id);
}
const down = { up: false };
const up = { up: true };

/** dests of the first service as "ADDR:PORT w=N fwd" */
function dests(t: DesiredTable, i = 0): string[] {
  return (t.services[i]?.dests ?? []).map((d) => `${d.addr}:${d.port} w=${d.weight} ${d.fwd}`).sort();
}

describe("real servers and health", () => {
  test("all up: every server with its weight, NAT = masq", () => {
    const c = cfg({});
    const t = computeDesired(c, () => undefined);
    expect(t.services).toHaveLength(1);
    expect(t.services[0]).toMatchObject({
      key: { af: 4, protocol: "tcp", addr: "192.0.2.10", port: 80 },
      sched: "wrr",
      flags: 0,
    });
    expect(dests(t)).toEqual([`${RS1}:80 w=1 masq`, `${RS2}:80 w=2 masq`]);
  });
  test("a failing server is removed", () => {
    const c = cfg({});
    expect(dests(computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up })))).toEqual([`${RS2}:80 w=2 masq`]);
  });
  test("inhibit_on_failure (vs or rs): kept with weight 0", () => {
    const c = cfg({ inhibitOnFailure: true });
    expect(dests(computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up })))).toEqual([
      `${RS1}:80 w=0 masq`,
      `${RS2}:80 w=2 masq`,
    ]);
    const c2 = cfg({
      realServers: [
        { address: RS1, inhibitOnFailure: true, checkers: tcp },
        { address: RS2, checkers: tcp },
      ],
    });
    expect(dests(computeDesired(c2, healthOf(c2, { [RS1]: down, [RS2]: down })))).toEqual([
      `${RS1}:80 w=0 masq`,
    ]);
    // an rs can opt out of the vs default
    const c3 = cfg({
      inhibitOnFailure: true,
      realServers: [{ address: RS1, inhibitOnFailure: false, checkers: tcp }, { address: RS2 }],
    });
    expect(dests(computeDesired(c3, healthOf(c3, { [RS1]: down })))).toEqual([`${RS2}:80 w=1 masq`]);
  });
  test("dynamic weight (misc_dynamic) replaces the configured weight and is clamped", () => {
    const c = cfg({});
    expect(dests(computeDesired(c, healthOf(c, { [RS1]: { up: true, weight: 7 }, [RS2]: up })))).toEqual([
      `${RS1}:80 w=7 masq`,
      `${RS2}:80 w=2 masq`,
    ]);
    expect(dests(computeDesired(c, healthOf(c, { [RS1]: { up: true, weight: -3 }, [RS2]: down })))).toEqual([
      `${RS1}:80 w=0 masq`,
    ]);
  });
  test("weight defaults to the virtual server's weight; rs port overrides; lvs_method per rs", () => {
    const c = cfg({
      weight: 4,
      lbKind: "DR",
      realServers: [
        { address: RS1 },
        { address: RS2, port: 8080, lvsMethod: "TUN", uthreshold: 9, lthreshold: 2 },
      ],
    });
    const t = computeDesired(c, () => undefined);
    expect(dests(t)).toEqual([`${RS1}:80 w=4 route`, `${RS2}:8080 w=4 tunnel`]);
    expect(t.services[0]!.dests.find((d) => d.addr === RS2)).toMatchObject({
      upperThreshold: 9,
      lowerThreshold: 2,
    });
  });
  test("alpha: servers with checkers start down until health reports; without checkers always up", () => {
    const c = cfg({ alpha: true, realServers: [{ address: RS1, checkers: tcp }, { address: RS2 }] });
    const t = computeDesired(c, () => undefined);
    expect(dests(t)).toEqual([`${RS2}:80 w=1 masq`]);
    const c2 = cfg({ realServers: [{ address: RS1, checkers: [{ type: "TCP_CHECK", alpha: true }] }] });
    expect(dests(computeDesired(c2, () => undefined))).toEqual([]);
    const c3 = cfg({ realServers: [{ address: RS1, alpha: true, checkers: tcp }] });
    expect(dests(computeDesired(c3, () => undefined))).toEqual([]);
    expect(dests(computeDesired(c3, healthOf(c3, { [RS1]: up })))).toEqual([`${RS1}:80 w=1 masq`]);
  });
  test("alpha with inhibit_on_failure: in the table with weight 0 from the start", () => {
    const c = cfg({ alpha: true, inhibitOnFailure: true, realServers: [{ address: RS1, checkers: tcp }] });
    expect(dests(computeDesired(c, () => undefined))).toEqual([`${RS1}:80 w=0 masq`]);
  });
  test("plans report per real server health, weight and table presence", () => {
    const c = cfg({ inhibitOnFailure: true });
    const t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up }));
    expect(t.virtualServers[0]!.key).toBe("192.0.2.10:80/TCP");
    expect(t.virtualServers[0]!.realServers).toEqual([
      {
        id: `192.0.2.10:80/TCP -> ${RS1}:80`,
        key: `${RS1}:80`,
        addr: RS1,
        port: 80,
        up: false,
        weight: 1,
        inTable: true,
        tableWeight: 0,
        inhibit: true,
      },
      {
        id: `192.0.2.10:80/TCP -> ${RS2}:80`,
        key: `${RS2}:80`,
        addr: RS2,
        port: 80,
        up: true,
        weight: 2,
        inTable: true,
        tableWeight: 2,
        inhibit: true,
      },
    ]);
  });
});

describe("quorum and hysteresis", () => {
  test("nextQuorumUp: start, going down, going up (keepalived update_quorum_state)", () => {
    // start: up iff sum >= quorum + hysteresis
    expect(nextQuorumUp(undefined, 3, 3, 0)).toBe(true);
    expect(nextQuorumUp(undefined, 3, 3, 1)).toBe(false);
    expect(nextQuorumUp(undefined, 4, 3, 1)).toBe(true);
    // up: stays up down to quorum - hysteresis
    expect(nextQuorumUp(true, 2, 3, 1)).toBe(true);
    expect(nextQuorumUp(true, 1, 3, 1)).toBe(false);
    // up: a zero sum is always down, even with hysteresis >= quorum
    expect(nextQuorumUp(true, 0, 1, 5)).toBe(false);
    expect(nextQuorumUp(true, 1, 1, 5)).toBe(true);
    // down: needs quorum + hysteresis to come back
    expect(nextQuorumUp(false, 3, 3, 1)).toBe(false);
    expect(nextQuorumUp(false, 4, 3, 1)).toBe(true);
  });
  test("property: with hysteresis 0, quorum up iff sum >= quorum (sum > 0)", () => {
    fc.assert(
      fc.property(
        fc.option(fc.boolean(), { nil: undefined }),
        fc.nat(100),
        fc.integer({ min: 1, max: 100 }),
        (p, s, q) => {
          expect(nextQuorumUp(p, s, q, 0)).toBe(s >= q);
        },
      ),
    );
  });
  test("property: hysteresis never flaps inside the band", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.nat(50), fc.integer({ min: 1, max: 50 }), fc.nat(20), (p, s, q, h) => {
        const inBand = s > 0 && s >= q - h && s < q + h;
        if (inBand) expect(nextQuorumUp(p, s, q, h)).toBe(p);
      }),
    );
  });
  test("weight sum counts alive servers' effective weights; plans carry the state and transitions", () => {
    const c = cfg({ quorum: 3, hysteresis: 0 });
    let t = computeDesired(c, healthOf(c, { [RS1]: up, [RS2]: up }));
    expect(t.virtualServers[0]).toMatchObject({ weightSum: 3, quorumUp: true, quorumChanged: false });
    t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up }), quorumStates(t));
    expect(t.virtualServers[0]).toMatchObject({
      weightSum: 2,
      quorumUp: false,
      quorumChanged: true,
      sorryActive: false,
    });
    // without a sorry server the real servers stay: quorum drives only the scripts
    expect(dests(t)).toEqual([`${RS2}:80 w=2 masq`]);
    t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: { up: true, weight: 5 } }), quorumStates(t));
    expect(t.virtualServers[0]).toMatchObject({ weightSum: 5, quorumUp: true, quorumChanged: true });
  });
  test("inhibited failed servers do not count toward quorum", () => {
    const c = cfg({ quorum: 2, inhibitOnFailure: true });
    const t = computeDesired(c, healthOf(c, { [RS1]: up, [RS2]: down }));
    expect(t.virtualServers[0]).toMatchObject({ weightSum: 1, quorumUp: false });
  });
});

describe("sorry server", () => {
  const withSorry = (o: Partial<VsIn> = {}) =>
    cfg({ quorum: 2, sorryServer: { address: SORRY, port: 8080 }, ...o });
  test("quorum up: sorry server absent", () => {
    const c = withSorry();
    expect(dests(computeDesired(c, () => undefined))).toEqual([`${RS1}:80 w=1 masq`, `${RS2}:80 w=2 masq`]);
  });
  test("quorum down: sorry server (weight 1) replaces the alive real servers", () => {
    const c = withSorry();
    const t = computeDesired(c, healthOf(c, { [RS1]: up, [RS2]: down }));
    expect(t.virtualServers[0]).toMatchObject({ sorryActive: true, quorumUp: false });
    expect(dests(t)).toEqual([`${SORRY}:8080 w=1 masq`]);
    expect(t.virtualServers[0]!.realServers.map((r) => r.inTable)).toEqual([false, false]);
  });
  test("quorum down with inhibit_on_failure: real servers stay with weight 0 beside the sorry server", () => {
    const c = withSorry({ inhibitOnFailure: true });
    const t = computeDesired(c, healthOf(c, { [RS1]: up, [RS2]: down }));
    expect(dests(t)).toEqual([`${RS1}:80 w=0 masq`, `${RS2}:80 w=0 masq`, `${SORRY}:8080 w=1 masq`]);
  });
  test("sorry_server_inhibit: sorry server always present, weight 0 while quorum is up", () => {
    const c = withSorry({ sorryServerInhibit: true });
    expect(dests(computeDesired(c, () => undefined))).toEqual([
      `${RS1}:80 w=1 masq`,
      `${RS2}:80 w=2 masq`,
      `${SORRY}:8080 w=0 masq`,
    ]);
    expect(dests(computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: down })))).toEqual([
      `${SORRY}:8080 w=1 masq`,
    ]);
  });
  test("sorry server port defaults to the service's; sorry_server_lvs_method", () => {
    const c = cfg({ quorum: 5, sorryServer: { address: SORRY }, sorryServerLvsMethod: "DR" });
    expect(dests(computeDesired(c, () => undefined))).toEqual([`${SORRY}:80 w=1 route`]);
  });
  test("hysteresis: sorry server stays until quorum + hysteresis is reached", () => {
    const c = cfg({
      quorum: 2,
      hysteresis: 1,
      sorryServer: { address: SORRY },
      realServers: [
        { address: RS1, checkers: tcp },
        { address: RS2, checkers: tcp },
        { address: RS3, checkers: tcp },
      ],
    });
    let t = computeDesired(c, () => undefined); // 3 >= 2+1: up
    expect(t.virtualServers[0]!.quorumUp).toBe(true);
    t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up, [RS3]: up }), quorumStates(t));
    expect(t.virtualServers[0]!.quorumUp).toBe(true); // 2 >= 2-1
    t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: down, [RS3]: up }), quorumStates(t));
    expect(t.virtualServers[0]!.quorumUp).toBe(true); // 1 >= 1, still up
    t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: down, [RS3]: down }), quorumStates(t));
    expect(t.virtualServers[0]!.quorumUp).toBe(false);
    expect(dests(t)).toEqual([`${SORRY}:80 w=1 masq`]);
    t = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up, [RS3]: up }), quorumStates(t));
    expect(t.virtualServers[0]!.quorumUp).toBe(false); // 2 < 3
    expect(dests(t)).toEqual([`${SORRY}:80 w=1 masq`]);
    t = computeDesired(c, healthOf(c, { [RS1]: up, [RS2]: up, [RS3]: up }), quorumStates(t));
    expect(t.virtualServers[0]!.quorumUp).toBe(true);
    expect(dests(t)).toEqual([`${RS1}:80 w=1 masq`, `${RS2}:80 w=1 masq`, `${RS3}:80 w=1 masq`]);
  });
  test("a sorry server duplicating a real server: one dest, the sorry role while quorum is down", () => {
    const c = cfg({ quorum: 3, sorryServer: { address: RS1, port: 80 }, sorryServerInhibit: true });
    expect(dests(computeDesired(c, () => undefined))).toEqual([`${RS1}:80 w=1 masq`, `${RS2}:80 w=2 masq`]);
    expect(dests(computeDesired(c, healthOf(c, { [RS1]: up, [RS2]: down })))).toEqual([`${RS1}:80 w=1 masq`]);
  });
});

describe("services: groups, fwmark, flags", () => {
  test("virtual_server_group: address ranges and fwmarks expand to services with the same dests", () => {
    const c = Config.parse({
      virtualServerGroups: [
        {
          name: "G",
          entries: [
            { address: "192.0.2.1", addressEnd: "192.0.2.3", port: 443 },
            { address: "192.0.2.50", addressEnd: "192.0.2.50", port: 80 },
            { fwmark: 7 },
            { fwmark: 8, family: "inet6" },
          ],
        },
      ],
      virtualServers: [
        {
          group: "G",
          protocol: "TCP",
          lbAlgo: "rr",
          lbKind: "DR",
          realServers: [{ address: RS1, port: 443 }],
        },
      ],
    });
    const t = computeDesired(c, () => undefined);
    expect(t.services.map((s) => serviceKeyString(s.key))).toEqual([
      "tcp 192.0.2.1:443",
      "tcp 192.0.2.2:443",
      "tcp 192.0.2.3:443",
      "tcp 192.0.2.50:80",
      "fwmark 7 v4",
      "fwmark 8 v6",
    ]);
    for (const s of t.services) expect(s.dests).toEqual([{ addr: RS1, port: 443, fwd: "route", weight: 1 }]);
    expect(t.virtualServers[0]!.key).toBe("group G");
    expect(t.virtualServers[0]!.services).toHaveLength(6);
  });
  test("group real servers without a port take the entry's port", () => {
    const c = Config.parse({
      virtualServerGroups: [
        { name: "G", entries: [{ address: "192.0.2.1", addressEnd: "192.0.2.1", port: 25 }] },
      ],
      virtualServers: [
        { group: "G", protocol: "TCP", lbAlgo: "rr", lbKind: "DR", realServers: [{ address: RS1 }] },
      ],
    });
    expect(dests(computeDesired(c, () => undefined))).toEqual([`${RS1}:25 w=1 route`]);
  });
  test("an undefined group or an oversized range is an error of that virtual server only", () => {
    const c = Config.parse({
      virtualServerGroups: [
        { name: "BIG", entries: [{ address: "2001:db8::", addressEnd: "2001:db8::1:0", port: 1 }] },
      ],
      virtualServers: [
        { group: "NOPE", protocol: "TCP", lbAlgo: "rr", lbKind: "DR" },
        { group: "BIG", protocol: "TCP", lbAlgo: "rr", lbKind: "DR" },
        { address: "192.0.2.10", port: 80, protocol: "TCP", lbAlgo: "rr", lbKind: "NAT" },
      ],
    });
    const t = computeDesired(c, () => undefined);
    expect(t.virtualServers[0]!.errors[0]).toContain("not defined");
    expect(t.virtualServers[1]!.errors[0]).toContain("more than");
    expect(t.services.map((s) => serviceKeyString(s.key))).toEqual(["tcp 192.0.2.10:80"]);
  });
  test("fwmark service family: ip_family, else the real servers'", () => {
    const mk = (o: Partial<VsIn>) =>
      Config.parse({ virtualServers: [{ fwmark: 3, lbAlgo: "rr", lbKind: "DR", ...o }] });
    expect(computeDesired(mk({}), () => undefined).services[0]!.key).toEqual({ af: 4, fwmark: 3 });
    expect(computeDesired(mk({ ipFamily: "inet6" }), () => undefined).services[0]!.key).toEqual({
      af: 6,
      fwmark: 3,
    });
    expect(
      computeDesired(mk({ realServers: [{ address: "2001:db8::5" }] }), () => undefined).services[0]!.key,
    ).toEqual({ af: 6, fwmark: 3 });
    expect(dests(computeDesired(mk({ realServers: [{ address: RS1 }] }), () => undefined))).toEqual([
      `${RS1}:0 w=1 route`,
    ]);
  });
  test("persistence: flag, timeout, granularity netmask, engine", () => {
    const t = computeDesired(
      cfg({ persistenceTimeout: 300, persistenceGranularity: "255.255.255.0", persistenceEngine: "sip" }),
      () => undefined,
    );
    expect(t.services[0]).toMatchObject({
      flags: IP_VS_SVC_F_PERSISTENT,
      timeout: 300,
      netmask: 24,
      peName: "sip",
    });
    // granularity without persistence means nothing (keepalived only sends it with a timeout)
    const t2 = computeDesired(cfg({ persistenceGranularity: "255.255.255.0" }), () => undefined);
    expect(t2.services[0]!.netmask).toBeUndefined();
    expect(t2.services[0]!.timeout).toBeUndefined();
    const t3 = computeDesired(
      cfg({ persistenceTimeout: 10, persistenceGranularity: "255.0.255.0" }),
      () => undefined,
    );
    expect(t3.virtualServers[0]!.errors[0]).toContain("persistence_granularity");
  });
  test("ops on UDP, sh flags", () => {
    const t = computeDesired(
      cfg({ protocol: "UDP", ops: true, lbAlgo: "sh", shPort: true, shFallback: true }),
      () => undefined,
    );
    expect(t.services[0]!.key).toMatchObject({ protocol: "udp" });
    expect(t.services[0]!.flags).toBe(
      IP_VS_SVC_F_ONEPACKET | IP_VS_SVC_F_SCHED_SH_PORT | IP_VS_SVC_F_SCHED_SH_FALLBACK,
    );
    expect(computeDesired(cfg({ ops: true }), () => undefined).services[0]!.flags).toBe(0);
  });
  test("IPv6 service", () => {
    const c = Config.parse({
      virtualServers: [
        {
          address: "2001:db8::10",
          port: 80,
          protocol: "TCP",
          lbAlgo: "rr",
          lbKind: "NAT",
          realServers: [{ address: "2001:db8::20" }],
        },
      ],
    });
    const t = computeDesired(c, () => undefined);
    expect(t.services[0]!.key).toEqual({ af: 6, protocol: "tcp", addr: "2001:db8::10", port: 80 });
    expect(dests(t)).toEqual(["2001:db8::20:80 w=1 masq"]);
  });
});

describe("helpers", () => {
  test("granularityPrefix", () => {
    expect(granularityPrefix("255.255.255.255", 4)).toBe(32);
    expect(granularityPrefix("255.255.0.0", 4)).toBe(16);
    expect(granularityPrefix("0.0.0.0", 4)).toBe(0);
    expect(granularityPrefix("24", 4)).toBe(24);
    expect(granularityPrefix("64", 6)).toBe(64);
    expect(granularityPrefix("129", 6)).toBeUndefined();
    expect(granularityPrefix("255.0.255.0", 4)).toBeUndefined();
    expect(granularityPrefix("255.255.255.0", 6)).toBeUndefined();
  });
  test("expandRange", () => {
    expect(expandRange("192.0.2.254", "192.0.3.1")).toEqual([
      "192.0.2.254",
      "192.0.2.255",
      "192.0.3.0",
      "192.0.3.1",
    ]);
    expect(expandRange("2001:db8::ff", "2001:db8::100")).toEqual(["2001:db8::ff", "2001:db8::100"]);
    expect(expandRange("192.0.2.5", undefined)).toEqual(["192.0.2.5"]);
    expect(typeof expandRange("192.0.2.5", "192.0.2.4")).toBe("string");
    expect(typeof expandRange("192.0.2.5", "2001:db8::1")).toBe("string");
  });
});

describe("with reconcile", () => {
  test("failure then recovery: del-dest then add-dest; inhibit: edit-dest both ways", () => {
    const c = cfg({});
    const all = computeDesired(c, () => undefined).services;
    const kernel = all.map((s) => ({
      service: { key: s.key, sched: s.sched, flags: 0, timeout: 0, netmask: 32 },
      dests: s.dests.map((d) => ({
        af: 4 as const,
        addr: d.addr,
        port: d.port,
        fwd: d.fwd,
        weight: d.weight,
        upperThreshold: 0,
        lowerThreshold: 0,
      })),
    }));
    expect(reconcile(all, kernel)).toEqual([]);
    const failed = computeDesired(c, healthOf(c, { [RS1]: down, [RS2]: up })).services;
    expect(reconcile(failed, kernel).map((o) => o.op)).toEqual(["del-dest"]);
    const ci = cfg({ inhibitOnFailure: true });
    const inh = computeDesired(ci, healthOf(ci, { [RS1]: down, [RS2]: up })).services;
    expect(reconcile(inh, kernel)).toMatchObject([{ op: "edit-dest", dest: { addr: RS1, weight: 0 } }]);
  });
  test("property: the desired table never holds a dest twice and all weights are within IPVS limits", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            up: fc.boolean(),
            w: fc.option(fc.integer({ min: -10, max: 10 }), { nil: undefined }),
          }),
          { minLength: 3, maxLength: 3 },
        ),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 6 }),
        (hs, inhibit, sorryInhibit, quorum) => {
          const c = cfg({
            quorum,
            inhibitOnFailure: inhibit,
            sorryServer: { address: RS3 },
            sorryServerInhibit: sorryInhibit,
            realServers: [
              { address: RS1, checkers: tcp },
              { address: RS2, checkers: tcp },
              { address: RS3, checkers: tcp },
            ],
          });
          const byAddr = { [RS1]: hs[0]!, [RS2]: hs[1]!, [RS3]: hs[2]! };
          const h = healthOf(
            c,
            Object.fromEntries(
              Object.entries(byAddr).map(([a, x]) => [
                a,
                x.w === undefined ? { up: x.up } : { up: x.up, weight: x.w },
              ]),
            ),
          );
          const t = computeDesired(c, h);
          const ds = t.services[0]!.dests;
          expect(new Set(ds.map((d) => `${d.addr}:${d.port}`)).size).toBe(ds.length);
          for (const d of ds) expect(d.weight).toBeGreaterThanOrEqual(0);
          // with the sorry server serving, nothing else has weight
          if (t.virtualServers[0]!.sorryActive)
            for (const d of ds) if (d.weight > 0) expect(d.addr).toBe(RS3);
        },
      ),
    );
  });
});

describe("quorumNotification (keepalived update_quorum_state)", () => {
  test("every case", () => {
    const cases: [boolean | undefined, boolean, boolean, ReturnType<typeof quorumNotification>][] = [
      [undefined, true, false, { up: true, starting: true }],
      [undefined, true, true, { up: true, starting: true }],
      [undefined, false, true, { up: false, starting: true }],
      [undefined, false, false, undefined],
      [true, true, true, undefined],
      [false, false, true, undefined],
      [true, false, false, { up: false, starting: false }],
      [false, true, false, { up: true, starting: false }],
    ];
    for (const [prev, up, sorry, want] of cases) expect(quorumNotification(prev, up, sorry)).toEqual(want);
  });
});
