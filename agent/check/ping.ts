// PING_CHECK (keepalived check_ping.c): one ICMP/ICMPv6 echo request to connect_ip; an echo reply with
// our sequence number (and, on a raw socket, our id) within connect_timeout passes.
//
// All ping checks of a family share one socket and one receive loop, so thousands of checkers cost one
// fd. The socket is non-blocking and drained by a 1 ms timer that runs only while echoes are
// outstanding: no thread and no poll() on the event loop, at the price of ~1 ms latency resolution.
import { type IcmpSocket, openIcmpSocket } from "../../ffi/icmp.ts";
import { decodeIcmp, encodeEcho, stripIpv4Header } from "../wire/icmp.ts";
import { canonicalIp, familyOf } from "../wire/ip.ts";
import { type CheckResult, nowMs, type PingCheckSpec } from "./types.ts";

/** keepalived sends 56 bytes of payload (ICMP_BUFSIZE) after the 8-byte header. */
const PAYLOAD = new Uint8Array(56).map((_, i) => i);

interface Pending {
  dst: string;
  done(ok: boolean, reason: string): void;
}

class Pinger {
  private sock: IcmpSocket | null = null;
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private poller: ReturnType<typeof setInterval> | null = null;
  /** raw sockets see every echo of the host: our id tells ours apart (ping sockets get one from the kernel) */
  private readonly id = (process.pid ^ (Math.random() * 0x10000)) & 0xffff;

  constructor(private readonly family: 4 | 6) {}

  ping(dst: string, timeoutMs: number): Promise<{ ok: boolean; reason: string }> {
    return new Promise((resolve) => {
      let sock: IcmpSocket;
      try {
        this.sock ??= openIcmpSocket(this.family);
        sock = this.sock;
      } catch (e) {
        resolve({ ok: false, reason: e instanceof Error ? e.message : String(e) });
        return;
      }
      // the next sequence number not in flight (65536 concurrent echoes per family at most)
      let seq = this.seq;
      for (let i = 0; i < 0x10000 && this.pending.has(seq); i++) seq = (seq + 1) & 0xffff;
      if (this.pending.has(seq)) {
        resolve({ ok: false, reason: "too many echoes in flight" });
        return;
      }
      this.seq = (seq + 1) & 0xffff;
      const timer = setTimeout(() => finish(false, "timeout"), timeoutMs);
      const finish = (ok: boolean, reason: string): void => {
        if (this.pending.get(seq) !== entry) return;
        this.pending.delete(seq);
        clearTimeout(timer);
        this.idle();
        resolve({ ok, reason });
      };
      const entry: Pending = { dst, done: finish };
      this.pending.set(seq, entry);
      try {
        sock.send(encodeEcho({ family: this.family, reply: false, id: this.id, seq, payload: PAYLOAD }), dst);
      } catch (e) {
        finish(false, e instanceof Error && "code" in e ? String(e.code) : String(e));
        return;
      }
      this.poller ??= setInterval(() => this.drain(), 1);
    });
  }

  private drain(): void {
    const sock = this.sock;
    if (!sock) return;
    let errors = 0;
    for (;;) {
      let rx: ReturnType<IcmpSocket["recv"]>;
      try {
        rx = sock.recv();
      } catch {
        // a queued error (e.g. an ICMP error on a ping socket) is consumed by the failing recv; go on,
        // but never spin on a socket that keeps failing
        if (++errors > 64) break;
        continue;
      }
      if (!rx) break;
      let msg = rx.data;
      if (sock.kind === "raw" && this.family === 4) {
        const inner = stripIpv4Header(msg);
        if (!inner) continue;
        msg = inner;
      }
      const d = decodeIcmp(msg, { family: this.family, verifyChecksum: sock.kind === "raw" });
      if (!d.ok || d.value.kind !== "echo" || !d.value.reply) continue;
      if (sock.kind === "raw" && d.value.id !== this.id) continue;
      const p = this.pending.get(d.value.seq);
      if (p && p.dst === rx.from) p.done(true, "echo reply");
    }
  }

  private idle(): void {
    if (this.pending.size === 0 && this.poller) {
      clearInterval(this.poller);
      this.poller = null;
    }
  }

  /** which kind of socket is in use, once one is open */
  kind(): "dgram" | "raw" | null {
    return this.sock?.kind ?? null;
  }

  close(): void {
    for (const p of [...this.pending.values()]) p.done(false, "closed");
    this.sock?.close();
    this.sock = null;
  }
}

const pingers: { 4?: Pinger; 6?: Pinger } = {};

export async function pingCheck(spec: PingCheckSpec): Promise<CheckResult> {
  const start = nowMs();
  const family = familyOf(spec.conn.connectIp);
  if (family === null) return { ok: false, reason: `not an address: ${spec.conn.connectIp}`, latencyMs: 0 };
  pingers[family] ??= new Pinger(family);
  // replies are matched on the source address in canonical text, as the socket layer formats it
  const dst = canonicalIp(spec.conn.connectIp) ?? spec.conn.connectIp;
  const r = await pingers[family].ping(dst, spec.conn.connectTimeoutMs);
  return { ...r, latencyMs: nowMs() - start };
}

/** "dgram" (ping socket, as keepalived) or "raw" (fallback) once a family's socket is open; else null. */
export function pingSocketKind(family: 4 | 6): "dgram" | "raw" | null {
  return pingers[family]?.kind() ?? null;
}

/** Closes the shared ICMP sockets (tests, shutdown). */
export function closePingSockets(): void {
  pingers[4]?.close();
  pingers[6]?.close();
  delete pingers[4];
  delete pingers[6];
}
