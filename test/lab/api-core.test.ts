// Pure parts of the API, without a kernel: the listener rules, the config store's atomic writes and
// the apply controller's ordering (validate, generation, persist, deliver, roll back). The proto <->
// model mapping, the event ring and the maintenance set are tested in test/unit/api-*.test.ts.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiConfigError, listenersFromFlags, parseHostPort } from "../../agent/api/auth.ts";
import { ConfigController, ReloadWaiter } from "../../agent/api/controller.ts";
import { stableJson } from "../../agent/config/diff.ts";
import { parseConfigText } from "../../agent/config/load.ts";
import { ConfigStore } from "../../agent/config/store.ts";
import { createLogger } from "../../agent/observe/log.ts";

const fixtures = join(import.meta.dir, "..", "fixtures", "conf");
const log = createLogger({ level: "silent" });
const tmp: string[] = [];
afterEach(() => {
  for (const d of tmp.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vigil-apicore-"));
  tmp.push(d);
  return d;
}

/** every interface and user exists: the fixtures come from other machines */
const anyEnv = {
  interfaceExists: () => true,
  isLoopback: (n: string) => n === "lo",
  userExists: () => true,
  commandExists: () => true,
};

describe("listener rules", () => {
  const base = { stateDir: "/var/lib/vigil" };
  const refused = (f: Parameters<typeof listenersFromFlags>[0]) => {
    expect(() => listenersFromFlags(f)).toThrow(ApiConfigError);
  };

  test("default: a unix socket in the state directory", () => {
    expect(listenersFromFlags(base)).toEqual([{ kind: "unix", path: "/var/lib/vigil/api.sock" }]);
    expect(listenersFromFlags({ ...base, api: "unix:/run/v.sock" })).toEqual([
      { kind: "unix", path: "/run/v.sock" },
    ]);
  });

  test("TCP without TLS is refused unless loopback and explicit", () => {
    refused({ ...base, apiListen: "0.0.0.0:9000" });
    refused({ ...base, apiListen: "192.0.2.1:9000", insecureLoopback: true });
    refused({ ...base, apiListen: "127.0.0.1:9000", tlsCert: "/x" });
    refused({ ...base, insecureLoopback: true });
    refused({ ...base, api: "tcp:1.2.3.4:5" });
    const ok = listenersFromFlags({ ...base, apiListen: "127.0.0.1:9000", insecureLoopback: true });
    expect(ok[1]).toEqual({ kind: "tcp", host: "127.0.0.1", port: 9000, tls: null });
    expect(listenersFromFlags({ ...base, apiListen: "[::1]:9000", insecureLoopback: true })[1]).toMatchObject(
      {
        host: "::1",
      },
    );
  });

  test("TLS needs all three files, and they must exist", () => {
    refused({
      ...base,
      apiListen: "192.0.2.1:9000",
      tlsCert: "/nope",
      tlsKey: "/nope",
      tlsClientCa: "/nope",
    });
    const d = tempDir();
    for (const f of ["c", "k", "ca"]) writeFileSync(join(d, f), "x");
    const l = listenersFromFlags({
      ...base,
      apiListen: "192.0.2.1:9000",
      tlsCert: join(d, "c"),
      tlsKey: join(d, "k"),
      tlsClientCa: join(d, "ca"),
    });
    expect(l[1]).toMatchObject({ kind: "tcp", port: 9000, tls: { cert: join(d, "c") } });
  });

  test("host:port parsing", () => {
    expect(parseHostPort("a:1")).toEqual({ host: "a", port: 1 });
    expect(parseHostPort("[2001:db8::1]:443")).toEqual({ host: "2001:db8::1", port: 443 });
    expect(parseHostPort("2001:db8::1:443")).toBeNull();
    expect(parseHostPort("a:0")).toBeNull();
    expect(parseHostPort("a:70000")).toBeNull();
  });
});

const conf = (vip: string) =>
  `vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n  ${vip}\n }\n}\n`;
const load = (text: string) => () => parseConfigText(text, "keepalived", "t.conf", anyEnv);

describe("config store", () => {
  test("save/load round trip, file mode 0600, no temp file left", () => {
    const d = tempDir();
    const s = new ConfigStore(d);
    expect(s.load().kind).toBe("absent");
    const r = load(conf("192.0.2.100"))();
    if (!r.ok) throw new Error("fixture");
    s.save(7, r.config, "api");
    const back = s.load();
    expect(back.kind).toBe("ok");
    if (back.kind === "ok") {
      expect(back.stored.generation).toBe(7);
      expect(stableJson(back.stored.config)).toBe(stableJson(r.config));
    }
    expect(statSync(s.path).mode & 0o777).toBe(0o600);
    expect(readdirSync(d)).toEqual(["config.json"]);
  });

  test("a damaged file is reported, not thrown", () => {
    const d = tempDir();
    writeFileSync(join(d, "config.json"), '{"version":1,"generation":');
    expect(new ConfigStore(d).load().kind).toBe("corrupt");
  });
});

describe("apply controller", () => {
  function setup(refuse: (gen: number) => string | null = () => null) {
    const d = tempDir();
    const store = new ConfigStore(d);
    const first = load(conf("192.0.2.100"))();
    if (!first.ok) throw new Error("fixture");
    const delivered: number[] = [];
    const c = new ConfigController({
      initial: { generation: 1, config: first.config, source: "file" },
      store,
      log,
      deliver: async (g) => {
        delivered.push(g);
        return refuse(g);
      },
    });
    return { c, store, delivered };
  }

  test("invalid and stale change nothing; valid persists then delivers", async () => {
    const { c, store, delivered } = setup();
    const bad = await c.apply({ load: load("vrrp_instance X {\n}\n"), source: "api" });
    expect(bad.ok).toBe(false);
    const stale = await c.apply({ load: load(conf("192.0.2.101")), expectedGeneration: 5, source: "api" });
    expect(stale).toMatchObject({ ok: false, kind: "stale", expected: 5, running: 1 });
    const dry = await c.apply({ load: load(conf("192.0.2.101")), dryRun: true, source: "api" });
    expect(dry).toMatchObject({ ok: true, generation: 2, dryRun: true });
    expect(store.load().kind).toBe("absent");
    expect(delivered).toEqual([]);
    expect(c.current.generation).toBe(1);
    const ok = await c.apply({ load: load(conf("192.0.2.101")), expectedGeneration: 1, source: "api" });
    expect(ok).toMatchObject({ ok: true, generation: 2 });
    if (ok.ok) expect(ok.diff.changed).toEqual(["VI_1"]);
    expect(delivered).toEqual([2]);
    const s = store.load();
    expect(s.kind === "ok" && s.stored.generation).toBe(2);
  });

  test("a refusal by a child rolls back to the previous generation", async () => {
    const { c, store, delivered } = setup((g) => (g === 2 ? "vrrp child: boom" : null));
    const r = await c.apply({ load: load(conf("192.0.2.101")), source: "api" });
    expect(r).toMatchObject({ ok: false, kind: "failed", rolledBackTo: 1 });
    expect(delivered).toEqual([2, 1]);
    expect(c.current.generation).toBe(1);
    const s = store.load();
    expect(s.kind === "ok" && s.stored.generation).toBe(1);
    expect(c.current.config.vrrpInstances[0]!.virtualIpaddress[0]!.address).toBe("192.0.2.100");
  });

  test("concurrent applies are serialized: one generation check per apply", async () => {
    const { c } = setup();
    const rs = await Promise.all(
      [0, 1, 2].map(() => c.apply({ load: load(conf("192.0.2.102")), expectedGeneration: 1, source: "api" })),
    );
    expect(rs.filter((r) => r.ok).length).toBe(1);
    expect(rs.filter((r) => !r.ok && r.kind === "stale").length).toBe(2);
  });

  test("reload waiter: refusal, success, timeout, abandon", async () => {
    const w = new ReloadWaiter();
    const a = w.wait("vrrp", 3, 1000);
    w.settle("vrrp", 3, false, "bad");
    expect(await a).toBe("vrrp child: bad");
    const b = w.wait("vrrp", 4, 1000);
    w.settle("vrrp", 4, true, undefined);
    expect(await b).toBeNull();
    expect(await w.wait("check", 5, 10)).toBeNull();
    const d = w.wait("vrrp", 6, 1000);
    w.abandon("vrrp");
    expect(await d).toBeNull();
  });
});

test("fixtures directory is readable", () => {
  expect(readFileSync(join(fixtures, "doc-vrrp.conf"), "utf8").length).toBeGreaterThan(0);
});
