// YAML/JSON -> the same model as keepalived.conf: the example pair in conf/, the convert round trip
// (keepalived.conf -> model -> YAML -> model gives the same model), and every problem located at
// its line, the semantic ones included since they run on the model whatever the syntax.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { runConvert } from "../../agent/cli/convert.ts";
import { type LoadResult, loadConfigFile, parseConfigText, toYaml } from "../../agent/config/load.ts";
import type { Config } from "../../agent/config/model.ts";
import { FAKE_ENV } from "./config-oracle.ts";

const FIX = join(import.meta.dir, "../fixtures/conf");
const CONF = join(import.meta.dir, "../../conf");

/** The model without what only says where things came from (and keepalived's ignored keywords). */
function bare(c: Config): unknown {
  return JSON.parse(
    JSON.stringify(c, (k, v) => (k === "loc" || k === "locs" || k === "ignored" ? undefined : v)),
  );
}

function mustLoad(path: string): Config {
  const r = loadConfigFile(path, FAKE_ENV);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join("\n"));
  return r.config;
}

function yaml(s: string): LoadResult {
  return parseConfigText(s, "yaml", "t.yaml", FAKE_ENV);
}

let tmp = "";
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "vigil-config-yaml-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the example pair in conf/", () => {
  test("conf/vigil.yaml is valid and is the same model as conf/keepalived.conf", () => {
    const y = loadConfigFile(join(CONF, "vigil.yaml"), FAKE_ENV);
    if (!y.ok) throw new Error(JSON.stringify(y.errors));
    expect(y.warnings).toEqual([]);
    expect(bare(y.config)).toEqual(bare(mustLoad(join(CONF, "keepalived.conf"))));
  });

  test("the same as JSON", () => {
    const obj = parseYaml(readFileSync(join(CONF, "vigil.yaml"), "utf8"));
    const p = join(tmp, "vigil.json");
    writeFileSync(p, JSON.stringify(obj, null, 2));
    expect(bare(mustLoad(p))).toEqual(bare(mustLoad(join(CONF, "vigil.yaml"))));
  });

  test("YAML objects carry the lines of their settings, as keepalived.conf ones do", () => {
    const c = mustLoad(join(CONF, "vigil.yaml"));
    const v4 = c.vrrpInstances[0]!;
    const text = readFileSync(join(CONF, "vigil.yaml"), "utf8").split("\n");
    const lineOf = (needle: string) => text.findIndex((l) => l.includes(needle)) + 1;
    expect(v4.loc?.line).toBe(lineOf("- name: VI_V4"));
    expect(v4.locs?.["virtualRouterId"]?.line).toBe(lineOf("virtualRouterId: 51"));
    expect(v4.virtualIpaddress[0]!.loc?.line).toBe(lineOf("- address: 192.0.2.100"));
    expect(c.vrrpSyncGroups[0]!.locs?.["group.1"]?.line).toBe(lineOf("group: [VI_V4, VI_V6]"));
  });
});

const ROUND_TRIP = [
  "doc-vrrp.conf",
  "doc-vrrp-sync.conf",
  "doc-vrrp-scripts.conf",
  "doc-track-interface.conf",
  "track-file.conf",
  "notify-fifo.conf",
  "haproxy-unicast.conf",
  "ipv6-v3.conf",
  "quirks.conf",
  "include/main.conf",
];

describe("convert round trip: keepalived.conf -> model -> YAML -> model", () => {
  for (const f of [...ROUND_TRIP.map((x) => join(FIX, x)), join(CONF, "keepalived.conf")]) {
    test(f.slice(f.lastIndexOf("/conf/") + 6), () => {
      const m1 = mustLoad(f);
      const y = toYaml(m1);
      const r = yaml(y);
      if (!r.ok) throw new Error(`${y}\n${JSON.stringify(r.errors)}`);
      expect(bare(r.config)).toEqual(bare(m1));
      // and YAML -> model -> YAML is stable
      expect(toYaml(r.config)).toBe(y);
    });
  }

  test("defaults are left out, shorthands used where they say everything", () => {
    const y = toYaml(mustLoad(join(FIX, "ipv6-v3.conf")));
    expect(y).not.toContain("loc");
    expect(y).not.toContain("family");
    expect(y).not.toContain("noPrefixRoute: false");
    expect(y).toContain("- fe80::60/64");
    expect(y).toContain("- address: 2001:db8:61::2\n");
    expect(y).toContain("- 2001:db8:61::3\n");
  });

  test("an instance whose family does not follow its first address keeps it explicitly", () => {
    // no address to derive it from, and IPv6 is not the default
    const m = mustLoad(join(FIX, "ipv6-v3.conf"));
    const inst = {
      ...m.vrrpInstances[1]!,
      virtualIpaddress: [],
      unicastSrcIp: undefined,
      unicastPeer: [],
      family: 6 as const,
    };
    const y = toYaml({ ...m, vrrpInstances: [inst] });
    expect(y).toContain("family: 6");
  });

  test("vigil convert prints YAML that loads back; invalid input is not converted", () => {
    let out = "";
    let err = "";
    const io = { out: (s: string) => (out += s), err: (s: string) => (err += s) };
    expect(runConvert([join(CONF, "keepalived.conf")], io, FAKE_ENV)).toBe(0);
    expect(out.startsWith("# vigil config converted from")).toBe(true);
    const r = yaml(out);
    expect(r.ok).toBe(true);
    out = "";
    expect(runConvert([join(FIX, "sealos-k8s.conf")], io, FAKE_ENV)).toBe(1);
    expect(out).toBe("");
    expect(err).toContain("sealos-k8s.conf:23:");
    expect(runConvert([], io, FAKE_ENV)).toBe(2);
    expect(runConvert(["/nonexistent/x.conf"], io, FAKE_ENV)).toBe(2);
  });
});

