// AF_NETLINK sockets: synchronous request/response on the main thread (the kernel answers during
// sendto, so recv does not wait), and a separate non-blocking socket for multicast notifications that
// the PacketReader watches. Two sockets so notifications never interleave with replies.
// requestBatch() sends many requests per datagram (agent/wire/netlink-batch.ts holds the logic).
import { errnoName } from "../agent/wire/errno.ts";
import {
  ackToError,
  decodeNlAck,
  decodeNlMsgs,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
} from "../agent/wire/netlink.ts";
import {
  type AckMode,
  type BatchLimits,
  type BatchOutcome,
  ChunkAnswers,
  encodeChunk,
  planChunks,
  seqRange,
} from "../agent/wire/netlink-batch.ts";
import { buffer, check, closeFd, getsockoptInt, lastErrno, libc, SysError, setsockoptInt } from "./libc.ts";
import {
  AF_NETLINK,
  EAGAIN,
  EINTR,
  ENOBUFS,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_ADD_MEMBERSHIP,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_GENERIC,
  NETLINK_ROUTE,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_RCVTIMEO,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
  sockaddrNl,
} from "./structs.ts";

export { NetlinkError };

/** What kernel clients need from a netlink socket; fakes implement it in unit tests. */
export interface NetlinkTransport {
  /**
   * Sends one request and returns the reply messages (whole nlmsgs, header included), without the
   * closing ACK / NLMSG_DONE. Throws NetlinkError when the kernel refuses.
   */
  request(msg: Uint8Array): Uint8Array[];
}

/** A transport that also sends many requests per datagram (IPVS programming). */
export interface NetlinkBatchTransport extends NetlinkTransport {
  /**
   * Sends requests that have no reply but an ACK (no dumps), many per datagram, in order, and returns
   * one outcome per request: null when done, the kernel's NetlinkError when refused. A refusal never
   * stops the requests after it. Throws only when the exchange itself fails (closed socket, timeout,
   * malformed answer); then nothing is known of the requests not yet answered.
   */
  requestBatch(msgs: readonly Uint8Array[]): BatchOutcome[];
}

export type { BatchOutcome };

export type NetlinkProtocol = "route" | "generic" | number;

export interface NetlinkSocketOptions {
  protocol: NetlinkProtocol;
  /** legacy group bitmask (RTMGRP_*) for the notification socket; 0/absent: no notification socket */
  groups?: number;
  /** notification socket receive buffer (default 4 MiB; bursts of address changes overflow small ones) */
  notifyRcvbuf?: number;
  /** a reply must arrive within this time (default 5000 ms); it never should take long */
  timeoutMs?: number;
  /**
   * receive buffer of the request socket (default: the system's). requestBatch() sizes its datagrams
   * so that the answers to one datagram fit in it.
   */
  rcvbuf?: number;
  /** how requestBatch() asks for acknowledgements (default "errors", see netlink-batch.ts) */
  ackMode?: AckMode;
  /** upper bound on a batch datagram (default 32 KiB) */
  batchBytes?: number;
}

const RECV_SIZE = 1 << 16;
const MAX_DUMP_RETRIES = 5;
/**
 * What one queued answer (an NLMSG_ERROR skb, extended ack text included) costs of the receive
 * buffer, rounded up: sk_buff + shared info + a small data area come to ~0.8-1.2 KiB on x86_64.
 */
const ANSWER_TRUESIZE = 1536;
const MAX_BATCH_MSGS = 1024;

function protocolNumber(p: NetlinkProtocol): number {
  if (p === "route") return NETLINK_ROUTE;
  if (p === "generic") return NETLINK_GENERIC;
  return p;
}

function netlinkSocket(protocol: number, nonBlocking: boolean): number {
  const type = SOCK_RAW | SOCK_CLOEXEC | (nonBlocking ? SOCK_NONBLOCK : 0);
  return check("socket", libc().socket(AF_NETLINK, type, protocol), `AF_NETLINK ${protocol}`);
}

function trySetInt(fd: number, level: number, name: number, value: number, what: string): boolean {
  try {
    setsockoptInt(fd, level, name, value, what);
    return true;
  } catch (e) {
    if (e instanceof SysError) return false;
    throw e;
  }
}

/** FORCE goes past net.core.rmem_max (we are privileged); fall back to the capped one */
function setRcvbuf(fd: number, size: number): void {
  if (!trySetInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size, "SO_RCVBUFFORCE"))
    trySetInt(fd, SOL_SOCKET, SO_RCVBUF, size, "SO_RCVBUF");
}

