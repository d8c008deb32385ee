// keepalived.conf -> model: the lexer's corners, the parser's mapping onto the model, real-world
// files (keepalived's own samples, configs from issues, a multi-file setup with include globs)
// checked against keepalived 2.2.7 itself where it can run, a property test that no input makes
// the loader throw, and the `vigil check` command.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { runCheck } from "../../agent/cli/check.ts";
import {
  decomment,
  expandBraces,
  type LexItem,
  lexFile,
  lexText,
  splitQuotedEscaped,
  splitWords,
} from "../../agent/config/keepalived/lexer.ts";
import { type LoadResult, loadConfigFile, parseConfigText } from "../../agent/config/load.ts";
import { type Config, instanceMcastGroup } from "../../agent/config/model.ts";
import { FAKE_ENV, KeepalivedOracle } from "./config-oracle.ts";

const FIX = join(import.meta.dir, "../fixtures/conf");
const CONF = join(import.meta.dir, "../../conf");

function load(path: string): LoadResult {
  return loadConfigFile(path, FAKE_ENV);
}

function mustLoad(path: string): Config {
  const r = load(path);
  if (!r.ok) throw new Error(r.errors.map((e) => `${e.file}:${e.line}: ${e.message}`).join("\n"));
  return r.config;
}

function text(s: string): LoadResult {
  return parseConfigText(s, "keepalived", "t.conf", FAKE_ENV);
}

/** statements as "line:word word" and braces as "line:{" */
function shape(items: LexItem[]): string[] {
  return items.map((i) =>
    i.kind === "stmt" ? `${i.line}:${i.words.join(" ")}` : `${i.line}:${i.kind === "open" ? "{" : "}"}`,
  );
}

describe("lexer", () => {
  test("comments: ! and # outside double quotes, escaped ones are text", () => {
    expect(decomment("  priority 100 # comment").text).toBe("priority 100");
    expect(decomment("priority 100 ! comment").text).toBe("priority 100");
    expect(decomment('notify "/bin/x #1 !2" # real').text).toBe('notify "/bin/x #1 !2"');
    expect(decomment("label a\\#b").text).toBe("label a#b");
    expect(decomment('x "open').unterminatedQuote).toBe(true);
  });

  test("words: blanks separate, a double-quoted word keeps its blanks", () => {
    expect(splitWords('notify_master "/bin/a b"  c\td').words).toEqual([
      "notify_master",
      "/bin/a b",
      "c",
      "d",
    ]);
    expect(splitWords('a"b c"').words).toEqual(["a", "b c"]);
    expect(splitWords('x "y').error).toContain("unmatched quote");
  });

  test("braces are tokens even when glued, and end statements", () => {
    const r = lexText(
      "vrrp_instance VI_1{\n  virtual_ipaddress { 192.0.2.1/24 }  track_interface { eth1 }\n}\n",
      "t",
    );
    expect(shape(r.items)).toEqual([
      "1:vrrp_instance VI_1",
      "1:{",
      "2:virtual_ipaddress",
      "2:{",
      "2:192.0.2.1/24",
      "2:}",
      "2:track_interface",
      "2:{",
      "2:eth1",
      "2:}",
      "3:}",
    ]);
    expect(r.errors).toEqual([]);
  });

  test("braces inside double quotes are text", () => {
    const r = lexText('notify "/bin/echo {x}" # {\n', "t");
    expect(shape(r.items)).toEqual(["1:notify /bin/echo {x}"]);
  });

  test("CRLF line ends and blank lines keep line numbers", () => {
    const r = lexText("global_defs {\r\n\r\n  router_id a\r\n}\r\n", "t");
    expect(shape(r.items)).toEqual(["1:global_defs", "1:{", "3:router_id a", "4:}"]);
  });

  test("keepalived's script quoting: both quotes, glued parts, escapes", () => {
    expect(splitQuotedEscaped(`script "/bin/sh -c 'test -f /x'"`).words).toEqual([
      "script",
      "/bin/sh -c 'test -f /x'",
    ]);
    expect(splitQuotedEscaped(`/bin/sh -c 'test -f /x'`).words).toEqual(["/bin/sh", "-c", "test -f /x"]);
    expect(splitQuotedEscaped(`a"b c"d e`).words).toEqual(["ab cd", "e"]);
    expect(splitQuotedEscaped(`a\\ b \\x41\\t \\101 \\cA`).words).toEqual(["a b", "A\t", "A", "\x01"]);
    expect(splitQuotedEscaped(`"open`).error).toContain("missing terminating");
  });

  test("brace globs expand in order, nested", () => {
    expect(expandBraces("a{b,c}d")).toEqual(["abd", "acd"]);
    expect(expandBraces("{x,y{1,2}}")).toEqual(["x", "y1", "y2"]);
    expect(expandBraces("no{brace}")).toEqual(["no{brace}"]);
  });

  test("includes: globs relative to the including file, sorted, every token with its own file and line", () => {
    const r = lexFile(join(FIX, "include/main.conf"));
    expect(r.errors).toEqual([]);
    const rel = r.files.map((f) => f.slice(FIX.length + 1));
    // conf.d/README.txt does not match *.conf; the snippet include inside 10-vi1.conf is relative to conf.d/
    expect(rel).toEqual([
      "include/main.conf",
      "include/scripts/chk.inc",
      "include/conf.d/10-vi1.conf",
      "include/snippets/vips-a.inc",
      "include/snippets/vips-b.inc",
      "include/conf.d/20-vi2.conf",
    ]);
    const vip = r.items.find((i) => i.kind === "stmt" && i.words[0] === "192.0.2.12/24");
    expect(vip?.file.endsWith("include/snippets/vips-b.inc")).toBe(true);
    expect(vip?.line).toBe(1);
    const close = r.items.filter((i) => i.kind === "close" && i.file.endsWith("vips-b.inc"));
    expect(close.map((c) => c.line)).toEqual([2]);
  });

  test("include in text without a file system is an error at its line", () => {
    const r = lexText("\ninclude x.conf\n", "t");
    expect(r.errors).toEqual([{ file: "t", line: 2, message: expect.stringContaining("include") }]);
  });

  test("a file that cannot be read is an error at line 0", () => {
    const r = load("/nonexistent/keepalived.conf");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]).toMatchObject({ file: "/nonexistent/keepalived.conf", line: 0 });
  });
});

