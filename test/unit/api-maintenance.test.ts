// The operator's maintenance set (agent/api/maintenance.ts): how real servers are named and found,
// persistence (atomic, reloaded, damaged file tolerated), pruning on config changes; and the `drain`
// supervisor message that carries the set to the check child.
import { afterEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MaintenanceSet, resolveRealServer } from "../../agent/api/maintenance.ts";
import { Config, type ConfigInput } from "../../agent/config/model.ts";
import { createLogger } from "../../agent/observe/log.ts";
import { parseMessage } from "../../agent/supervisor/messages.ts";

const log = createLogger({ level: "silent" });
const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vigil-maint-"));
  tmp.push(d);
  return d;
}

type VsIn = NonNullable<ConfigInput["virtualServers"]>[number];
const vs = (o: Partial<VsIn>): VsIn => ({ lbAlgo: "rr", lbKind: "NAT", ...o });
const CFG = Config.parse({
  vrrpInstances: [{ name: "VI_1", interface: "eth0", virtualRouterId: 1 }],
  virtualServerGroups: [{ name: "web", entries: [{ address: "192.0.2.30", port: 80 }] }],
  virtualServers: [
    vs({
      address: "192.0.2.10",
      port: 80,
      protocol: "TCP",
      realServers: [{ address: "198.51.100.1" }, { address: "198.51.100.2", port: 8080 }],
    }),
    vs({ address: "192.0.2.10", port: 53, protocol: "UDP", realServers: [{ address: "198.51.100.1" }] }),
    vs({ address: "192.0.2.10", port: 53, protocol: "TCP", realServers: [{ address: "198.51.100.1" }] }),
    vs({ address: "2001:db8::10", port: 443, protocol: "TCP", realServers: [{ address: "2001:db8::1:5" }] }),
    vs({
      fwmark: 7,
      realServers: [
        { address: "198.51.100.3", port: 80 },
        { address: "198.51.100.3", port: 81 },
      ],
    }),
    vs({ group: "web", protocol: "TCP", realServers: [{ address: "198.51.100.4", port: 80 }] }),
  ],
});

describe("naming real servers", () => {
  const ok = (v: string, r: string) => {
    const x = resolveRealServer(CFG, v, r);
    if (!x.ok) throw new Error(x.message);
    return `${x.ref.virtualServer} | ${x.ref.realServer}`;
  };
  const err = (v: string, r: string) => {
    const x = resolveRealServer(CFG, v, r);
    return x.ok ? "ok" : x.kind;
  };

  test("the keys GetState and the diff use", () => {
    expect(ok("192.0.2.10:80/TCP", "198.51.100.1:80")).toBe("192.0.2.10:80/TCP | 198.51.100.1:80");
    expect(ok("192.0.2.10:80/TCP", "198.51.100.2:8080")).toBe("192.0.2.10:80/TCP | 198.51.100.2:8080");
    expect(ok("[2001:db8::10]:443/TCP", "[2001:db8::1:5]:443")).toBe(
      "[2001:db8::10]:443/TCP | [2001:db8::1:5]:443",
    );
    expect(ok("fwmark 7", "198.51.100.3:81")).toBe("fwmark 7 | 198.51.100.3:81");
    expect(ok("group web", "198.51.100.4:80")).toBe("group web | 198.51.100.4:80");
  });

  test("forms people type: protocol case or none, address spelling, bare address", () => {
    expect(ok("192.0.2.10:80/tcp", "198.51.100.1:80")).toBe("192.0.2.10:80/TCP | 198.51.100.1:80");
    expect(ok("192.0.2.10:80", "198.51.100.1")).toBe("192.0.2.10:80/TCP | 198.51.100.1:80");
    expect(ok("[2001:DB8:0::10]:443", "2001:db8:0:0::1:5")).toBe(
      "[2001:db8::10]:443/TCP | [2001:db8::1:5]:443",
    );
    expect(ok("FWMARK 7", "198.51.100.3:80")).toBe("fwmark 7 | 198.51.100.3:80");
  });

  test("unknown is NOT_FOUND, several matches are ambiguous", () => {
    expect(err("192.0.2.11:80/TCP", "198.51.100.1:80")).toBe("not_found");
    expect(err("192.0.2.10:80/UDP", "198.51.100.1:80")).toBe("not_found");
    expect(err("192.0.2.10:80/TCP", "198.51.100.9:80")).toBe("not_found");
    expect(err("192.0.2.10:80/TCP", "198.51.100.1:81")).toBe("not_found");
    expect(err("fwmark 8", "198.51.100.3:80")).toBe("not_found");
    expect(err("group nope", "198.51.100.4:80")).toBe("not_found");
    expect(err("garbage", "x")).toBe("not_found");
    expect(err("192.0.2.10:53", "198.51.100.1:53")).toBe("ambiguous");
    expect(err("fwmark 7", "198.51.100.3")).toBe("ambiguous");
    expect(ok("192.0.2.10:53/UDP", "198.51.100.1:53")).toBe("192.0.2.10:53/UDP | 198.51.100.1:53");
  });
});

