import { afterAll, describe, expect, test } from "bun:test";
import type { UdpCheckSpec } from "../../agent/check/types.ts";
import { udpCheck, udpReplyMatches } from "../../agent/check/udp.ts";
import { loopback } from "./check-helpers.ts";

/** A UDP server that answers with `reply(payload)` or stays silent when it returns null. */
async function server(hostname: string, reply: (p: Uint8Array) => Uint8Array | null) {
  const got: Uint8Array[] = [];
  const s = await Bun.udpSocket({
    hostname,
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(sock, buf, port, addr) {
        got.push(buf);
        const r = reply(buf);
        if (r) sock.send(r, port, addr);
      },
    },
  });
  return { port: s.port, got, close: () => s.close() };
}

async function closedPort(hostname: string): Promise<number> {
  const s = await Bun.udpSocket({ hostname, port: 0 });
  const p = s.port;
  s.close();
  return p;
}

describe("UDP_CHECK", async () => {
  const echo = await server("127.0.0.1", (p) => p);
  const upper = await server("127.0.0.1", () => Uint8Array.from([0x50, 0x4f, 0x4e, 0x47, 0x21])); // "PONG!"
  const silent = await server("127.0.0.1", () => null);
  const echo6 = await server("::1", (p) => p);
  afterAll(() => {
    for (const s of [echo, upper, silent, echo6]) s.close();
  });
  const udp = (port: number, extra: Partial<UdpCheckSpec> = {}, timeoutMs = 300): UdpCheckSpec => ({
    type: "UDP_CHECK",
    conn: loopback(port, timeoutMs),
    ...extra,
  });

  test("the payload is sent and a reply passes", async () => {
    const payload = Uint8Array.of(1, 2, 3, 4);
    const r = await udpCheck(udp(echo.port, { payload, requireReply: true }));
    expect(r).toMatchObject({ ok: true, reason: "reply" });
    expect(echo.got.at(-1)).toEqual(payload);
  });

  test("no reply: success without require_reply, failure with it", async () => {
    const a = await udpCheck(udp(silent.port));
    expect(a).toMatchObject({ ok: true, reason: "no error" });
    expect(a.latencyMs).toBeGreaterThanOrEqual(290);
    expect(await udpCheck(udp(silent.port, { requireReply: true }))).toMatchObject({
      ok: false,
      reason: "no reply",
    });
  });

  test("ICMP port unreachable fails, with or without require_reply", async () => {
    const port = await closedPort("127.0.0.1");
    const a = await udpCheck(udp(port, {}, 2000));
    expect(a).toMatchObject({ ok: false, reason: "port unreachable" });
    expect(a.latencyMs).toBeLessThan(1000);
    expect((await udpCheck(udp(port, { requireReply: true }, 2000))).reason).toBe("port unreachable");
  });

  test("reply data, mask and length limits", async () => {
    const pong = Uint8Array.from([0x50, 0x4f, 0x4e, 0x47]);
    expect((await udpCheck(udp(upper.port, { requireReply: true, replyData: pong }))).ok).toBe(true);
    const ping = Uint8Array.from([0x50, 0x49, 0x4e, 0x47]);
    expect(await udpCheck(udp(upper.port, { requireReply: true, replyData: ping }))).toMatchObject({
      ok: false,
      reason: "reply mismatch",
    });
    // mask bits set = don't care: the second byte is ignored
    const mask = Uint8Array.of(0, 0xff, 0, 0);
    expect(
      (await udpCheck(udp(upper.port, { requireReply: true, replyData: ping, replyMask: mask }))).ok,
    ).toBe(true);
    expect((await udpCheck(udp(upper.port, { requireReply: true, maxReplyLength: 4 }))).ok).toBe(false);
    expect((await udpCheck(udp(upper.port, { requireReply: true, minReplyLength: 6 }))).ok).toBe(false);
  });

  test("udpReplyMatches compares only the shorter of reply and reply_data (keepalived)", () => {
    const spec: UdpCheckSpec = { type: "UDP_CHECK", conn: loopback(1), replyData: Uint8Array.of(1, 2, 3) };
    expect(udpReplyMatches(Uint8Array.of(1, 2), spec)).toBe(true);
    expect(udpReplyMatches(Uint8Array.of(1, 9), spec)).toBe(false);
    expect(udpReplyMatches(new Uint8Array(256), { ...spec, replyData: undefined })).toBe(false);
  });

  test("IPv6", async () => {
    expect(
      (await udpCheck({ type: "UDP_CHECK", conn: loopback(echo6.port, 300, "::1"), requireReply: true })).ok,
    ).toBe(true);
    const port = await closedPort("::1");
    expect((await udpCheck({ type: "UDP_CHECK", conn: loopback(port, 2000, "::1") })).ok).toBe(false);
  });
});