describe("parser -> model", () => {
  test("notify FIFOs: owner, reader script, priority-change lines at three levels", () => {
    const c = mustLoad(join(FIX, "notify-fifo.conf"));
    expect(c.globalDefs.notifyFifo).toEqual({
      path: "/tmp/vigil-fixture-notify.fifo",
      user: "root",
      group: "root",
    });
    expect(c.globalDefs.vrrpNotifyFifo).toEqual({ path: "/tmp/vigil-fixture-vrrp.fifo", script: "/bin/cat" });
    expect(c.globalDefs.vrrpNotifyPriorityChanges).toBe(true);
    expect(c.vrrpSyncGroups[0]!.notifyPriorityChanges).toBe(false);
    expect(c.vrrpInstances.map((i) => i.notifyPriorityChanges)).toEqual([false, undefined, true]);
    expect(c.globalDefs.vrrpDownTimerAdverts).toBe(4);
    expect(c.vrrpInstances.map((i) => i.downTimerAdverts)).toEqual([2, undefined, undefined]);
    expect(c.globalDefs).toMatchObject({ vrrpMcastGroup4: "224.0.0.19", vrrpMcastGroup6: "ff02::1:12" });
    expect(c.vrrpInstances.map((i) => [i.notifyDeleted, i.notify.deleted])).toEqual([
      [true, "/bin/echo deleted"],
      [true, undefined],
      [false, undefined],
    ]);
    expect(c.vrrpInstances[2]!.notify.masterRxLowerPri).toBe("/usr/bin/logger lower priority master seen");
    expect(c.vrrpInstances.map((i) => instanceMcastGroup(c, i))).toEqual([
      "239.1.2.3",
      "224.0.0.19",
      "224.0.0.19",
    ]);
  });

  test("track_file: blocks (and vrrp_track_file), references with their own weights, init_file", () => {
    const c = mustLoad(join(FIX, "track-file.conf"));
    expect(c.trackFiles.map(({ loc: _l, locs: _ls, ...f }) => f)).toEqual([
      {
        name: "maintenance",
        file: "/tmp/vigil-fixture-maintenance",
        weight: 0,
        weightReverse: false,
        init: { value: 0, overwrite: false },
      },
      {
        name: "load",
        file: "/tmp/vigil-fixture-load",
        weight: -10,
        weightReverse: true,
        init: { value: 3, overwrite: true },
      },
      { name: "plain", file: "/tmp/vigil-fixture-plain", weight: 1, weightReverse: false },
    ]);
    const refs = (xs: { name: string; weight?: number; weightReverse?: boolean }[]) =>
      xs.map((t) => [t.name, t.weight, t.weightReverse]);
    expect(refs(c.vrrpInstances[0]!.trackFile)).toEqual([
      ["load", 5, undefined],
      ["plain", -2, false],
      ["maintenance", 0, true],
    ]);
    expect(refs(c.vrrpSyncGroups[0]!.trackFile)).toEqual([["maintenance", undefined, undefined]]);
    expect(c.vrrpInstances[0]!.trackFile[0]!.loc?.line).toBe(46);
    expect(c.globalDefs).toMatchObject({
      vrrpStartupDelay: 5.5,
      vrrpLowerPrioNoAdvert: true,
      vrrpHigherPrioSendAdvert: false,
    });
    expect(c.vrrpInstances[1]).toMatchObject({ lowerPrioNoAdvert: false, higherPrioSendAdvert: true });
  });

  test("keepalived's doc sample: values, auth, labels, garp, ignored keywords", () => {
    const c = mustLoad(join(FIX, "doc-vrrp.conf"));
    expect(c.globalDefs.routerId).toBe("LVS_DEVEL");
    expect(c.globalDefs.ignored.map((i) => i.keyword)).toEqual([
      "notification_email",
      "notification_email_from",
      "smtp_server",
      "smtp_connect_timeout",
      "smtp_alert",
      "smtp_alert",
      "smtp_alert",
      "smtp_alert",
    ]);
    expect(c.vrrpInstances.map((i) => i.name)).toEqual(["VI_1", "VI_2", "VI_3", "VI_4"]);
    const vi1 = c.vrrpInstances[0]!;
    expect(vi1).toMatchObject({
      state: "MASTER",
      interface: "eth0",
      virtualRouterId: 51,
      priority: 100,
      advertInt: 1,
      family: 4,
      garpMasterDelay: 10,
      authentication: { type: "PASS", pass: "1111" },
    });
    expect(vi1.virtualIpaddress.map((v) => [v.address, v.label])).toEqual([
      ["192.168.200.16", undefined],
      ["192.168.200.17", undefined],
      ["192.168.200.18", undefined],
      ["192.168.200.18", "eth0:1"],
    ]);
    expect(vi1.virtualIpaddress[3]!.loc?.line).toBe(33);
    expect(vi1.locs?.["virtualRouterId"]?.line).toBe(19);
    expect(c.vrrpInstances[1]!.state).toBeUndefined();
  });

  test("sync groups and quoted notify commands with arguments", () => {
    const c = mustLoad(join(FIX, "doc-vrrp-sync.conf"));
    expect(c.vrrpSyncGroups.map((g) => [g.name, g.group])).toEqual([
      ["G1", ["VI_1", "VI_2", "VI_5", "VI_6", "VI_7", "VI_8", "VI_9"]],
      ["G2", ["VI_3", "VI_4"]],
    ]);
    expect(c.vrrpSyncGroups[0]!.notify).toEqual({
      backup: "/usr/local/bin/vrrp.back arg1 arg2",
      master: "/usr/local/bin/vrrp.mast arg1 arg2",
      fault: "/usr/local/bin/vrrp.fault arg1 arg2",
    });
    expect(c.vrrpInstances[0]!.virtualIpaddress[0]).toMatchObject({
      address: "192.168.200.18",
      prefixLen: 25,
    });
  });

  test("unicast, tracking, VIPs on other interfaces, labels", () => {
    const c = mustLoad(join(FIX, "haproxy-unicast.conf"));
    const i = c.vrrpInstances[0]!;
    expect(i.unicastSrcIp).toBe("192.0.2.1");
    expect(i.unicastPeer).toMatchObject([{ address: "192.0.2.2" }]);
    expect(i.trackInterface.map((t) => t.name)).toEqual(["eth2", "eth4"]);
    expect(i.trackScript).toMatchObject([{ name: "check-haproxy" }]);
    expect(i.virtualIpaddress.map((v) => `${v.address}/${v.prefixLen} ${v.dev} ${v.label}`)).toEqual([
      "192.0.2.99/24 eth0 eth0:0",
      "192.0.2.100/24 eth0 eth0:1",
      "198.51.100.100/24 eth2 eth2:0",
      "203.0.113.254/24 eth4 eth4:0",
    ]);
    expect(c.vrrpScripts).toMatchObject([
      { name: "check-haproxy", script: "/usr/bin/pgrep -x haproxy", interval: 2 },
    ]);
  });

  test("IPv6: family from the addresses, v3 intervals, excluded VIPs of any family, peers with TTLs", () => {
    const c = mustLoad(join(FIX, "ipv6-v3.conf"));
    const [a, b] = c.vrrpInstances;
    expect(a).toMatchObject({ family: 6, advertInt: 0.05, nopreempt: true, priority: 250 });
    expect(a!.virtualIpaddress[1]).toMatchObject({ address: "2001:db8:60::1", noPrefixRoute: true });
    expect(a!.virtualIpaddressExcluded.map((v) => v.address)).toEqual(["2001:db8:60::2", "192.0.2.60"]);
    expect(b).toMatchObject({ family: 6, advertInt: 1.5, preemptDelay: 2.5, unicastSrcIp: "2001:db8:61::1" });
    expect(b!.unicastPeer).toMatchObject([
      { address: "2001:db8:61::2", minTtl: 250, maxTtl: 255 },
      { address: "2001:db8:61::3" },
    ]);
    expect(b!.garpMasterRefresh).toBe(30);
    expect(c.globalDefs.garp).toMatchObject({ masterRefresh: 60, gnaInterval: 0.001 });
  });

  test("syntax corners: glued braces, one-line blocks, quoted names, brd and scope", () => {
    const c = mustLoad(join(FIX, "quirks.conf"));
    expect(c.globalDefs.routerId).toBe("quirks");
    const [a, b] = c.vrrpInstances;
    expect(a).toMatchObject({ name: "VI_1", interface: "eth0", virtualRouterId: 7, priority: 99 });
    expect(a!.trackInterface).toMatchObject([{ name: "eth1", weight: -10 }]);
    expect(a!.notify.master).toBe("/usr/bin/logger -t vigil '#not a comment' done");
    expect(splitQuotedEscaped(a!.notify.master!).words).toEqual([
      "/usr/bin/logger",
      "-t",
      "vigil",
      "#not a comment",
      "done",
    ]);
    expect(a!.notify.any).toBe("/usr/bin/logger -t vigil-notify");
    expect(b).toMatchObject({ name: "VI_2", interface: "eth2", advertInt: 3 });
    expect(b!.virtualIpaddress).toMatchObject([
      { address: "198.51.100.7", prefixLen: 24, brd: "+", scope: "link" },
      { address: "198.51.100.8", brd: "198.51.100.255" },
    ]);
  });

  test("multi-file config with include globs loads like one file", () => {
    const c = mustLoad(join(FIX, "include/main.conf"));
    expect(c.vrrpScripts.map((s) => s.name)).toEqual(["chk_true"]);
    expect(c.vrrpInstances.map((i) => [i.name, i.virtualIpaddress.map((v) => v.address)])).toEqual([
      ["VI_1", ["192.0.2.11", "192.0.2.12"]],
      ["VI_2", ["198.51.100.12"]],
    ]);
    expect(c.vrrpInstances[1]!.trackScript).toMatchObject([{ name: "chk_true", weight: -20 }]);
    expect(c.vrrpInstances[1]!.loc?.file.endsWith("include/conf.d/20-vi2.conf")).toBe(true);
  });

  test("keepalived's derivations: MASTER without priority is the owner; preempt undoes nopreempt", () => {
    const r = text(
      "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n state MASTER\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n" +
        "vrrp_instance B {\n interface eth0\n virtual_router_id 2\n nopreempt\n preempt\n virtual_ipaddress {\n  192.0.2.2\n }\n}\n",
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.vrrpInstances[0]).toMatchObject({ state: "MASTER", priority: 255 });
    expect(r.config.vrrpInstances[1]).toMatchObject({ nopreempt: false, priority: 100 });
  });

  test("mcast_src_ip sets the advert source; weights with reverse; script options", () => {
    const r = text(
      'global_defs {\n enable_script_security\n script_user root\n}\nvrrp_script s {\n script "/bin/true"\n interval 3\n timeout 2\n weight -20 reverse\n rise 2\n fall 3\n user root\n init_fail\n}\n' +
        "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n mcast_src_ip 192.0.2.5\n virtual_ipaddress {\n  192.0.2.1\n }\n" +
        " track_script {\n  s weight 10 noreverse\n }\n track_interface {\n  eth1 weight -5 reverse\n }\n}\n",
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.vrrpScripts[0]).toMatchObject({
      script: "/bin/true",
      interval: 3,
      timeout: 2,
      weight: -20,
      weightReverse: true,
      rise: 2,
      fall: 3,
      user: "root",
      initFail: true,
    });
    const i = r.config.vrrpInstances[0]!;
    expect(i.unicastSrcIp).toBe("192.0.2.5");
    expect(i.unicastPeer).toEqual([]);
    expect(i.trackScript).toMatchObject([{ name: "s", weight: 10, weightReverse: false }]);
    expect(i.trackInterface).toMatchObject([{ name: "eth1", weight: -5, weightReverse: true }]);
  });

  test("v3_checksum_as_v2, vrrp_check_unicast_src and vrrp_strict reach global_defs", () => {
    const r = text(
      "global_defs {\n v3_checksum_as_v2\n vrrp_check_unicast_src\n vrrp_version 3\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n",
    );
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.config.globalDefs).toMatchObject({
      v3ChecksumAsV2: true,
      checkUnicastSrc: true,
      vrrpVersion: 3,
    });
  });

  test("rs_init_notifies takes keepalived's optional boolean and is not listed as ignored", () => {
    const conf = (line: string) =>
      `global_defs {\n ${line}\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n`;
    for (const [line, want] of [
      ["rs_init_notifies", true],
      ["rs_init_notifies true", true],
      ["rs_init_notifies off", false],
    ] as const) {
      const r = text(conf(line));
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      expect(r.config.globalDefs.rsInitNotifies).toBe(want);
      expect(r.config.globalDefs.ignored.map((i) => i.keyword)).not.toContain("rs_init_notifies");
    }
    const none = text(conf(""));
    expect(none.ok && none.config.globalDefs.rsInitNotifies).toBe(false);
    const bad = text(conf("rs_init_notifies maybe"));
    expect(bad.ok).toBe(false);
  });

  test("keepalived's sample with its LVS part loads: VRRP and the virtual server in one model", () => {
    const c = mustLoad(join(FIX, "doc-sample-lvs.conf"));
    expect(c.vrrpInstances.map((i) => i.name)).toEqual(["VI_1"]);
    expect(c.virtualServers).toHaveLength(1);
    expect(c.virtualServers[0]).toMatchObject({
      address: "10.10.10.2",
      port: 1358,
      delayLoop: 6,
      lbAlgo: "rr",
      lbKind: "NAT",
      persistenceTimeout: 50,
      protocol: "TCP",
      sorryServer: { address: "192.168.200.200", port: 1358 },
      loc: { line: 27 },
    });
    expect(c.virtualServers[0]!.realServers[0]!.checkers).toMatchObject([
      {
        type: "HTTP_GET",
        url: [{ path: "/testurl3/test.jsp", digest: "640205b7b0fc66c1ea91c463fac6334d" }],
        connectTimeout: 3,
        retry: 3,
        delayBeforeRetry: 3,
      },
    ]);
  });
});

