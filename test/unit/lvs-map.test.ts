// The config model's checkers mapped onto the checkers' specs: keepalived's inheritance (checker, then
// real server, then virtual server, then the per-type default) and the connect_ip/port defaults.
import { describe, expect, test } from "bun:test";
import { effectivePort, mapChecker, mapCheckers, parseStatusRange } from "../../agent/check/map.ts";
import { withDefaults } from "../../agent/check/types.ts";
import {
  type Checker,
  Checker as CheckerSchema,
  RealServer,
  VirtualServer,
} from "../../agent/config/model.ts";

const vs = (o: Record<string, unknown> = {}) =>
  VirtualServer.parse({
    address: "192.0.2.10",
    port: 80,
    protocol: "TCP",
    lbAlgo: "rr",
    lbKind: "NAT",
    ...o,
  });
const rs = (o: Record<string, unknown> = {}) => RealServer.parse({ address: "198.51.100.1", ...o });
const chk = (o: Record<string, unknown>): Checker => CheckerSchema.parse(o);

describe("connect options", () => {
  test("connect_ip/port default to the real server's address and the effective port", () => {
    const s = mapChecker(chk({ type: "TCP_CHECK" }), rs(), vs());
    expect(s).toMatchObject({ type: "TCP_CHECK", conn: { connectIp: "198.51.100.1", connectPort: 80 } });
    const s2 = mapChecker(chk({ type: "TCP_CHECK" }), rs({ port: 8080 }), vs());
    expect(s2.type !== "MISC_CHECK" && s2.conn.connectPort).toBe(8080);
  });
  test("explicit connect_ip/port/bindto win", () => {
    const s = mapChecker(
      chk({
        type: "TCP_CHECK",
        connectIp: "203.0.113.5",
        connectPort: 9000,
        bindto: "192.0.2.1",
        bindPort: 5000,
      }),
      rs(),
      vs(),
    );
    expect(s.type !== "MISC_CHECK" && s.conn).toEqual({
      connectIp: "203.0.113.5",
      connectPort: 9000,
      bindto: "192.0.2.1",
      bindPort: 5000,
      connectTimeoutMs: 5000,
    });
  });
  test("connect_timeout: checker, then real server, then virtual server (default 5 s)", () => {
    const t = (c: Checker, r = rs(), v = vs()) => {
      const s = mapChecker(c, r, v);
      return s.type === "MISC_CHECK" ? -1 : s.conn.connectTimeoutMs;
    };
    expect(t(chk({ type: "TCP_CHECK" }))).toBe(5000);
    expect(t(chk({ type: "TCP_CHECK" }), rs(), vs({ connectTimeout: 2 }))).toBe(2000);
    expect(t(chk({ type: "TCP_CHECK" }), rs({ connectTimeout: 3 }), vs({ connectTimeout: 2 }))).toBe(3000);
    expect(t(chk({ type: "TCP_CHECK", connectTimeout: 0.5 }), rs({ connectTimeout: 3 }))).toBe(500);
  });
  test("effectivePort: rs port, else vs port, else 0 (fwmark)", () => {
    expect(effectivePort({ port: 80 }, { port: 8080 })).toBe(8080);
    expect(effectivePort({ port: 80 }, {})).toBe(80);
    expect(effectivePort({}, {})).toBe(0);
  });
});

describe("timing inheritance", () => {
  test("delay_loop defaults to the virtual server's (60 s); retry/delay_before_retry/warmup per type", () => {
    const s = mapChecker(chk({ type: "TCP_CHECK" }), rs(), vs());
    expect(withDefaults(s)).toEqual({
      delayLoopMs: 60_000,
      retry: 1,
      delayBeforeRetryMs: 1000,
      warmupMs: 60_000,
      alpha: false,
    });
    const d = mapChecker(chk({ type: "DNS_CHECK" }), rs(), vs({ delayLoop: 3 }));
    expect(withDefaults(d)).toMatchObject({ retry: 3, delayBeforeRetryMs: 3000, delayLoopMs: 3000 });
  });
  test("checker over real server over virtual server", () => {
    const v = vs({ delayLoop: 10, retry: 5, delayBeforeRetry: 4, warmup: 2, alpha: true });
    const r = rs({ delayLoop: 6, retry: 3 });
    const s = mapChecker(chk({ type: "TCP_CHECK", retry: 2, alpha: false }), r, v);
    expect(withDefaults(s)).toEqual({
      delayLoopMs: 6000,
      retry: 2,
      delayBeforeRetryMs: 4000,
      warmupMs: 2000,
      alpha: false,
    });
    const s2 = mapChecker(chk({ type: "TCP_CHECK" }), rs(), v);
    expect(withDefaults(s2)).toMatchObject({ retry: 5, alpha: true, delayLoopMs: 10_000 });
  });
  test("fractional seconds become whole milliseconds", () => {
    const s = mapChecker(chk({ type: "TCP_CHECK", delayBeforeRetry: 0.25 }), rs(), vs({ delayLoop: 1.5 }));
    expect(s.timing).toMatchObject({ delayLoopMs: 1500, delayBeforeRetryMs: 250 });
  });
});

