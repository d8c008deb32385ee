// ICMP / ICMPv6 echo request and reply (RFC 792, RFC 4443 §4). Pure codec for PING_CHECK.
//
// The ICMPv6 checksum covers a pseudo-header with addresses the sender may not know (the kernel picks
// the source), so ICMPv6 messages are encoded with checksum 0 and the kernel fills it in (it always
// does for ICMPv6 sockets); ICMPv4 carries its own checksum.
import { internetChecksum, sum16, verifies } from "./checksum.ts";
import { fail, ok, type Result } from "./result.ts";

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP6_DEST_UNREACH = 1;
export const ICMP6_ECHO_REQUEST = 128;
export const ICMP6_ECHO_REPLY = 129;
export const ICMP_HEADER_LEN = 8;

export interface IcmpEcho {
  family: 4 | 6;
  /** request or reply */
  reply: boolean;
  id: number;
  seq: number;
  payload: Uint8Array;
}

export function encodeEcho(e: IcmpEcho): Uint8Array {
  const out = new Uint8Array(ICMP_HEADER_LEN + e.payload.length);
  const v = new DataView(out.buffer);
  const type =
    e.family === 4
      ? e.reply
        ? ICMP_ECHO_REPLY
        : ICMP_ECHO_REQUEST
      : e.reply
        ? ICMP6_ECHO_REPLY
        : ICMP6_ECHO_REQUEST;
  out[0] = type;
  out[1] = 0;
  v.setUint16(4, e.id & 0xffff);
  v.setUint16(6, e.seq & 0xffff);
  out.set(e.payload, ICMP_HEADER_LEN);
  if (e.family === 4) v.setUint16(2, internetChecksum(out));
  return out;
}

export interface DecodeEchoOptions {
  family: 4 | 6;
  /** verify the ICMPv4 checksum (the kernel already did for ping sockets; raw sockets may not) */
  verifyChecksum?: boolean;
}

export type IcmpMessage =
  | ({ kind: "echo" } & IcmpEcho)
  /** a type that is not echo (unreachable, time exceeded, ...), with its code */
  | { kind: "other"; family: 4 | 6; type: number; code: number };

/** Decodes an ICMP message (without IP header). */
export function decodeIcmp(buf: Uint8Array, o: DecodeEchoOptions): Result<IcmpMessage> {
  if (buf.length < ICMP_HEADER_LEN) return fail("too_short", `${buf.length} bytes`);
  if (o.family === 4 && o.verifyChecksum && !verifies(sum16(buf))) return fail("bad_checksum");
  const type = buf[0]!;
  const code = buf[1]!;
  const isReq = o.family === 4 ? type === ICMP_ECHO_REQUEST : type === ICMP6_ECHO_REQUEST;
  const isRep = o.family === 4 ? type === ICMP_ECHO_REPLY : type === ICMP6_ECHO_REPLY;
  if (!isReq && !isRep) return ok({ kind: "other", family: o.family, type, code });
  if (code !== 0) return fail("bad_code", String(code));
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return ok({
    kind: "echo",
    family: o.family,
    reply: isRep,
    id: v.getUint16(4),
    seq: v.getUint16(6),
    payload: buf.slice(ICMP_HEADER_LEN),
  });
}

/** Skips the IPv4 header a raw ICMPv4 socket delivers; null when it is malformed. */
export function stripIpv4Header(buf: Uint8Array): Uint8Array | null {
  if (buf.length < 20 || buf[0]! >> 4 !== 4) return null;
  const ihl = (buf[0]! & 0xf) * 4;
  if (ihl < 20 || buf.length < ihl) return null;
  return buf.subarray(ihl);
}
