// Load balancing in the one config model: keepalived's virtual_server / virtual_server_group /
// real_server / checker sections read into `virtualServers` and `virtualServerGroups`, the same
// model from YAML, the convert round trip, the diff the API will summarise, and robustness. The
// broken-config table (with keepalived 2.2.7 as the oracle) is in config-errors.test.ts.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { mapCheckers } from "../../agent/check/map.ts";
import { diffInstances } from "../../agent/config/diff.ts";
import { type LoadResult, loadConfigFile, parseConfigText, toYaml } from "../../agent/config/load.ts";
import {
  type Config,
  type ConfigInput,
  Config as ConfigSchema,
  realServerKey,
  VirtualServer,
  virtualServerKey,
} from "../../agent/config/model.ts";
import { FAKE_ENV, KeepalivedOracle } from "./config-oracle.ts";

const FIX = join(import.meta.dir, "../fixtures/conf");
const LVS_FIXTURES = ["lvs-full.conf", "lvs-groups.conf", "doc-sample-lvs.conf"];
const ENV = { ...FAKE_ENV, userExists: (u: string) => u === "root", commandExists: () => true };

function mustLoad(path: string): Config {
  const r = loadConfigFile(path, ENV);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join("\n"));
  return r.config;
}
function conf(s: string): LoadResult {
  return parseConfigText(s, "keepalived", "t.conf", ENV);
}
function mustConf(s: string): Config {
  const r = conf(s);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.line}: ${e.message}`).join("\n"));
  return r.config;
}
function yaml(s: string): LoadResult {
  return parseConfigText(s, "yaml", "t.yaml", ENV);
}
function errorsOf(r: LoadResult): string[] {
  return r.ok ? [] : r.errors.map((e) => `${e.line}: ${e.message}`);
}
/** The model without source locations and keepalived's ignored-keyword list. */
function bare(c: Config): unknown {
  return JSON.parse(
    JSON.stringify(c, (k, v) => (k === "loc" || k === "locs" || k === "ignored" ? undefined : v)),
  );
}

const VRRP =
  "vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n";
/** a virtual server block with `body` inside, after the VRRP instance (which takes lines 1-7) */
function vsConf(body: string, head = "192.0.2.10 80"): string {
  return `${VRRP}virtual_server ${head} {\n${body}}\n`;
}
const BASIC = " lb_algo rr\n lb_kind NAT\n protocol TCP\n";
const RS = " real_server 192.0.2.20 80 {\n }\n";

let tmp = "";
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "vigil-config-lvs-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("keepalived.conf -> model", () => {
  test("lvs-full.conf: every virtual server keyword lands in its field", () => {
    const c = mustLoad(join(FIX, "lvs-full.conf"));
    expect(c.virtualServers.map(virtualServerKey)).toEqual([
      "192.0.2.100:443/TCP",
      "192.0.2.100:53/UDP",
      "fwmark 100",
      "group WEB",
      "[2001:db8::100]:80/SCTP",
    ]);
    const web = c.virtualServers[0]!;
    expect(web).toMatchObject({
      delayLoop: 10,
      lbAlgo: "wlc",
      lbKind: "NAT",
      persistenceTimeout: 300,
      persistenceGranularity: "255.255.255.0",
      persistenceEngine: "sip",
      quorum: 2,
      hysteresis: 1,
      quorumUp: "/usr/bin/logger quorum up",
      quorumDown: "/usr/bin/logger quorum down",
      sorryServer: { address: "192.0.2.250", port: 8443 },
      sorryServerInhibit: true,
      inhibitOnFailure: true,
      alpha: true,
      omega: true,
      weight: 2,
      retry: 3,
      delayBeforeRetry: 2,
      warmup: 1.5,
      connectTimeout: 4,
      virtualhost: "www.example.com",
      haSuspend: true,
    });
    expect(web.loc?.line).toBe(26);
    expect(web.locs?.["lbAlgo"]?.line).toBe(28);
    const rs11 = web.realServers[0]!;
    expect(rs11).toMatchObject({
      address: "192.0.2.11",
      port: 8443,
      weight: 3,
      inhibitOnFailure: false,
      notifyUp: "/usr/bin/logger rs11 up",
      notifyDown: "/usr/bin/logger rs11 down",
      uthreshold: 1000,
      lthreshold: 10,
      retry: 2,
      delayLoop: 5,
    });
    expect(rs11.checkers).toEqual([
      expect.objectContaining({
        type: "SSL_GET",
        virtualhost: "www.example.com",
        httpProtocol: "1.1",
        enableSni: true,
        connectPort: 8443,
        connectTimeout: 3,
        retry: 3,
        delayBeforeRetry: 1,
        url: [
          expect.objectContaining({
            path: "/health",
            statusCode: ["200-299", "301"],
            digest: "640205b7b0fc66c1ea91c463fac6334d",
            virtualhost: "health.example.com",
          }),
          expect.objectContaining({ path: "/ready" }),
        ],
      }),
    ]);
    expect(web.realServers[1]!.checkers.map((ch) => ch.type)).toEqual(["HTTP_GET", "TCP_CHECK"]);
    expect(web.realServers[1]!.checkers[1]).toMatchObject({
      connectIp: "192.0.2.13",
      connectPort: 22,
    });
    const dns = c.virtualServers[1]!;
    expect(dns).toMatchObject({ lbAlgo: "sh", shPort: true, shFallback: true, lbKind: "DR", ops: true });
    expect(dns.realServers[0]!.checkers[0]).toMatchObject({
      type: "DNS_CHECK",
      dnsType: "A",
      name: "www.example.com",
    });
    expect(dns.realServers[1]!.checkers[0]).toMatchObject({
      type: "UDP_CHECK",
      payload: "00010203",
      requireReply: true,
      replyData: "0a0b",
      minReplyLength: 2,
      maxReplyLength: 512,
    });
    const fwm = c.virtualServers[2]!;
    expect(fwm).toMatchObject({ fwmark: 100, lbAlgo: "mh", mhPort: true, mhFallback: true });
    expect(fwm.realServers[1]!.checkers[0]).toEqual(
      expect.objectContaining({
        type: "MISC_CHECK",
        miscPath: "/bin/true 192.0.2.32",
        miscTimeout: 5,
        miscDynamic: true,
        user: "root",
      }),
    );
    // persistence_timeout without a value: IPVS's 360 s; so with persistence_granularity alone
    expect(c.virtualServers[3]!.persistenceTimeout).toBe(360);
    expect(c.virtualServers[4]).toMatchObject({ persistenceGranularity: "64", persistenceTimeout: 360 });
    // TUN may carry another family: the IPv4 real server of the IPv6 service is kept
    expect(c.virtualServers[4]!.realServers.map((r) => r.address)).toEqual(["2001:db8::51", "198.51.100.5"]);
  });

  test("defaults are keepalived's: delay_loop 60, connect_timeout 5, quorum 1, weight 1", () => {
    const vs = mustConf(vsConf(BASIC + RS)).virtualServers[0]!;
    expect(vs).toMatchObject({
      delayLoop: 60,
      connectTimeout: 5,
      quorum: 1,
      hysteresis: 0,
      weight: 1,
      alpha: false,
      inhibitOnFailure: false,
    });
    expect(vs.realServers[0]!.checkers).toEqual([]);
  });

  test("virtual_server_group entries become canonical address ranges", () => {
    const c = mustLoad(join(FIX, "lvs-groups.conf"));
    expect(c.virtualServerGroups.map((g) => [g.name, g.entries.map(({ loc: _l, ...e }) => e)])).toEqual([
      [
        "V6",
        [
          { address: "2001:db8::100", port: 443 },
          { address: "2001:db8::10", addressEnd: "2001:db8::1f", port: 443 },
          { address: "2001:db8:0:1::", addressEnd: "2001:db8:0:1::3", port: 443 },
          { fwmark: 60, family: "inet6" },
        ],
      ],
      [
        "MARKS",
        [
          { fwmark: 1, family: "inet" },
          { fwmark: 2, family: "inet" },
        ],
      ],
    ]);
    // keepalived reads the protocol without regard to case
    expect(c.virtualServers[0]!.protocol).toBe("TCP");
    expect(c.virtualServers[2]).toMatchObject({ fwmark: 4242, ipFamily: "inet6" });
    const full = mustLoad(join(FIX, "lvs-full.conf")).virtualServerGroups[0]!;
    expect(
      full.entries.map((e) => [e.address, e.addressEnd ?? null, e.port ?? null, e.fwmark ?? null]),
    ).toEqual([
      ["192.0.2.100", null, 80, null],
      ["198.51.100.10", "198.51.100.20", 80, null],
      ["198.51.100.32", "198.51.100.47", 80, null],
      ["198.51.100.60", "198.51.100.70", 80, null],
      [undefined, null, null, 7],
    ]);
  });

  test("a real server without a port uses the virtual server's (its key says so)", () => {
    const vs = mustConf(vsConf(`${BASIC} real_server 192.0.2.20 {\n }\n real_server 192.0.2.21 0 {\n }\n`))
      .virtualServers[0]!;
    expect(vs.realServers.map((r) => r.port)).toEqual([undefined, undefined]);
    expect(vs.realServers.map((r) => realServerKey(vs, r))).toEqual(["192.0.2.20:80", "192.0.2.21:80"]);
    // so a second server on the explicit port is a duplicate
    const dup = conf(vsConf(`${BASIC} real_server 192.0.2.20 {\n }\n real_server 192.0.2.20 80 {\n }\n`));
    expect(errorsOf(dup)).toEqual([
      "14: virtual_server 192.0.2.10:80/TCP: real server 192.0.2.20:80 is duplicated",
    ]);
  });

  test("a fwmark service takes its family from ip_family or its real servers", () => {
    const v6 = `${VRRP}virtual_server fwmark 5 {\n lb_algo rr\n lb_kind DR\n persistence_granularity 64\n real_server 2001:db8::5 {\n }\n}\n`;
    expect(mustConf(v6).virtualServers[0]).toMatchObject({ fwmark: 5, persistenceGranularity: "64" });
    const mixed = v6.replace(
      " real_server 2001:db8::5 {\n }\n",
      " real_server 2001:db8::5 {\n }\n real_server 192.0.2.5 {\n }\n",
    );
    expect(errorsOf(conf(mixed))[0]).toMatch(/^15: .*does not match the virtual server \(IPv6\)/);
    const declared = v6.replace(" lb_algo rr\n", " ip_family inet\n lb_algo rr\n");
    expect(errorsOf(conf(declared))).toEqual(["12: persistence_granularity: '64' is not an IPv4 netmask"]);
    expect(errorsOf(conf(declared.replace(" persistence_granularity 64\n", "")))).toEqual([
      "13: virtual_server fwmark 5: real_server 2001:db8::5: address family (IPv6) does not match the virtual server (IPv4); only TUN may mix families",
    ]);
  });

  test("a config without LVS sections has empty lists, and the VRRP part is untouched", () => {
    const c = mustConf(VRRP);
    expect(c.virtualServers).toEqual([]);
    expect(c.virtualServerGroups).toEqual([]);
    const withLvs = mustConf(vsConf(BASIC + RS));
    expect(bare({ ...withLvs, virtualServers: [] })).toEqual(bare(c));
  });

  test("values keepalived refuses are refused at their line", () => {
    const cases: [string, string][] = [
      [" lb_algo rr\n lb_algo xx\n", "13: lb_algo: unknown scheduler 'xx'"],
      [" persistence_granularity 129\n", "12: persistence_granularity: '129' is not an IPv4 netmask"],
      [" weight 0\n", "12: weight: 0 is outside the range [1, 2147483647]"],
      [
        " real_server 192.0.2.20 80 {\n  inhibit_on_failure maybe\n }\n",
        "13: inhibit_on_failure: expected true/false, got 'maybe'",
      ],
      [" real_server 192.0.2.20 80 {\n  FILE_CHECK {\n  }\n }\n", "13: FILE_CHECK: not supported by vigil"],
      [
        " real_server 192.0.2.20 80 {\n  HTTP_GET {\n   url {\n    path /\n    regex ok\n   }\n  }\n }\n",
        "16: regex: not supported by vigil",
      ],
      [
        " real_server 192.0.2.20 80 {\n  HTTP_GET {\n   enable_sni\n   url {\n    path /\n   }\n  }\n }\n",
        "14: unknown keyword 'enable_sni' in HTTP_GET",
      ],
      [
        " real_server 192.0.2.20 80 {\n  notify_up /bin/a\n  notify_up /bin/b\n }\n",
        "14: virtual_server 192.0.2.10 80 real_server 192.0.2.20 80: notify_up script already specified",
      ],
    ];
    for (const [body, want] of cases) {
      const r = conf(vsConf(BASIC + body + (body.includes("real_server") ? "" : RS)));
      const errs = errorsOf(r);
      expect(
        errs.some((e) => e.startsWith(want)),
        `${want}\n${errs.join("\n")}`,
      ).toBe(true);
    }
  });
});

describe.skipIf(!KeepalivedOracle.available())("keepalived 2.2.7 agrees", () => {
  let oracle: KeepalivedOracle;
  beforeAll(() => {
    oracle = new KeepalivedOracle();
  });
  afterAll(() => oracle.destroy());
  for (const f of LVS_FIXTURES) {
    test(`${f}: keepalived --config-test exits 0, vigil loads it`, () => {
      const ka = oracle.check(join(FIX, f));
      expect(ka.code, ka.output).toBe(0);
      mustLoad(join(FIX, f));
    });
  }
});

describe("YAML: the same model", () => {
  for (const f of LVS_FIXTURES) {
    test(`${f}: keepalived.conf -> model -> YAML -> model is the same model`, () => {
      const a = mustLoad(join(FIX, f));
      const text = toYaml(a);
      const p = join(tmp, `${f}.yaml`);
      writeFileSync(p, text);
      const b = mustLoad(p);
      expect(bare(b)).toEqual(bare(a));
      expect(b.virtualServers.length).toBeGreaterThan(0);
    });
  }

  const Y = `vrrpInstances:
  - name: VI_1
    interface: eth0
    virtualRouterId: 1
    virtualIpaddress: [192.0.2.1]
