// UDP_CHECK (keepalived check_udp.c + layer4.c udp_socket_state): send the payload on a connected UDP
// socket and wait up to connect_timeout.
//  - an ICMP port unreachable (reported by the kernel as an error on the connected socket) fails;
//  - without require_reply, silence until the timeout passes (a UDP service need not answer);
//  - with require_reply, a reply is required; its length must be within [min_reply_length,
//    max_reply_length] (default 0..255) and its first min(len, reply_len) bytes must match reply_data
//    on the bits that reply_mask leaves clear.
import { type CheckResult, nowMs, type UdpCheckSpec } from "./types.ts";
import { udpExchange } from "./udp-exchange.ts";

/** keepalived's check_udp_reply, true when the reply is acceptable. */
export function udpReplyMatches(reply: Uint8Array, spec: UdpCheckSpec): boolean {
  const min = spec.minReplyLength ?? 0;
  const max = spec.maxReplyLength ?? 255;
  if (reply.length < min || reply.length > max) return false;
  const want = spec.replyData;
  if (!want) return true;
  const n = Math.min(reply.length, want.length);
  for (let i = 0; i < n; i++) {
    const mask = spec.replyMask ? ~spec.replyMask[i]! & 0xff : 0xff;
    if ((reply[i]! ^ want[i]!) & mask) return false;
  }
  return true;
}

export async function udpCheck(spec: UdpCheckSpec): Promise<CheckResult> {
  const start = nowMs();
  return new Promise((resolve) => {
    const finish = (ok: boolean, reason: string): void => resolve({ ok, reason, latencyMs: nowMs() - start });
    udpExchange(spec.conn, spec.payload ?? new Uint8Array(0), {
      data(buf) {
        if (!spec.requireReply || udpReplyMatches(buf, spec)) finish(true, "reply");
        else finish(false, "reply mismatch");
        return true;
      },
      // ECONNREFUSED is the kernel's word for an ICMP port unreachable on a connected socket
      error: (code) =>
        finish(false, code === "ECONNREFUSED" || code === "unreachable" ? "port unreachable" : code),
      timeout: () => (spec.requireReply ? finish(false, "no reply") : finish(true, "no error")),
    });
  });
}