// Valid files and what keepalived's config test says about them (0 = accepted; 6 = accepted with a
// script-security complaint, which vigil reports as a warning).
const VALID: [string, number][] = [
  ["doc-vrrp.conf", 0],
  ["doc-vrrp-sync.conf", 0],
  ["doc-vrrp-scripts.conf", 0],
  ["doc-track-interface.conf", 0],
  ["track-file.conf", 0],
  ["notify-fifo.conf", 0],
  ["haproxy-unicast.conf", 0],
  ["ipv6-v3.conf", 0],
  ["quirks.conf", 6],
  ["include/main.conf", 0],
];

// Real-world configs that both tools refuse, with the lines vigil must name.
const BROKEN: [string, number[], string][] = [
  ["sealos-k8s.conf", [23], "auth_pass: longer than 8 characters"],
  ["conntrackd-sync.conf", [28, 48], "auth_pass: longer than 8 characters"],
];

let oracle: KeepalivedOracle | null = null;
const haveKeepalived = KeepalivedOracle.available();
let tmp = "";
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "vigil-config-ka-"));
  if (haveKeepalived) oracle = new KeepalivedOracle();
});
afterAll(() => {
  oracle?.destroy();
  rmSync(tmp, { recursive: true, force: true });
});

describe("real-world files", () => {
  for (const [f] of VALID) {
    test(`${f} is valid`, () => {
      mustLoad(join(FIX, f));
    });
  }
  test("conf/keepalived.conf (the documented example) is valid without warnings", () => {
    const r = load(join(CONF, "keepalived.conf"));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.warnings).toEqual([]);
    expect(r.config.vrrpInstances.map((i) => [i.name, i.family])).toEqual([
      ["VI_V4", 4],
      ["VI_V6", 6],
    ]);
  });
  for (const [f, lines, msg] of BROKEN) {
    test(`${f} is refused at ${lines.join(", ")}`, () => {
      const r = load(join(FIX, f));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.errors.map((e) => e.line)).toEqual(lines);
        for (const e of r.errors) expect(e.message).toContain(msg);
      }
    });
  }
});

