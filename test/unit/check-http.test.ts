import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { buildRequest, httpCheck, parseStatusCodes, statusAccepted } from "../../agent/check/http.ts";
import type { HttpCheckSpec } from "../../agent/check/types.ts";
import { loopback, selfSignedCert } from "./check-helpers.ts";

const BODY = "<html>vigil test page</html>\n";
const BODY_MD5 = createHash("md5").update(BODY).digest("hex");
const BIG = "x".repeat(300_000);
const BIG_MD5 = createHash("md5").update(BIG).digest("hex");

function routes(req: Request): Response | Promise<Response> {
  const u = new URL(req.url);
  switch (u.pathname) {
    case "/ok":
      return new Response(BODY);
    case "/big":
      return new Response(BIG);
    case "/host":
      return new Response(req.headers.get("host") ?? "");
    case "/503":
      return new Response("down", { status: 503 });
    case "/302":
      return new Response(null, { status: 302, headers: { location: "/ok" } });
    case "/hang":
      // accepted, never answered
      return new Promise<Response>(() => {});
    default:
      return new Response("nope", { status: 404 });
  }
}

describe("HTTP_GET / SSL_GET pure parts", () => {
  test("request text is keepalived's, per http_protocol", () => {
    const base: HttpCheckSpec = { type: "HTTP_GET", conn: loopback(8080), urls: [] };
    expect(buildRequest(base, { path: "/a" })).toBe(
      "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:8080\r\n\r\n",
    );
    expect(buildRequest({ ...base, httpProtocol: "1.0C" }, { path: "/a" })).toBe(
      "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 127.0.0.1:8080\r\n\r\n",
    );
    expect(
      buildRequest({ ...base, httpProtocol: "1.1", virtualhost: "www.example.com" }, { path: "/" }),
    ).toBe(
      "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n",
    );
    // the url's virtualhost wins over the checker's; IPv6 literals are bracketed (RFC 2732)
    expect(
      buildRequest({ ...base, virtualhost: "a.example" }, { path: "/", virtualhost: "b.example" }),
    ).toContain("Host: b.example\r\n");
    expect(buildRequest({ ...base, conn: loopback(80, 1000, "2001:db8::1") }, { path: "/" })).toContain(
      "Host: [2001:db8::1]:80\r\n",
    );
  });

  test("status_code ranges and the 200-299 default", () => {
    expect(parseStatusCodes(["200", "301-302", "404"])).toEqual([
      [200, 200],
      [301, 302],
      [404, 404],
    ]);
    expect(parseStatusCodes(["99"])).toBeNull();
    expect(parseStatusCodes(["300-200"])).toBeNull();
    expect(parseStatusCodes(["2xx"])).toBeNull();
    expect(statusAccepted(200, undefined)).toBe(true);
    expect(statusAccepted(299, [])).toBe(true);
    expect(statusAccepted(300, undefined)).toBe(false);
    expect(statusAccepted(302, [[301, 302]])).toBe(true);
    expect(statusAccepted(200, [[301, 302]])).toBe(false);
    expect(statusAccepted(600, [[100, 600]])).toBe(false);
  });
});

describe("HTTP_GET against Bun.serve", () => {
  const srv = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: routes });
  const http = (urls: HttpCheckSpec["urls"], extra: Partial<HttpCheckSpec> = {}): HttpCheckSpec => ({
    type: "HTTP_GET",
    conn: loopback(srv.port!, 1000),
    urls,
    ...extra,
  });
  afterAll(() => srv.stop(true));

  test("200 passes", async () => {
    expect(await httpCheck(http([{ path: "/ok" }]))).toMatchObject({ ok: true });
  });

  test("digest of the body must match", async () => {
    expect((await httpCheck(http([{ path: "/ok", digest: BODY_MD5 }]))).ok).toBe(true);
    expect((await httpCheck(http([{ path: "/ok", digest: BODY_MD5.toUpperCase() }]))).ok).toBe(true);
    const bad = await httpCheck(http([{ path: "/ok", digest: "0".repeat(32) }]));
    expect(bad).toMatchObject({ ok: false, reason: "/ok: digest mismatch" });
  });

  test("digest over a body spanning many reads, for every http_protocol", async () => {
    for (const httpProtocol of ["1.0", "1.0C", "1.1"] as const) {
      const r = await httpCheck(http([{ path: "/big", digest: BIG_MD5 }], { httpProtocol }));
      expect(r.reason).toBe("ok");
    }
  });

  test("wrong status fails; status_code ranges accept it", async () => {
    expect(await httpCheck(http([{ path: "/503" }]))).toMatchObject({
      ok: false,
      reason: "/503: status 503",
    });
    expect(await httpCheck(http([{ path: "/302" }]))).toMatchObject({
      ok: false,
      reason: "/302: status 302",
    });
    expect((await httpCheck(http([{ path: "/302", statusCode: [[300, 399]] }]))).ok).toBe(true);
    expect((await httpCheck(http([{ path: "/503", statusCode: [[500, 503]] }]))).ok).toBe(true);
  });

  test("every url must pass", async () => {
    expect((await httpCheck(http([{ path: "/ok" }, { path: "/ok", digest: BODY_MD5 }]))).ok).toBe(true);
    const r = await httpCheck(http([{ path: "/ok" }, { path: "/missing" }]));
    expect(r).toMatchObject({ ok: false, reason: "/missing: status 404" });
  });

  test("virtualhost is sent as Host", async () => {
    const md5 = (s: string) => createHash("md5").update(s).digest("hex");
    expect(
      (
        await httpCheck(
          http([{ path: "/host", digest: md5("www.example.com") }], { virtualhost: "www.example.com" }),
        )
      ).ok,
    ).toBe(true);
    expect((await httpCheck(http([{ path: "/host", digest: md5(`127.0.0.1:${srv.port}`) }]))).ok).toBe(true);
  });

  test("a server that accepts but never answers times out after connect_timeout", async () => {
    const r = await httpCheck(http([{ path: "/hang" }], { conn: loopback(srv.port!, 300) }));
    expect(r).toMatchObject({ ok: false, reason: "/hang: timeout" });
    expect(r.latencyMs).toBeGreaterThanOrEqual(290);
    expect(r.latencyMs).toBeLessThan(1000);
  });

  test("connection refused", async () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    const r = await httpCheck(http([{ path: "/" }], { conn: loopback(port) }));
    expect(r).toMatchObject({ ok: false, reason: "/: ECONNREFUSED" });
  });
});