virtualServers:
  - address: 192.0.2.10
    port: 80
    lbAlgo: rr
    lbKind: NAT
    protocol: TCP
    realServers:
      - address: 192.0.2.20
        checkers:
          - type: TCP_CHECK
            connectTimeout: 2
`;

  test("a hand-written service loads, with the lines of its objects", () => {
    const r = yaml(Y);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const vs = r.config.virtualServers[0]!;
    expect(vs.loc?.line).toBe(7);
    expect(vs.realServers[0]!.loc?.line).toBe(13);
    expect(vs.realServers[0]!.checkers[0]).toMatchObject({
      type: "TCP_CHECK",
      connectTimeout: 2,
      loc: { line: 15 },
    });
    expect(vs.delayLoop).toBe(60);
  });

  test("unknown keys inside a checker are errors at their line (the union member is known)", () => {
    expect(errorsOf(yaml(`${Y}            miscPath: /bin/true\n`))).toEqual([
      "17: virtualServers[0].realServers[0].checkers[0].miscPath: unknown key",
    ]);
    expect(errorsOf(yaml(`${Y}            connect_port: 80\n`))).toEqual([
      "17: virtualServers[0].realServers[0].checkers[0].connect_port: unknown key (did you mean 'connectPort'?)",
    ]);
  });

  test("schema and semantic problems name the YAML line", () => {
    const badType = Y.replace("type: TCP_CHECK", "type: FOO_CHECK");
    expect(errorsOf(yaml(badType))[0]).toMatch(
      /^15: virtualServers\[0\]\.realServers\[0\]\.checkers\[0\]\.type: /,
    );
    const noAlgo = Y.replace("    lbAlgo: rr\n", "");
    expect(errorsOf(yaml(noAlgo))[0]).toMatch(/^7: virtualServers\[0\]\.lbAlgo: /);
    const family = Y.replace("      - address: 192.0.2.20", "      - address: 2001:db8::20");
    expect(errorsOf(yaml(family))).toEqual([
      "13: virtual_server 192.0.2.10:80/TCP: real_server 2001:db8::20: address family (IPv6) does not match the virtual server (IPv4); only TUN may mix families",
    ]);
    const both = Y.replace("    port: 80\n", "    port: 80\n    fwmark: 3\n");
    expect(errorsOf(yaml(both))[0]).toContain("exactly one of address (with port), fwmark or group");
    const group = Y.replace("  - address: 192.0.2.10\n    port: 80\n", "  - group: NOPE\n");
    expect(errorsOf(yaml(group))).toContain(
      "7: virtual_server group NOPE: virtual_server_group NOPE is not defined",
    );
  });
});

describe("checker source options", () => {
  const rsWith = (type: string, body: string) =>
    vsConf(`${BASIC} real_server 192.0.2.20 80 {\n  ${type} {\n${body}  }\n }\n`);
  test("bindto and bind_port are taken and reach the checker's connection", () => {
    const c = mustConf(rsWith("TCP_CHECK", "   bindto 192.0.2.1\n   bind_port 40001\n"));
    expect(c.virtualServers[0]!.realServers[0]!.checkers[0]).toMatchObject({
      bindto: "192.0.2.1",
      bindPort: 40001,
    });
  });
  test("TCP_CHECK takes bind_if and fwmark, and maps them onto its connection", () => {
    const c = mustConf(rsWith("TCP_CHECK", "   bind_if eth0\n   fwmark 7\n"));
    expect(c.virtualServers[0]!.realServers[0]!.checkers[0]).toMatchObject({ bindIf: "eth0", fwmark: 7 });
    const spec = mapCheckers(c.virtualServers[0]!.realServers[0]!, c.virtualServers[0]!)[0]!;
    expect(spec.type === "TCP_CHECK" && spec.conn).toMatchObject({ bindIf: "eth0", mark: 7 });
  });
  test("bind_if and fwmark are refused at their line for the other connecting checkers", () => {
    for (const type of ["HTTP_GET", "SSL_GET", "DNS_CHECK", "UDP_CHECK"]) {
      const url = type.endsWith("_GET") ? "   url {\n    path /\n   }\n" : "";
      const r = conf(rsWith(type, `${url}   bind_if eth0\n   fwmark 7\n`));
      const at = url ? 17 : 14;
      expect(errorsOf(r)).toEqual([
        `${at}: virtual_server 192.0.2.10:80/TCP: real_server 192.0.2.20 80: ${type}: bind_if is not supported by vigil for ${type} (TCP_CHECK only)`,
        `${at + 1}: virtual_server 192.0.2.10:80/TCP: real_server 192.0.2.20 80: ${type}: fwmark is not supported by vigil for ${type} (TCP_CHECK only)`,
      ]);
    }
  });
  test("PING_CHECK: all four are ignored with a warning, as keepalived ignores them", () => {
    const r = conf(rsWith("PING_CHECK", "   bindto 192.0.2.1\n   fwmark 7\n"));
    if (!r.ok) throw new Error(errorsOf(r).join("\n"));
    expect(r.warnings.map((w) => `${w.line}: ${w.message}`)).toEqual([
      "14: virtual_server 192.0.2.10:80/TCP: real_server 192.0.2.20 80: PING_CHECK: bindto is ignored (keepalived's PING_CHECK ignores it too)",
      "15: virtual_server 192.0.2.10:80/TCP: real_server 192.0.2.20 80: PING_CHECK: fwmark is ignored (keepalived's PING_CHECK ignores it too)",
    ]);
  });
});

describe("diff: virtual servers and real servers", () => {
  const text = readFileSync(join(FIX, "lvs-full.conf"), "utf8");
  // the same source name for every variant: VRRP instance fingerprints include their locations
  const base = mustConf(text);
  const variant = (from: string, to: string): Config => {
    if (!text.includes(from)) throw new Error(`fixture lacks '${from}'`);
    return mustConf(text.replace(from, to));
  };

  test("the same config: everything kept, nothing else", () => {
    const d = diffInstances(base, mustConf(text));
    expect(d.virtualServers).toEqual({
      added: [],
      changed: [],
      removed: [],
      kept: base.virtualServers.map(virtualServerKey),
    });
    expect(d.realServers.kept).toHaveLength(9);
    expect([...d.realServers.added, ...d.realServers.changed, ...d.realServers.removed]).toEqual([]);
    expect(d.kept).toEqual(["VI_1"]);
  });

  test("moving blocks (other lines) is no change", () => {
    const moved = mustConf(`\n\n! moved\n${text}`);
    const d = diffInstances(base, moved);
    expect(d.virtualServers.changed).toEqual([]);
    expect(d.realServers.changed).toEqual([]);
  });

  test("a changed checker changes its real server, not the service", () => {
    const d = diffInstances(base, variant("connect_port 22", "connect_port 2222"));
    expect(d.virtualServers.changed).toEqual([]);
    expect(d.realServers.changed).toEqual(["192.0.2.100:443/TCP -> 192.0.2.12:8443"]);
  });

  test("a changed service setting changes the service; inherited defaults change its real servers", () => {
    const d = diffInstances(base, variant("    lb_algo wlc", "    lb_algo lc"));
    expect(d.virtualServers.changed).toEqual(["192.0.2.100:443/TCP"]);
    expect(d.realServers.changed).toEqual([]);
    const w = diffInstances(base, variant("    weight 2\n", "    weight 1\n"));
    expect(w.virtualServers.changed).toEqual(["192.0.2.100:443/TCP"]);
    // 192.0.2.11 has its own weight; 192.0.2.12 inherits the service's
    expect(w.realServers.changed).toEqual(["192.0.2.100:443/TCP -> 192.0.2.12:8443"]);
  });

  test("a changed group changes the services that use it", () => {
    const d = diffInstances(base, variant("    fwmark 7\n", "    fwmark 8\n"));
    expect(d.virtualServers.changed).toEqual(["group WEB"]);
  });

  test("added and removed services and real servers", () => {
    const next = variant("virtual_server 2001:db8::100 80 {", "virtual_server 2001:db8::101 80 {");
    const d = diffInstances(base, next);
    expect(d.virtualServers.added).toEqual(["[2001:db8::101]:80/SCTP"]);
    expect(d.virtualServers.removed).toEqual(["[2001:db8::100]:80/SCTP"]);
    expect(d.realServers.removed.sort()).toEqual([
      "[2001:db8::100]:80/SCTP -> 198.51.100.5:80",
      "[2001:db8::100]:80/SCTP -> [2001:db8::51]:80",
    ]);
    const fewer = variant("    real_server 192.0.2.32 {", "    real_server 192.0.2.33 {");
    const e = diffInstances(base, fewer);
    expect(e.realServers.added).toEqual(["fwmark 100 -> 192.0.2.33:0"]);
    expect(e.realServers.removed).toEqual(["fwmark 100 -> 192.0.2.32:0"]);
    expect(e.virtualServers.changed).toEqual([]);
  });
});

describe("the schema", () => {
  test("a virtual server is exactly one of address, fwmark, group", () => {
    const ok = { lbAlgo: "rr", lbKind: "NAT", fwmark: 1 } as const;
    expect(VirtualServer.safeParse(ok).success).toBe(true);
    expect(VirtualServer.safeParse({ ...ok, group: "G" }).success).toBe(false);
    expect(VirtualServer.safeParse({ lbAlgo: "rr", lbKind: "NAT" }).success).toBe(false);
    expect(VirtualServer.safeParse({ ...ok, lbAlgo: "xx" }).success).toBe(false);
    expect(VirtualServer.safeParse({ ...ok, fwmark: 0 }).success).toBe(false);
  });

  test("checkers are a union on type; each type keeps its own fields only", () => {
    const input: ConfigInput = {
      virtualServers: [
        {
          fwmark: 1,
          lbAlgo: "rr",
          lbKind: "DR",
          realServers: [
            {
              address: "192.0.2.1",
              checkers: [
                { type: "HTTP_GET", url: [{ path: "/", statusCode: ["200-204"] }] },
                { type: "MISC_CHECK", miscPath: "/bin/true" },
              ],
            },
          ],
        },
      ],
    };
    const c = ConfigSchema.parse(input);
    expect(c.virtualServers[0]!.realServers[0]!.checkers.map((ch) => ch.type)).toEqual([
      "HTTP_GET",
      "MISC_CHECK",
    ]);
    const bad = structuredClone(input);
    (bad.virtualServers![0]!.realServers![0]!.checkers![0] as { url: unknown[] }).url = [];
    expect(ConfigSchema.safeParse(bad).success).toBe(false);
    const badCode = structuredClone(input);
    (
      badCode.virtualServers![0]!.realServers![0]!.checkers![0] as {
        url: { path: string; statusCode: string[] }[];
      }
    ).url = [{ path: "/", statusCode: ["299-200"] }];
    expect(ConfigSchema.safeParse(badCode).success).toBe(false);
  });
});

describe("never throws", () => {
  const words = [
    "virtual_server",
    "virtual_server_group",
    "real_server",
    "group",
    "fwmark",
    "0",
    "1",
    "80",
    "70000",
    "192.0.2.10",
    "192.0.2.10-20",
    "192.0.2.0/24",
    "2001:db8::1",
    "2001:db8::1-ff",
    "lb_algo",
    "rr",
    "sh",
    "lb_kind",
    "NAT",
    "DR",
    "TUN",
    "protocol",
    "TCP",
    "UDP",
    "quorum",
    "hysteresis",
    "weight",
    "sorry_server",
    "sorry_server_inhibit",
    "persistence_timeout",
    "persistence_granularity",
    "sh-port",
    "ops",
    "ha_suspend",
    "ip_family",
    "inet6",
    "TCP_CHECK",
    "HTTP_GET",
    "SSL_GET",
    "DNS_CHECK",
    "UDP_CHECK",
    "PING_CHECK",
    "MISC_CHECK",
    "url",
    "path",
    "/",
    "status_code",
    "200-299",
    "digest",
    "connect_ip",
    "bindto",
    "connect_port",
    "connect_timeout",
    "misc_path",
    "/bin/true",
    "payload",
    "require_reply",
    "type",
    "name",
    "{",
    "}",
    '"',
    "\n",
  ];
  test("arbitrary LVS-ish text: a result, never an exception", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...words), { maxLength: 80 }), (ws) => {
        const r = conf(`${VRRP}${ws.join(" ")}`);
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 600 },
    );
  }, 60_000);

  test("arbitrary YAML-shaped LVS objects: a result, never an exception", () => {
    const val = fc.oneof(
      fc.integer({ min: -2, max: 70000 }),
      fc.constantFrom("rr", "NAT", "TCP", "x", "192.0.2.1", "2001:db8::1"),
      fc.boolean(),
    );
    const rs = fc.record(
      {
        address: val,
        port: val,
        weight: val,
        checkers: fc.array(
          fc.record({
            type: fc.constantFrom("TCP_CHECK", "HTTP_GET", "MISC_CHECK", "X"),
            connectPort: val,
            url: fc.array(fc.record({ path: val })),
          }),
          { maxLength: 2 },
        ),
      },
      { requiredKeys: [] },
    );
    const vs = fc.record(
      {
        address: val,
        port: val,
        fwmark: val,
        group: val,
        lbAlgo: val,
        lbKind: val,
        protocol: val,
        quorum: val,
        realServers: fc.array(rs, { maxLength: 3 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.array(vs, { maxLength: 3 }), (list) => {
        const r = yaml(JSON.stringify({ virtualServers: list }));
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 200 },
    );
  }, 60_000);

  test("each LVS fixture with one line removed: never throws", () => {
    for (const f of LVS_FIXTURES) {
      const lines = readFileSync(join(FIX, f), "utf8").split("\n");
      for (let i = 0; i < lines.length; i++) {
        const cut = [...lines.slice(0, i), ...lines.slice(i + 1)].join("\n");
        expect(typeof conf(cut).ok).toBe("boolean");
      }
    }
  }, 60_000);
});