describe.skipIf(!haveKeepalived)("real-world files: keepalived 2.2.7 agrees", () => {
  for (const [f, code] of VALID) {
    test(`${f}: keepalived exits ${code}`, () => {
      const ka = oracle!.check(join(FIX, f));
      expect(ka.code, ka.output).toBe(code);
    });
  }
  test("conf/keepalived.conf: keepalived exits 0", () => {
    const ka = oracle!.check(join(CONF, "keepalived.conf"));
    expect(ka.code, ka.output).toBe(0);
  });
  test("doc-sample-lvs.conf: keepalived exits 0 (vigil loads it too)", () => {
    const ka = oracle!.check(join(FIX, "doc-sample-lvs.conf"));
    expect(ka.code, ka.output).toBe(0);
  });
  for (const [f, lines] of BROKEN) {
    test(`${f}: keepalived refuses it at ${lines.join(", ")} too`, () => {
      const ka = oracle!.check(join(FIX, f));
      expect(ka.code, ka.output).not.toBe(0);
      const kaLines = ka.messages
        .filter((m) => m.message.includes("Truncating auth_pass"))
        .map((m) => m.line);
      expect([...new Set(kaLines)]).toEqual(lines);
    });
  }
  test("the same files repaired are accepted by both", () => {
    // shorter passwords, no tracking of the own interface, scripts that exist, script security on
    const repair = (s: string) =>
      `global_defs {\n enable_script_security\n script_user root\n}\n${s}`
        .replace(/auth_pass \S+/g, "auth_pass secretpw")
        .replace(/^ {4}bond0\.(999|101)\n/gm, "")
        .replace(/script "[^"]*"/g, 'script "/bin/true"');
    for (const [f] of BROKEN) {
      const p = join(tmp, `fixed-${f}`);
      writeFileSync(p, repair(readFileSync(join(FIX, f), "utf8")));
      const r = load(p);
      if (!r.ok) throw new Error(`${f}: ${JSON.stringify(r.errors)}`);
      const ka = oracle!.check(p);
      expect(ka.code, `${f}: ${ka.output}`).toBe(0);
    }
  });
});