describe("maintenance set", () => {
  const ref = { virtualServer: "192.0.2.10:80/TCP", realServer: "198.51.100.1:80" };

  test("changes report whether anything changed, persist atomically, reload", () => {
    const d = tempDir();
    const m = MaintenanceSet.load(d, log);
    expect(m.setRealServer(ref, true)).toBe(true);
    expect(m.setRealServer(ref, true)).toBe(false);
    expect(m.setInstance("VI_1", true)).toBe(true);
    expect(readdirSync(d)).toEqual(["maintenance.json"]);
    const back = MaintenanceSet.load(d, log);
    expect(back.instances).toEqual(["VI_1"]);
    expect(back.realServers).toEqual([ref]);
    expect(back.isDrained(ref.virtualServer, ref.realServer)).toBe(true);
    expect(back.setRealServer(ref, false)).toBe(true);
    expect(MaintenanceSet.load(d, log).realServers).toEqual([]);
  });

  test("a damaged or foreign file starts empty instead of failing", () => {
    const d = tempDir();
    writeFileSync(join(d, "maintenance.json"), "{not json");
    expect(MaintenanceSet.load(d, log).realServers).toEqual([]);
    writeFileSync(join(d, "maintenance.json"), JSON.stringify({ version: 2, instances: 1 }));
    expect(MaintenanceSet.load(d, log).instances).toEqual([]);
  });

  test("a write that fails changes nothing", () => {
    if (process.getuid?.() === 0) {
      // root writes through mode 0500: use a path that cannot be a directory instead
      const d = tempDir();
      const file = join(d, "f");
      writeFileSync(file, "");
      const m = new MaintenanceSet(file);
      expect(() => m.setInstance("VI_1", true)).toThrow();
      expect(m.instances).toEqual([]);
      return;
    }
    const d = tempDir();
    const m = MaintenanceSet.load(d, log);
    chmodSync(d, 0o500);
    try {
      expect(() => m.setRealServer(ref, true)).toThrow();
      expect(m.realServers).toEqual([]);
    } finally {
      chmodSync(d, 0o700);
    }
  });

  test("prune drops what the config no longer has, and persists it", () => {
    const d = tempDir();
    const m = MaintenanceSet.load(d, log);
    m.setInstance("VI_1", true);
    m.setInstance("VI_gone", true);
    m.setRealServer(ref, true);
    m.setRealServer({ virtualServer: "fwmark 9", realServer: "198.51.100.3:80" }, true);
    const gone = m.prune(CFG);
    expect(gone).toEqual({
      instances: ["VI_gone"],
      realServers: [{ virtualServer: "fwmark 9", realServer: "198.51.100.3:80" }],
    });
    expect(m.prune(CFG)).toEqual({ instances: [], realServers: [] });
    const back = JSON.parse(readFileSync(join(d, "maintenance.json"), "utf8"));
    expect(back).toEqual({ version: 1, instances: ["VI_1"], realServers: [ref] });
  });
});

describe("drain message", () => {
  test("the whole set, validated like every supervisor message", () => {
    const ok = parseMessage({
      type: "drain",
      realServers: [{ virtualServer: "192.0.2.10:80/TCP", realServer: "198.51.100.1:80" }],
    });
    expect(ok.ok).toBe(true);
    expect(parseMessage({ type: "drain", realServers: [] }).ok).toBe(true);
    for (const bad of [
      { type: "drain" },
      { type: "drain", realServers: [{ virtualServer: "", realServer: "x" }] },
      { type: "drain", realServers: [{ virtualServer: "v" }] },
      { type: "drain", realServers: "all" },
    ]) {
      const r = parseMessage(bad);
      expect(r.ok).toBe(false);
    }
    const r = parseMessage({ type: "drain", realServers: [{ virtualServer: "v" }] });
    expect(r.ok ? "" : r.error).toContain("realServers.0.realServer");
  });
});