export class NetlinkSocket implements NetlinkBatchTransport {
  /** request/response socket (blocking, with a receive timeout) */
  readonly fd: number;
  private notify: number | null = null;
  private seq: number;
  private readonly buf = buffer(RECV_SIZE);
  private readonly kernel = sockaddrNl();
  private readonly protocol: number;
  private closed = false;
  private readonly batch: BatchLimits;
  private readonly ackMode: AckMode;

  constructor(private readonly opts: NetlinkSocketOptions) {
    this.protocol = protocolNumber(opts.protocol);
    this.fd = netlinkSocket(this.protocol, false);
    let rcvbuf: number;
    try {
      // error replies carry the kernel's explanation, and only the header of our request
      trySetInt(this.fd, SOL_NETLINK, NETLINK_EXT_ACK, 1, "NETLINK_EXT_ACK");
      trySetInt(this.fd, SOL_NETLINK, NETLINK_CAP_ACK, 1, "NETLINK_CAP_ACK");
      const tv = buffer(16); // struct timeval { i64 sec; i64 usec }
      const ms = opts.timeoutMs ?? 5000;
      const dv = new DataView(tv.buffer);
      dv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
      dv.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
      check("setsockopt", libc().setsockopt(this.fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16), "SO_RCVTIMEO");
      if (opts.rcvbuf) setRcvbuf(this.fd, opts.rcvbuf);
      const sa = sockaddrNl();
      check("bind", libc().bind(this.fd, sa, sa.length), "netlink");
      if (opts.groups) this.openNotify(opts.groups);
      // every request of a datagram may be refused (a service whose add failed takes its dests with
      // it), so the answers to a whole datagram must fit in the receive buffer at once, whatever the
      // ack mode
      rcvbuf = getsockoptInt(this.fd, SOL_SOCKET, SO_RCVBUF, "SO_RCVBUF");
    } catch (e) {
      this.close();
      throw e;
    }
    this.batch = {
      maxBytes: opts.batchBytes ?? 32 << 10,
      maxMsgs: Math.max(1, Math.min(MAX_BATCH_MSGS, Math.floor(rcvbuf / ANSWER_TRUESIZE))),
    };
    this.ackMode = opts.ackMode ?? "errors";
    // start from a time-derived sequence so replies to an earlier process on a recycled port never match
    this.seq = (Date.now() & 0x7fffffff) >>> 0;
  }

  /** Non-blocking socket subscribed to the multicast groups (watch it with kind "netlink"), or null. */
  get notifyFd(): number | null {
    return this.notify;
  }

