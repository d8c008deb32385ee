// conf/vigil.service, checked by systemd itself: `systemd-analyze verify` (Debian package systemd) in a
// scratch root that holds the unit, systemd's own units, a stand-in for the vigil binary and copies of
// the other programs the unit runs, so that a wrong path fails the test; `systemd-analyze security
// --offline` bounds the sandbox's exposure score. A missing systemd-analyze fails the test: CI installs it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { watchdogIntervalMs } from "../../agent/supervisor/sdnotify.ts";

const UNIT = join(import.meta.dir, "..", "..", "conf", "vigil.service");
const text = readFileSync(UNIT, "utf8");

/** `Key=value` lines per section; repeated keys keep every value in order. */
function parseUnit(src: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let cur: Map<string, string[]> | null = null;
  for (const raw of src.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      cur = new Map();
      sections.set(sec[1]!, cur);
      continue;
    }
    const eq = line.indexOf("=");
    if (!cur || eq < 0) throw new Error(`unparsable line: ${line}`);
    const k = line.slice(0, eq).trim();
    cur.set(k, [...(cur.get(k) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = parseUnit(text);
const service = unit.get("Service") ?? new Map<string, string[]>();
const one = (k: string): string | undefined => service.get(k)?.at(-1);

function analyze(): string {
  const p = Bun.which("systemd-analyze");
  if (!p) throw new Error("systemd-analyze not found: install Debian's systemd package (.ci/run does)");
  return p;
}

/** Absolute program paths of every Exec*= line (prefixes like - @ : + ! stripped). */
function execPrograms(src: string): string[] {
  const u = parseUnit(src).get("Service") ?? new Map<string, string[]>();
  const out: string[] = [];
  for (const [k, vs] of u) {
    if (!k.startsWith("Exec")) continue;
    for (const v of vs) out.push(v.replace(/^[-@:+!]+/, "").split(/\s+/)[0]!);
  }
  return out;
}

let root = "";

/** A scratch root for `--root`: systemd's units, the unit under test, the programs it runs. */
function makeRoot(unitText: string, opts: { withVigil?: boolean } = {}): string {
  const r = mkdtempSync(join(tmpdir(), "vigil-sd-"));
  mkdirSync(join(r, "etc/systemd/system"), { recursive: true });
  mkdirSync(join(r, "usr/lib/systemd"), { recursive: true });
  const sysUnits = existsSync("/usr/lib/systemd/system") ? "/usr/lib/systemd/system" : "/lib/systemd/system";
  cpSync(sysUnits, join(r, "usr/lib/systemd/system"), { recursive: true, verbatimSymlinks: true });
  writeFileSync(join(r, "etc/systemd/system/vigil.service"), unitText);
  for (const prog of execPrograms(unitText)) {
    const dst = join(r, prog);
    mkdirSync(dirname(dst), { recursive: true });
    if (prog === "/usr/local/bin/vigil") {
      // the operator installs this one; a stand-in is enough for verify
      if (opts.withVigil === false) continue;
      writeFileSync(dst, "#!/bin/sh\nexit 0\n");
    } else if (existsSync(prog)) {
      // anything else must exist on a Debian host, or the unit is wrong
      copyFileSync(prog, dst);
    } else continue;
    chmodSync(dst, 0o755);
  }
  return r;
}

function verify(r: string): { code: number; out: string } {
  const p = Bun.spawnSync([analyze(), "verify", `--root=${r}`, join(r, "etc/systemd/system/vigil.service")], {
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, SYSTEMD_LOG_COLOR: "0" },
  });
  return { code: p.exitCode ?? -1, out: (p.stdout.toString() + p.stderr.toString()).trim() };
}

const roots: string[] = [];
beforeAll(() => {
  root = makeRoot(text);
  roots.push(root);
});
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

describe("conf/vigil.service", () => {
  test("systemd-analyze is installed", () => {
    expect(existsSync(analyze())).toBe(true);
  });

  test("systemd-analyze verify: no errors and no warnings", () => {
    const r = verify(root);
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  });

  test("the verify harness catches a broken unit (unknown key, missing binary)", () => {
    const typo = makeRoot(text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"));
    const noBin = makeRoot(text, { withVigil: false });
    roots.push(typo, noBin);
    const a = verify(typo);
    expect(a.out).toContain("NoNewPrivilege");
    const b = verify(noBin);
    expect(b.code).not.toBe(0);
    expect(b.out).toContain("/usr/local/bin/vigil");
  });

  test("every other program the unit runs exists here (verify only checks ExecStart)", () => {
    const progs = execPrograms(text);
    expect(progs).toContain("/bin/kill");
    for (const prog of progs) {
      if (prog === "/usr/local/bin/vigil") continue;
      expect([prog, existsSync(prog)]).toEqual([prog, true]);
    }
    expect(
      execPrograms(text.replace("/bin/kill", "/bin/kil")).every(
        (p) => p === "/usr/local/bin/vigil" || existsSync(p),
      ),
    ).toBe(false);
  });

  test("service shape: notify, reload by SIGHUP, restart on failure, mixed kill, watchdog", () => {
    expect(one("Type")).toBe("notify");
    expect(one("NotifyAccess")).toBe("main");
    expect(one("ExecStart")).toBe(
      "/usr/local/bin/vigil run -f /etc/vigil/keepalived.conf --state-dir /var/lib/vigil",
    );
    expect(service.get("ExecReload")).toContain("/bin/kill -HUP $MAINPID");
    expect(service.get("ExecReload")?.at(-1)).toBe("/bin/kill -HUP $MAINPID");
    expect(one("Restart")).toBe("on-failure");
    expect(one("KillMode")).toBe("mixed");
    expect(one("StateDirectory")).toBe("vigil");
    expect(unit.get("Install")?.get("WantedBy")).toEqual(["multi-user.target"]);
  });

  test("WatchdogSec gives the agent a ping period it honours", () => {
    const w = /^(\d+)s$/.exec(one("WatchdogSec") ?? "");
    expect(w).not.toBeNull();
    const usec = Number(w![1]) * 1_000_000;
    const ms = watchdogIntervalMs({ WATCHDOG_USEC: String(usec), WATCHDOG_PID: "42" }, 42);
    expect(ms).toBe(usec / 2000);
    // at least a few seconds: a GC pause or a burst of netlink work must not look like a hang
    expect(usec).toBeGreaterThanOrEqual(5_000_000);
  });

  test("least privilege: two capabilities, read-only system, no setuid, no W^X ban (JIT)", () => {
    const caps = (k: string) => (one(k) ?? "").split(/\s+/).sort();
    expect(caps("CapabilityBoundingSet")).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    expect(caps("AmbientCapabilities")).toEqual(["CAP_NET_ADMIN", "CAP_NET_RAW"]);
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("ReadWritePaths")?.split(/\s+/)).toContain("/var/lib/vigil");
    for (const k of [
      "NoNewPrivileges",
      "PrivateTmp",
      "ProtectHome",
      "LockPersonality",
      "RestrictSUIDSGID",
      "ProtectKernelModules",
    ]) {
      expect([k, one(k)]).toEqual([k, "yes"]);
    }
    expect(one("SystemCallArchitectures")).toBe("native");
    expect((one("RestrictAddressFamilies") ?? "").split(/\s+/).sort()).toEqual(
      ["AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_UNIX"].sort(),
    );
    expect(service.has("MemoryDenyWriteExecute")).toBe(false);
  });

  test("systemd-analyze security: exposure at most 3.0", () => {
    const p = Bun.spawnSync(
      [analyze(), "security", "--offline=yes", `--root=${root}`, "--no-pager", "vigil.service"],
      { stdout: "pipe", stderr: "pipe" },
    );
    const out = p.stdout.toString() + p.stderr.toString();
    const m = /Overall exposure level for vigil\.service: ([\d.]+)/.exec(out);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(3.0);
  });
});