describe("never throws", () => {
  const words = [
    "global_defs",
    "vrrp_instance",
    "vrrp_script",
    "vrrp_sync_group",
    "virtual_server",
    "interface",
    "eth0",
    "virtual_router_id",
    "priority",
    "advert_int",
    "virtual_ipaddress",
    "192.0.2.1/24",
    "2001:db8::1",
    "track_script",
    "track_interface",
    "unicast_peer",
    "authentication",
    "auth_type",
    "PASS",
    "auth_pass",
    "state",
    "MASTER",
    "group",
    "notify_master",
    "script",
    "weight",
    "-20",
    "255",
    "0.5",
    "{",
    "}",
    '"',
    "#",
    "!",
    "\\",
    "include",
    "@x",
    "$X=1",
    "\n",
    "\n",
    "\n",
  ];
  test("arbitrary text: a model or errors, never an exception", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        const r = text(s);
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 500 },
    );
  });
  test("keepalived-like token soup: a model or errors with lines inside the text", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...words), { maxLength: 120 }), (ws) => {
        const s = ws.join(" ");
        const r = text(s);
        const lines = s.split("\n").length;
        if (!r.ok) for (const e of r.errors) expect(e.line >= 0 && e.line <= lines).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
  test("every valid fixture with one line removed: never throws", () => {
    for (const [f] of VALID) {
      if (f.includes("/")) continue;
      const lines = readFileSync(join(FIX, f), "utf8").split("\n");
      for (let i = 0; i < lines.length; i++) {
        const cut = [...lines.slice(0, i), ...lines.slice(i + 1)].join("\n");
        expect(typeof text(cut).ok).toBe("boolean");
      }
    }
  });
});