describe("checker types", () => {
  test("HTTP_GET: urls, status ranges, digest, virtualhost inheritance", () => {
    const c = chk({
      type: "HTTP_GET",
      url: [
        { path: "/", statusCode: ["200", "300-302"], digest: "D41D8CD98F00B204E9800998ECF8427E" },
        { path: "/h", virtualhost: "b.example" },
      ],
      httpProtocol: "1.1",
    });
    const s = mapChecker(c, rs(), vs({ virtualhost: "a.example" }));
    expect(s).toMatchObject({
      type: "HTTP_GET",
      virtualhost: "a.example",
      httpProtocol: "1.1",
      urls: [
        {
          path: "/",
          statusCode: [
            [200, 200],
            [300, 302],
          ],
          digest: "d41d8cd98f00b204e9800998ecf8427e",
        },
        { path: "/h", virtualhost: "b.example" },
      ],
    });
    const s2 = mapChecker(
      chk({ type: "HTTP_GET", url: [{ path: "/" }], virtualhost: "c.example" }),
      rs({ virtualhost: "r.example" }),
      vs(),
    );
    expect(s2.type === "HTTP_GET" && s2.virtualhost).toBe("c.example");
    const s3 = mapChecker(c, rs({ virtualhost: "r.example" }), vs({ virtualhost: "a.example" }));
    expect(s3.type === "HTTP_GET" && s3.virtualhost).toBe("r.example");
  });
  test("SSL_GET keeps enable_sni", () => {
    const s = mapChecker(chk({ type: "SSL_GET", url: [{ path: "/" }], enableSni: true }), rs(), vs());
    expect(s).toMatchObject({ type: "SSL_GET", enableSni: true });
  });
  test("DNS_CHECK: type and name ('.' is the root)", () => {
    const s = mapChecker(chk({ type: "DNS_CHECK", dnsType: "A", name: "." }), rs({ port: 53 }), vs());
    expect(s).toMatchObject({ type: "DNS_CHECK", queryType: "A", name: "" });
    const s2 = mapChecker(chk({ type: "DNS_CHECK", name: "example.org" }), rs(), vs());
    expect(s2).toMatchObject({ name: "example.org" });
  });
  test("UDP_CHECK: hex payload and reply data become bytes", () => {
    const s = mapChecker(
      chk({ type: "UDP_CHECK", payload: "0a0B", requireReply: true, replyData: "ff", minReplyLength: 1 }),
      rs(),
      vs(),
    );
    expect(s.type).toBe("UDP_CHECK");
    if (s.type !== "UDP_CHECK") return;
    expect([...(s.payload ?? [])]).toEqual([10, 11]);
    expect([...(s.replyData ?? [])]).toEqual([255]);
    expect(s.requireReply).toBe(true);
    expect(s.minReplyLength).toBe(1);
  });
  test("PING_CHECK has a target but no meaningful port", () => {
    const s = mapChecker(chk({ type: "PING_CHECK" }), rs(), vs());
    expect(s).toMatchObject({ type: "PING_CHECK", conn: { connectIp: "198.51.100.1" } });
  });
  test("MISC_CHECK: path, timeout in ms (0 = unset), dynamic", () => {
    const s = mapChecker(
      chk({ type: "MISC_CHECK", miscPath: "/bin/true x", miscTimeout: 3, miscDynamic: true }),
      rs(),
      vs(),
    );
    expect(s).toMatchObject({
      type: "MISC_CHECK",
      miscPath: "/bin/true x",
      miscTimeoutMs: 3000,
      miscDynamic: true,
    });
    const s2 = mapChecker(chk({ type: "MISC_CHECK", miscPath: "/bin/true", miscTimeout: 0 }), rs(), vs());
    expect(s2.type === "MISC_CHECK" && s2.miscTimeoutMs).toBeUndefined();
    expect(withDefaults(s2).retry).toBe(0);
  });
  test("mapCheckers maps every checker of a real server", () => {
    const r = rs({ checkers: [{ type: "TCP_CHECK" }, { type: "PING_CHECK" }] });
    expect(mapCheckers(r, vs()).map((s) => s.type)).toEqual(["TCP_CHECK", "PING_CHECK"]);
  });
  test("parseStatusRange", () => {
    expect(parseStatusRange("204")).toEqual([204, 204]);
    expect(parseStatusRange("200-299")).toEqual([200, 299]);
  });
});