describe("HTTP_GET against a raw TCP server", () => {
  test("exact bytes on the wire, and a response without Content-Length read to EOF", async () => {
    let seen = "";
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, d) {
          seen += d.toString();
          if (seen.endsWith("\r\n\r\n")) {
            s.write(`HTTP/1.0 200 OK\r\nServer: raw\r\n\r\n${BODY}`);
            s.end();
          }
        },
      },
    });
    try {
      const r = await httpCheck({
        type: "HTTP_GET",
        conn: loopback(l.port),
        urls: [{ path: "/status?x=1", digest: BODY_MD5 }],
        httpProtocol: "1.1",
        virtualhost: "vigil.example",
      });
      expect(r.reason).toBe("ok");
      expect(seen).toBe(
        "GET /status?x=1 HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: vigil.example\r\n\r\n",
      );
    } finally {
      l.stop(true);
    }
  });

  test("garbage instead of a status line fails", async () => {
    const l = Bun.listen({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s) {
          s.write("SSH-2.0-OpenSSH\r\n\r\n");
          s.end();
        },
      },
    });
    try {
      const r = await httpCheck({ type: "HTTP_GET", conn: loopback(l.port), urls: [{ path: "/" }] });
      expect(r).toMatchObject({ ok: false, reason: "/: bad response" });
    } finally {
      l.stop(true);
    }
  });
});

describe("SSL_GET against Bun.serve with a self-signed certificate", () => {
  const tls = selfSignedCert();
  let hostSeen: string | null = null;
  const srv = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls,
    fetch(req) {
      hostSeen = req.headers.get("host");
      return routes(req);
    },
  });
  afterAll(() => srv.stop(true));
  const ssl = (urls: HttpCheckSpec["urls"], extra: Partial<HttpCheckSpec> = {}): HttpCheckSpec => ({
    type: "SSL_GET",
    conn: loopback(srv.port!, 2000),
    urls,
    ...extra,
  });

  test("passes without verifying the certificate, digest checked", async () => {
    expect((await httpCheck(ssl([{ path: "/ok", digest: BODY_MD5 }]))).reason).toBe("ok");
    expect(hostSeen).toBe(`127.0.0.1:${srv.port}`);
  });

  test("enable_sni with a virtualhost", async () => {
    const r = await httpCheck(ssl([{ path: "/ok" }], { enableSni: true, virtualhost: "localhost" }));
    expect(r.ok).toBe(true);
  });

  test("wrong status and digest mismatch over TLS", async () => {
    expect((await httpCheck(ssl([{ path: "/503" }]))).reason).toBe("/503: status 503");
    expect((await httpCheck(ssl([{ path: "/ok", digest: BIG_MD5 }]))).reason).toBe("/ok: digest mismatch");
  });

  test("SSL_GET to a plain HTTP server fails", async () => {
    const plain = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: routes });
    try {
      const r = await httpCheck({
        type: "SSL_GET",
        conn: loopback(plain.port!, 1000),
        urls: [{ path: "/ok" }],
      });
      expect(r.ok).toBe(false);
    } finally {
      plain.stop(true);
    }
  });

  test("with bindto (node:tls path)", async () => {
    const r = await httpCheck(
      ssl([{ path: "/ok", digest: BODY_MD5 }], {
        conn: { ...loopback(srv.port!, 2000), bindto: "127.0.0.1" },
      }),
    );
    expect(r.reason).toBe("ok");
  });
});
