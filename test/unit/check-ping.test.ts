import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { closePingSockets, pingCheck } from "../../agent/check/ping.ts";
import { canNetns, isRoot, loopback, makeNetns, repoPath } from "./check-helpers.ts";

// a ping socket needs the group in net.ipv4.ping_group_range, a raw socket needs CAP_NET_RAW
const canPing =
  isRoot ||
  (() => {
    try {
      const [lo = 1, hi = 0] = readFileSync("/proc/sys/net/ipv4/ping_group_range", "utf8")
        .trim()
        .split(/\s+/)
        .map(Number);
      const gid = process.getgid?.() ?? -1;
      return gid >= lo && gid <= hi;
    } catch {
      return false;
    }
  })();

describe.skipIf(!canPing)("PING_CHECK on loopback", () => {
  afterAll(() => closePingSockets());

  test("127.0.0.1 answers", async () => {
    const r = await pingCheck({ type: "PING_CHECK", conn: loopback(0, 1000) });
    expect(r).toMatchObject({ ok: true, reason: "echo reply" });
    expect(r.latencyMs).toBeLessThan(500);
  });

  test("::1 answers", async () => {
    expect((await pingCheck({ type: "PING_CHECK", conn: loopback(0, 1000, "::1") })).ok).toBe(true);
  });

  test("many concurrent echoes share one socket and are told apart", async () => {
    const targets = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"];
    const rs = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        pingCheck({ type: "PING_CHECK", conn: loopback(0, 2000, targets[i % 4]) }),
      ),
    );
    expect(rs.filter((r) => r.ok).length).toBe(200);
  });

  test("not an address", async () => {
    expect((await pingCheck({ type: "PING_CHECK", conn: loopback(0, 100, "localhost") })).ok).toBe(false);
  });
});

describe.skipIf(!canNetns())("PING_CHECK in a namespace", () => {
  test("ping sockets (SOCK_DGRAM) when ping_group_range allows them, as keepalived uses", async () => {
    const ns = makeNetns();
    try {
      // ping_group_range is per network namespace: widening it here leaves the host alone
      const r = Bun.spawnSync([
        "ip",
        "netns",
        "exec",
        ns.name,
        "sysctl",
        "-qw",
        "net.ipv4.ping_group_range=0 2147483647",
      ]);
      expect(r.exitCode).toBe(0);
      const out = await ns.runTs(`
        import { pingCheck, pingSocketKind } from ${JSON.stringify(repoPath("agent/check/ping.ts"))};
        const conn = (ip: string, ms = 1000) => ({ connectIp: ip, connectPort: 0, connectTimeoutMs: ms });
        const v4 = await pingCheck({ type: "PING_CHECK", conn: conn("192.0.2.1") });
        const v6 = await pingCheck({ type: "PING_CHECK", conn: conn("::1") });
        const none = await pingCheck({ type: "PING_CHECK", conn: conn("192.0.2.2", 300) });
        console.log(JSON.stringify({ v4, v6, none, k4: pingSocketKind(4), k6: pingSocketKind(6) }));
        process.exit(0);
      `);
      const o = JSON.parse(out) as Record<string, { ok: boolean } | string>;
      expect(o.k4).toBe("dgram");
      expect(o.k6).toBe("dgram");
      expect(o.v4).toMatchObject({ ok: true });
      expect(o.v6).toMatchObject({ ok: true });
      expect(o.none).toMatchObject({ ok: false, reason: "timeout" });
    } finally {
      ns.delete();
    }
  });

  test("an address with no host times out; the namespace's own address answers", async () => {
    const ns = makeNetns();
    try {
      const out = await ns.runTs(`
        import { pingCheck } from ${JSON.stringify(repoPath("agent/check/ping.ts"))};
        const conn = (ip: string) => ({ connectIp: ip, connectPort: 0, connectTimeoutMs: 400 });
        const [none, self] = await Promise.all([
          pingCheck({ type: "PING_CHECK", conn: conn("192.0.2.2") }),
          pingCheck({ type: "PING_CHECK", conn: conn("192.0.2.1") }),
        ]);
        const unroutable = await pingCheck({ type: "PING_CHECK", conn: conn("198.51.100.1") });
        console.log(JSON.stringify({ none, self, unroutable }));
        process.exit(0);
      `);
      const r = JSON.parse(out) as Record<string, { ok: boolean; reason: string; latencyMs: number }>;
      expect(r.self?.ok).toBe(true);
      expect(r.none).toMatchObject({ ok: false, reason: "timeout" });
      expect(r.none!.latencyMs).toBeGreaterThanOrEqual(390);
      // no route at all: sendto fails at once
      expect(r.unroutable).toMatchObject({ ok: false, reason: "ENETUNREACH" });
    } finally {
      ns.delete();
    }
  });
});