/** a valid instance in YAML, indented as an item of vrrpInstances */
const INST = `vrrpInstances:
  - name: VI_1
    interface: eth0
    virtualRouterId: 30
    virtualIpaddress: [192.0.2.10/24]
`;

// Each entry: YAML text with the expected line marked `#<`, and a piece of the message.
const YAML_ERRORS: [string, string, string][] = [
  [
    "unknown key, with keepalived's name hinted",
    `${INST}    virtual_router_id: 4 #<\n`,
    "unknown key (did you mean 'virtualRouterId'?)",
  ],
  ["unknown top-level key", `vrrp_instances: [] #<\n`, "unknown key"],
  ["loader-only keys are not for files", `${INST}    locs: {} #<\n`, "unknown key"],
  ["wrong type", `${INST}    priority: high #<\n`, "vrrpInstances[0].priority"],
  ["out of range", `${INST}    priority: 256 #<\n`, "<=255"],
  [
    "missing required field (at the object)",
    "vrrpInstances:\n  - name: VI_1 #<\n    virtualRouterId: 30\n    virtualIpaddress: [192.0.2.10]\n",
    "interface: required but missing",
  ],
  [
    "bad VIP shorthand",
    `vrrpInstances:\n  - name: VI_1\n    interface: eth0\n    virtualRouterId: 30\n    virtualIpaddress:\n      - 192.0.2.10/24\n      - not-an-address #<\n`,
    "not ADDRESS[/PREFIX]",
  ],
  [
    "bad address in object form",
    `vrrpInstances:\n  - name: VI_1\n    interface: eth0\n    virtualRouterId: 30\n    virtualIpaddress:\n      - address: 192.0.2.300 #<\n`,
    "not an IP address",
  ],
  ["syntax error", `${INST}    priority: [1, 2\n    nopreempt: true #<\n`, ""],
  ["duplicate key", `${INST}    priority: 100\n    priority: 101 #<\n`, "unique"],
  ["top level not a mapping", "- a #<\n- b\n", "must be a mapping"],
  // semantic checks, shared with keepalived.conf
  [
    "nopreempt with priority 255",
    `${INST}    priority: 255\n    nopreempt: true #<\n`,
    "nopreempt is incompatible with priority 255",
  ],
  [
    "VIPs of two families",
    "vrrpInstances:\n  - name: VI_1\n    interface: eth0\n    virtualRouterId: 30\n    virtualIpaddress:\n      - 192.0.2.10/24\n      - 2001:db8::1 #<\n",
    "does not match the instance",
  ],
  [
    "explicit family against the addresses",
    "vrrpInstances:\n  - name: VI_1\n    interface: eth0\n    virtualRouterId: 30\n    family: 6\n    virtualIpaddress:\n      - 192.0.2.10/24 #<\n",
    "does not match the instance (IPv6)",
  ],
  [
    "interface that does not exist",
    "vrrpInstances:\n  - name: VI_1\n    interface: eth9 #<\n    virtualRouterId: 30\n    virtualIpaddress: [192.0.2.10]\n",
    "interface eth9 does not exist",
  ],
  ["track script not defined", `${INST}    trackScript:\n      - chk #<\n`, "chk not found"],
  ["advert_int fractional with VRRPv2", `${INST}    advertInt: 0.5 #<\n`, "whole number of seconds"],
  [
    "duplicate VRID",
    `${INST}  - name: VI_2\n    interface: eth0\n    virtualRouterId: 30 #<\n    virtualIpaddress: [192.0.2.11]\n`,
    "VRID 30 is already used by VI_1",
  ],
  [
    "sync group naming an unknown instance",
    `${INST}vrrpSyncGroups:\n  - name: G\n    group:\n      - VI_1\n      - VI_X #<\n`,
    "VI_X does not exist",
  ],
  [
    "authentication with VRRPv3",
    `globalDefs:\n  vrrpVersion: 3\n${INST}    authentication: #<\n      type: PASS\n      pass: secret\n`,
    "version 3 does not support authentication",
  ],
];

describe("YAML problems are located", () => {
  for (const [name, src, msg] of YAML_ERRORS) {
    test(name, () => {
      const line = src.split("\n").findIndex((l) => l.includes("#<")) + 1;
      const r = yaml(src);
      if (r.ok) throw new Error("accepted");
      expect(
        r.errors.some((e) => e.file === "t.yaml" && e.line === line && e.message.includes(msg)),
        JSON.stringify(r.errors),
      ).toBe(true);
    });
  }

  test("an empty file is an empty, valid config", () => {
    const r = yaml("");
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.config.vrrpInstances).toEqual([]);
  });

  test("JSON syntax errors have lines too", () => {
    const r = parseConfigText(
      '{\n  "vrrpInstances": [\n    {"name": }\n  ]\n}\n',
      "json",
      "t.json",
      FAKE_ENV,
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]!.line).toBe(3);
  });
});