  /**
   * Subscribes the notification socket (opened on demand) to multicast groups by number (RTNLGRP_*,
   * or generic netlink group ids, which do not fit the legacy bitmask). Returns its fd.
   */
  subscribe(groups: readonly number[]): number {
    const fd = this.notify ?? this.openNotify(0);
    for (const g of groups)
      setsockoptInt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, g, `NETLINK_ADD_MEMBERSHIP ${g}`);
    return fd;
  }

  /** Closes the notification socket (unwatch it first); subscribe() opens a new one. */
  closeNotify(): void {
    if (this.notify !== null) closeFd(this.notify);
    this.notify = null;
  }

  private openNotify(groups: number): number {
    const fd = netlinkSocket(this.protocol, true);
    try {
      setRcvbuf(fd, this.opts.notifyRcvbuf ?? 4 << 20);
      const sa = sockaddrNl(groups);
      check("bind", libc().bind(fd, sa, sa.length), `netlink groups 0x${groups.toString(16)}`);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    this.notify = fd;
    return fd;
  }

  request(msg: Uint8Array): Uint8Array[] {
    if (this.closed) throw new NetlinkError("EBADF", 9, "socket closed");
    if (msg.length < NLMSG_HDRLEN)
      throw new NetlinkError("EINVAL", 22, "request shorter than a netlink header");
    const req = buffer(msg.length);
    req.set(msg);
    const dv = new DataView(req.buffer);
    const flags = dv.getUint16(6, true);
    const dump = (flags & NLM_F_DUMP) === NLM_F_DUMP;
    // without ACK a successful non-dump request that has no reply would leave us waiting forever
    if (!dump) dv.setUint16(6, flags | NLM_F_ACK, true);
    for (let attempt = 0; ; attempt++) {
      const seq = this.nextSeq();
      dv.setUint32(8, seq, true);
      dv.setUint32(12, 0, true);
      const r = this.exchange(req, seq);
      if (!r.interrupted || attempt >= MAX_DUMP_RETRIES) return r.messages;
    }
  }

  requestBatch(msgs: readonly Uint8Array[]): BatchOutcome[] {
    if (this.closed) throw new NetlinkError("EBADF", 9, "socket closed");
    const out: BatchOutcome[] = [];
    for (const [from, to] of planChunks(
      msgs.map((m) => m.length),
      this.batch,
    )) {
      const count = to - from;
      const first = seqRange(this.seq + 1, count);
      this.seq = (first + count - 1) >>> 0;
      const answers = this.exchangeChunk(encodeChunk(msgs, from, to, first, this.ackMode), first, count);
      for (const o of answers) out.push(o);
    }
    return out;
  }

  private exchangeChunk(datagram: Uint8Array, first: number, count: number): BatchOutcome[] {
    const sys = libc();
    this.send(datagram);
    const answers = new ChunkAnswers(first, count, this.ackMode);
    // ENOBUFS: the kernel dropped answers (receive buffer full). Whatever it queued is still there:
    // take it without waiting, and report the requests left unanswered as of unknown fate
    let overrun = false;
    while (!answers.complete) {
      const flags = MSG_TRUNC | (overrun ? MSG_DONTWAIT : 0);
      const n = Number(sys.recvfrom(this.fd, this.buf, this.buf.length, flags, null, null));
      if (n < 0) {
        const e = lastErrno();
        if (e === EINTR) continue;
        if (e === ENOBUFS) {
          overrun = true;
          continue;
        }
        if (e === EAGAIN && overrun) break;
        if (e === EAGAIN) throw new NetlinkError("ETIMEDOUT", 110, "no answer from the kernel");
        throw new NetlinkError(errnoName(e), e, "receiving answers");
      }
      if (n > this.buf.length) throw new NetlinkError("EMSGSIZE", 90, `answer of ${n} bytes truncated`);
      const r = answers.feed(this.buf.subarray(0, n));
      if (!r.ok) throw new NetlinkError("EBADMSG", 74, `malformed answer: ${r.error}`);
    }
    const lost = new NetlinkError("ENOBUFS", 105, "answer dropped: receive buffer full");
    if (overrun) this.batch.maxMsgs = Math.max(1, this.batch.maxMsgs >> 1);
    return answers.finish(lost, !overrun);
  }

  private send(datagram: Uint8Array): void {
    const sys = libc();
    for (;;) {
      const n = Number(sys.sendto(this.fd, datagram, datagram.length, 0, this.kernel, this.kernel.length));
      if (n >= 0) return;
      const e = lastErrno();
      if (e !== EINTR) throw new NetlinkError(errnoName(e), e, "sending request");
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0 || 1;
    return this.seq;
  }

  private exchange(req: Uint8Array, seq: number): { messages: Uint8Array[]; interrupted: boolean } {
    const sys = libc();
    this.send(req);
    const out: Uint8Array[] = [];
    let interrupted = false;
    for (;;) {
      const n = Number(sys.recvfrom(this.fd, this.buf, this.buf.length, MSG_TRUNC, null, null));
      if (n < 0) {
        const e = lastErrno();
        if (e === EINTR) continue;
        if (e === EAGAIN) throw new NetlinkError("ETIMEDOUT", 110, "no reply from the kernel");
        throw new NetlinkError(errnoName(e), e, "receiving reply");
      }
      if (n > this.buf.length) throw new NetlinkError("EMSGSIZE", 90, `reply of ${n} bytes truncated`);
      const msgs = decodeNlMsgs(this.buf.subarray(0, n));
      if (!msgs.ok) throw new NetlinkError("EBADMSG", 74, `malformed reply: ${msgs.error}`);
      for (const m of msgs.value) {
        if (m.seq !== seq) continue; // late reply to an earlier, timed-out request
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_ERROR) {
          const ack = decodeNlAck(m);
          if (!ack.ok) throw new NetlinkError("EBADMSG", 74, `malformed ack: ${ack.error}`);
          if (ack.value.errno !== 0) throw ackToError(ack.value);
          return { messages: out, interrupted };
        }
        if (m.type === NLMSG_DONE) {
          // a dump that failed midway reports -errno in the DONE payload
          if (m.payload.length >= 4) {
            const err = new DataView(m.payload.buffer, m.payload.byteOffset, 4).getInt32(0, true);
            if (err < 0) throw new NetlinkError(errnoName(-err), -err, "dump failed");
          }
          return { messages: out, interrupted };
        }
        if (m.type === NLMSG_NOOP) continue;
        if (m.type === NLMSG_OVERRUN) throw new NetlinkError("ENOBUFS", 105, "overrun");
        const start = m.payload.byteOffset - this.buf.byteOffset - NLMSG_HDRLEN;
        // copy: the receive buffer is reused for the next datagram
        out.push(this.buf.slice(start, start + NLMSG_HDRLEN + m.payload.length));
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
    this.closeNotify();
  }
}
