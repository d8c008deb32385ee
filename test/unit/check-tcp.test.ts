import { afterAll, describe, expect, test } from "bun:test";
import { tcpCheck, tcpProbe } from "../../agent/check/tcp.ts";
import type { CheckResult } from "../../agent/check/types.ts";
import { canNetns, isRoot, loopback, makeNetns, repoPath } from "./check-helpers.ts";

describe("TCP_CHECK on loopback", () => {
  let accepted = 0;
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        accepted++;
      },
      data() {},
    },
  });
  const listener6 = Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } });
  afterAll(() => {
    listener.stop(true);
    listener6.stop(true);
  });

  test("a listening port passes, and the server sees the connection", async () => {
    const before = accepted;
    const r = await tcpCheck({ type: "TCP_CHECK", conn: loopback(listener.port) });
    expect(r).toMatchObject({ ok: true, reason: "connected" });
    expect(r.latencyMs).toBeLessThan(1000);
    await Bun.sleep(20);
    expect(accepted).toBe(before + 1);
  });

  test("the callback path: 300 probes at once each report exactly once and leave no connection open", async () => {
    let open = 0;
    let closed = 0;
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open() {
          open++;
        },
        close() {
          closed++;
        },
        data() {},
      },
    });
    const calls = new Map<number, CheckResult[]>();
    for (let i = 0; i < 300; i++)
      tcpProbe({ type: "TCP_CHECK", conn: loopback(l.port) }, (r) => {
        calls.set(i, [...(calls.get(i) ?? []), r]);
      });
    const end = Date.now() + 5000;
    while ((calls.size < 300 || closed < open) && Date.now() < end) await Bun.sleep(10);
    await Bun.sleep(50);
    expect(calls.size).toBe(300);
    expect([...calls.values()].every((rs) => rs.length === 1 && rs[0]!.ok)).toBe(true);
    expect(open).toBe(300);
    expect(closed).toBe(300);
    l.stop(true);
  });

  test("IPv6 ::1", async () => {
    const r = await tcpCheck({ type: "TCP_CHECK", conn: loopback(listener6.port, 1000, "::1") });
    expect(r.ok).toBe(true);
  });

  test("bindto chooses the source address", async () => {
    let peer = "";
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          peer = s.remoteAddress;
        },
        data() {},
      },
    });
    try {
      const r = await tcpCheck({ type: "TCP_CHECK", conn: { ...loopback(l.port), bindto: "127.0.0.3" } });
      expect(r.ok).toBe(true);
      await Bun.sleep(20);
      expect(peer).toBe("127.0.0.3");
    } finally {
      l.stop(true);
    }
  });

  test("connection refused fails at once", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    const r = await tcpCheck({ type: "TCP_CHECK", conn: loopback(port, 2000) });
    expect(r).toMatchObject({ ok: false, reason: "ECONNREFUSED" });
    expect(r.latencyMs).toBeLessThan(500);
  });
});

describe("TCP_CHECK with bind_if / fwmark (the ffi connect)", () => {
  let accepted = 0;
  const l = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open() {
        accepted++;
      },
      data() {},
    },
  });
  afterAll(() => l.stop(true));

  test("bind_if lo reaches a loopback listener; the listener sees the connection", async () => {
    const before = accepted;
    const r = await tcpCheck({ type: "TCP_CHECK", conn: { ...loopback(l.port), bindIf: "lo" } });
    expect(r).toMatchObject({ ok: true, reason: "connected" });
    await Bun.sleep(20);
    expect(accepted).toBe(before + 1);
  });

  test("an unknown interface fails at once with ENODEV; a closed port with ECONNREFUSED", async () => {
    expect(
      await tcpCheck({ type: "TCP_CHECK", conn: { ...loopback(l.port), bindIf: "nosuchif0" } }),
    ).toMatchObject({ ok: false, reason: "ENODEV" });
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = probe.port;
    probe.stop(true);
    const r = await tcpCheck({ type: "TCP_CHECK", conn: { ...loopback(port), bindIf: "lo" } });
    expect(r).toMatchObject({ ok: false, reason: "ECONNREFUSED" });
  });

  test.skipIf(!isRoot)(
    "fwmark (root: SO_MARK needs CAP_NET_ADMIN) with bindto: connected from that source",
    async () => {
      let peer = "";
      const m = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          open(s) {
            peer = s.remoteAddress;
          },
          data() {},
        },
      });
      const r = await tcpCheck({
        type: "TCP_CHECK",
        conn: { ...loopback(m.port), mark: 7, bindto: "127.0.0.2" },
      });
      expect(r).toMatchObject({ ok: true, reason: "connected" });
      await Bun.sleep(20);
      expect(peer.replace(/^::ffff:/, "")).toBe("127.0.0.2");
      m.stop(true);
    },
  );
});

describe.skipIf(!canNetns())("TCP_CHECK in a namespace", () => {
  test("an address with no host times out after connect_timeout", async () => {
    const ns = makeNetns();
    try {
      const out = await ns.runTs(`
        import { tcpCheck } from ${JSON.stringify(repoPath("agent/check/tcp.ts"))};
        const r = await tcpCheck({ type: "TCP_CHECK", conn: { connectIp: "192.0.2.2", connectPort: 80, connectTimeoutMs: 300 } });
        console.log(JSON.stringify(r));
        process.exit(0);
      `);
      const r = JSON.parse(out) as { ok: boolean; reason: string; latencyMs: number };
      expect(r.ok).toBe(false);
      expect(r.reason).toBe("timeout");
      expect(r.latencyMs).toBeGreaterThanOrEqual(290);
      expect(r.latencyMs).toBeLessThan(1500);
    } finally {
      ns.delete();
    }
  });

  test("with fwmark (ffi connect) the timed-out connect is closed, as keepalived does: no SYN_SENT left", async () => {
    const ns = makeNetns();
    try {
      const out = await ns.runTs(`
        import { readFileSync } from "node:fs";
        import { tcpCheck } from ${JSON.stringify(repoPath("agent/check/tcp.ts"))};
        const conn = { connectIp: "192.0.2.2", connectPort: 80, connectTimeoutMs: 300, mark: 3 };
        const r = await tcpCheck({ type: "TCP_CHECK", conn });
        // /proc/net/tcp: field 4 is the state, 02 = SYN_SENT
        const synSent = readFileSync("/proc/net/tcp", "utf8").split("\\n").slice(1)
          .filter((l) => l.trim().split(/\\s+/)[3] === "02").length;
        console.log(JSON.stringify({ ...r, synSent }));
        process.exit(0);
      `);
      const r = JSON.parse(out) as { ok: boolean; reason: string; latencyMs: number; synSent: number };
      expect(r).toMatchObject({ ok: false, reason: "timeout", synSent: 0 });
      expect(r.latencyMs).toBeGreaterThanOrEqual(290);
      expect(r.latencyMs).toBeLessThan(1500);
    } finally {
      ns.delete();
    }
  });
});
