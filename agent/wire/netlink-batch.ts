// Several netlink requests in one datagram, and their answers matched back by sequence number. Pure:
// the socket (ffi/netlink-socket.ts) only sends the datagrams built here and feeds what it receives.
//
// Why: programming 1,000 services x 10 real servers is 11,000 requests; one sendto + one recvfrom per
// request is 22,000 system calls (each costly under emulation), while the kernel handles a datagram
// of many messages in one go (netlink_rcv_skb walks them in order, synchronously, inside sendto).
//
// Acknowledgement modes:
// - "each": every request carries NLM_F_ACK; the chunk is complete when every request is answered;
// - "errors": only the last request of a datagram carries NLM_F_ACK. The kernel reports a failure
//   whether or not ACK was asked (netlink_rcv_skb: `if (flags & NLM_F_ACK || err) netlink_ack(...)`),
//   and it answers in order, so once the last request is answered every earlier failure has been
//   queued: the requests with no answer succeeded. One receive per datagram instead of one per request.
// A failure is always matched to its own request by seq, so it names that request, and it never stops
// the requests after it (the kernel carries on with the rest of the datagram).
import {
  ackToError,
  align4,
  decodeNlAck,
  decodeNlMsgs,
  type NetlinkError,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
} from "./netlink.ts";
import { fail, ok, type Result } from "./result.ts";

export type AckMode = "each" | "errors";

export interface BatchLimits {
  /** bytes per datagram (the socket's send buffer bounds it; 32-64 KiB keeps the kernel's skb small) */
  maxBytes: number;
  /** requests per datagram: with ack "each" their acks must all fit the receive buffer at once */
  maxMsgs: number;
}

/** What one batched request came to: null = done, otherwise the kernel's refusal. */
export type BatchOutcome = NetlinkError | null;

/**
 * Index ranges [from, to) of consecutive requests, each range one datagram within `limits`. A request
 * larger than maxBytes on its own still gets a datagram of its own (the kernel decides).
 */
export function planChunks(sizes: readonly number[], limits: BatchLimits): [number, number][] {
  const out: [number, number][] = [];
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < sizes.length; i++) {
    const n = align4(sizes[i] ?? 0);
    if (i > from && (bytes + n > limits.maxBytes || i - from >= limits.maxMsgs)) {
      out.push([from, i]);
      from = i;
      bytes = 0;
    }
    bytes += n;
  }
  if (from < sizes.length) out.push([from, sizes.length]);
  return out;
}

/**
 * One datagram: msgs[from, to) back to back (each padded to 4 bytes), the i-th stamped with seq
 * firstSeq + i, pid 0, NLM_F_REQUEST, and NLM_F_ACK as `mode` says (any ACK flag of the caller's is
 * replaced). Throws RangeError for a dump request or a malformed header: callers' bugs, whose replies
 * could not be matched this way.
 */
export function encodeChunk(
  msgs: readonly Uint8Array[],
  from: number,
  to: number,
  firstSeq: number,
  mode: AckMode,
): Uint8Array {
  let len = 0;
  for (let i = from; i < to; i++) len += align4(msgs[i]!.length);
  const out = new Uint8Array(len);
  const dv = new DataView(out.buffer);
  let off = 0;
  for (let i = from; i < to; i++) {
    const m = msgs[i]!;
    if (m.length < NLMSG_HDRLEN) throw new RangeError(`batched request ${i} shorter than a header`);
    out.set(m, off);
    // a message may or may not carry its trailing padding
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN || len > m.length || align4(len) !== align4(m.length))
      throw new RangeError(`batched request ${i}: nlmsg_len ${len} for ${m.length} bytes`);
    let flags = dv.getUint16(off + 6, true);
    if ((flags & NLM_F_DUMP) === NLM_F_DUMP) throw new RangeError(`batched request ${i} is a dump`);
    flags = (flags | NLM_F_REQUEST) & ~NLM_F_ACK;
    if (mode === "each" || i === to - 1) flags |= NLM_F_ACK;
    dv.setUint16(off + 6, flags, true);
    dv.setUint32(off + 8, (firstSeq + (i - from)) >>> 0, true);
    dv.setUint32(off + 12, 0, true);
    off += align4(m.length);
  }
  return out;
}

/**
 * The answers to one datagram of `count` requests numbered firstSeq... Feed it every datagram received
 * until `complete`; then `outcomes[i]` is request i's fate.
 */
export class ChunkAnswers {
  /** undefined: not answered (yet) */
  readonly outcomes: (BatchOutcome | undefined)[];
  private answered = 0;
  private lastAnswered = false;

  constructor(
    readonly firstSeq: number,
    readonly count: number,
    readonly mode: AckMode,
  ) {
    this.outcomes = new Array<BatchOutcome | undefined>(count).fill(undefined);
  }

  get complete(): boolean {
    return this.mode === "each" ? this.answered === this.count : this.lastAnswered;
  }

  /**
   * Takes one received datagram. Messages for other sequence numbers (late answers to an earlier,
   * timed-out request) and replies other than NLMSG_ERROR are ignored; a repeated answer keeps the
   * first. Fails only on bytes that do not frame as netlink.
   */
  feed(datagram: Uint8Array): Result<void> {
    const msgs = decodeNlMsgs(datagram);
    if (!msgs.ok) return msgs;
    for (const m of msgs.value) {
      if (m.type !== NLMSG_ERROR) continue;
      const i = (m.seq - this.firstSeq) >>> 0;
      if (i >= this.count) continue;
      const ack = decodeNlAck(m);
      if (!ack.ok) return fail("netlink_bad_ack", `seq ${m.seq}: ${ack.error}`);
      if (this.outcomes[i] !== undefined) continue;
      this.outcomes[i] = ack.value.errno === 0 ? null : ackToError(ack.value);
      this.answered++;
      if (i === this.count - 1) this.lastAnswered = true;
    }
    return ok(undefined);
  }

  /**
   * The outcomes once the exchange is over. In "errors" mode a request the kernel did not answer
   * succeeded, provided the chunk is complete and no answer was dropped (`trustSilence`: the socket
   * saw no ENOBUFS). Otherwise every unanswered request gets `lost`: its fate is unknown, and the
   * caller must re-read the kernel.
   */
  finish(lost: NetlinkError, trustSilence = true): BatchOutcome[] {
    const silentOk = trustSilence && this.complete && this.mode === "errors";
    return this.outcomes.map((o) => (o !== undefined ? o : silentOk ? null : lost));
  }
}

/** Sequence numbers for `count` requests from `next` on, never 0 and never wrapping inside a chunk. */
export function seqRange(next: number, count: number): number {
  const first = next >>> 0 || 1;
  return first + count - 1 > 0xffffffff ? 1 : first;
}
