import { afterAll, describe, expect, test } from "bun:test";
import { dnsCheck } from "../../agent/check/dns.ts";
import type { DnsCheckSpec } from "../../agent/check/types.ts";
import {
  DNS_CLASS_IN,
  type DnsQuestion,
  decodeDns,
  encodeDns,
  RCODE_NXDOMAIN,
} from "../../agent/wire/dns.ts";
import { loopback } from "./check-helpers.ts";

type Mode = "ok" | "nxdomain" | "wrong-id" | "wrong-then-ok" | "query-echo" | "silent";

/** A DNS responder on loopback whose behaviour the test picks per run. */
async function responder(hostname: string) {
  let mode: Mode = "ok";
  const seen: DnsQuestion[] = [];
  const sock = await Bun.udpSocket({
    hostname,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(s, buf, port, addr) {
        const q = decodeDns(buf);
        if (!q.ok) return;
        seen.push(...q.value.questions);
        const answer = (id: number, rcode: number, qr = true) =>
          encodeDns({
            id,
            flags: { qr, opcode: 0, aa: true, tc: false, rd: true, ra: false, z: 0, rcode },
            questions: q.value.questions,
            answers:
              rcode === 0
                ? [
                    {
                      name: q.value.questions[0]?.name ?? "",
                      type: 1,
                      class: DNS_CLASS_IN,
                      ttl: 5,
                      data: Uint8Array.of(192, 0, 2, 7),
                    },
                  ]
                : [],
            authorities: [],
            additionals: [],
          })!;
        const id = q.value.id;
        switch (mode) {
          case "ok":
            s.send(answer(id, 0), port, addr);
            break;
          case "nxdomain":
            s.send(answer(id, RCODE_NXDOMAIN), port, addr);
            break;
          case "wrong-id":
            s.send(answer((id + 1) & 0xffff, 0), port, addr);
            break;
          case "wrong-then-ok":
            s.send(answer((id + 1) & 0xffff, 0), port, addr);
            s.send(answer(id, 0, false), port, addr);
            setTimeout(() => s.send(answer(id, 0), port, addr), 50);
            break;
          case "query-echo":
            // the query itself (QR clear) must not count as an answer
            s.send(buf, port, addr);
            break;
          case "silent":
            break;
        }
      },
    },
  });
  return {
    port: sock.port,
    seen,
    set(m: Mode) {
      mode = m;
    },
    close: () => sock.close(),
  };
}

describe("DNS_CHECK against a UDP responder", async () => {
  const r4 = await responder("127.0.0.1");
  const r6 = await responder("::1");
  afterAll(() => {
    r4.close();
    r6.close();
  });
  const spec = (extra: Partial<DnsCheckSpec> = {}, timeoutMs = 500): DnsCheckSpec => ({
    type: "DNS_CHECK",
    conn: loopback(r4.port, timeoutMs),
    ...extra,
  });

  test("NOERROR reply with the query's id passes; default query is SOA for the root", async () => {
    r4.set("ok");
    r4.seen.length = 0;
    expect(await dnsCheck(spec())).toMatchObject({ ok: true, reason: "NOERROR" });
    expect(r4.seen).toEqual([{ name: "", type: 6, class: DNS_CLASS_IN }]);
  });

  test("type and name are sent as configured", async () => {
    r4.set("ok");
    r4.seen.length = 0;
    expect((await dnsCheck(spec({ queryType: "AAAA", name: "www.example.com" }))).ok).toBe(true);
    expect(r4.seen).toEqual([{ name: "www.example.com", type: 28, class: DNS_CLASS_IN }]);
  });

  test("NXDOMAIN fails at once", async () => {
    r4.set("nxdomain");
    const r = await dnsCheck(spec({ name: "nope.example" }));
    expect(r).toMatchObject({ ok: false, reason: "rcode NXDOMAIN" });
    expect(r.latencyMs).toBeLessThan(400);
  });

  test("a reply with the wrong id is ignored: timeout", async () => {
    r4.set("wrong-id");
    const r = await dnsCheck(spec({}, 300));
    expect(r).toMatchObject({ ok: false, reason: "timeout" });
    expect(r.latencyMs).toBeGreaterThanOrEqual(290);
  });

  test("wrong id and a non-response are skipped, the right reply later still passes", async () => {
    r4.set("wrong-then-ok");
    const r = await dnsCheck(spec({}, 1000));
    expect(r.ok).toBe(true);
    expect(r.latencyMs).toBeGreaterThanOrEqual(45);
  });

  test("the query echoed back (QR clear) is not an answer", async () => {
    r4.set("query-echo");
    expect(await dnsCheck(spec({}, 200))).toMatchObject({ ok: false, reason: "timeout" });
  });

  test("no server: port unreachable fails fast", async () => {
    const s = await Bun.udpSocket({ hostname: "127.0.0.1", port: 0 });
    const port = s.port;
    s.close();
    const r = await dnsCheck({ type: "DNS_CHECK", conn: loopback(port, 1000) });
    expect(r.ok).toBe(false);
    expect(r.latencyMs).toBeLessThan(500);
  });

  test("IPv6", async () => {
    r6.set("ok");
    expect((await dnsCheck({ type: "DNS_CHECK", conn: loopback(r6.port, 500, "::1") })).ok).toBe(true);
  });

  test("unknown type is a failure without traffic", async () => {
    expect(await dnsCheck(spec({ queryType: "BOGUS" }))).toMatchObject({ ok: false });
  });
});