describe("vigil check", () => {
  function capture(argv: string[]): { code: number; out: string; err: string } {
    let out = "";
    let err = "";
    const code = runCheck(argv, { out: (s) => (out += s), err: (s) => (err += s) }, FAKE_ENV);
    return { code, out, err };
  }

  test("valid file: exit 0, summary on stdout, warnings prefixed on stderr", () => {
    const r = capture(["-f", join(FIX, "doc-vrrp.conf")]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("valid (4 vrrp instances, 8 warnings)");
    expect(r.err.split("\n")[0]).toBe(
      `warning: ${join(FIX, "doc-vrrp.conf")}:5: notification_email: has no effect in vigil (ignored)`,
    );
  });

  test("invalid file: exit 1, one FILE:LINE: line per error", () => {
    const r = capture(["-f", join(FIX, "conntrackd-sync.conf")]);
    expect(r.code).toBe(1);
    const lines = r.err.trim().split("\n");
    expect(lines.slice(0, 2)).toEqual([
      `${join(FIX, "conntrackd-sync.conf")}:28: auth_pass: longer than 8 characters (keepalived would truncate it)`,
      `${join(FIX, "conntrackd-sync.conf")}:48: auth_pass: longer than 8 characters (keepalived would truncate it)`,
    ]);
  });

  test("usage errors and unreadable files: exit 2", () => {
    expect(capture([]).code).toBe(2);
    expect(capture(["--bogus"]).code).toBe(2);
    expect(capture(["-f", "/nonexistent/x.conf"]).code).toBe(2);
    expect(capture(["-f", FIX]).code).toBe(2);
  });

  test("YAML through the same command", () => {
    const r = capture(["-f", join(CONF, "vigil.yaml")]);
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
  });

  test("as its own process: exit status and stderr", () => {
    const entry = join(import.meta.dir, "config-cli-entry.ts");
    const bun = process.execPath;
    const ok = Bun.spawnSync([bun, entry, "check", "-f", join(CONF, "keepalived.conf")], {
      stderr: "pipe",
      stdout: "pipe",
    });
    expect(ok.exitCode).toBe(0);
    expect(ok.stdout.toString()).toContain("valid (2 vrrp instances, 0 warnings)");
    const bad = Bun.spawnSync([bun, entry, "check", "-f", join(FIX, "sealos-k8s.conf")], {
      stderr: "pipe",
      stdout: "pipe",
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr.toString()).toContain(
      `${join(FIX, "sealos-k8s.conf")}:23: auth_pass: longer than 8 characters`,
    );
    const none = Bun.spawnSync([bun, entry, "check"], { stderr: "pipe", stdout: "pipe" });
    expect(none.exitCode).toBe(2);
  });
});
