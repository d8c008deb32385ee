// A fake IPVS kernel behind the NetlinkBatchTransport interface: decodes the requests IpvsClient sends and
// answers as net/netfilter/ipvs/ip_vs_ctl.c does (errno per failure mode), so the client and reconcile
// are tested without a kernel. The real kernel is the VM tier's job (test/vm).

import {
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_ATTR_MCAST_GROUPS,
  CTRL_ATTR_MCAST_GRP_ID,
  CTRL_ATTR_MCAST_GRP_NAME,
  CTRL_ATTR_VERSION,
  CTRL_CMD_NEWFAMILY,
  decodeGenlMsg,
  encodeGenlMsg,
  GENL_ID_CTRL,
} from "../../agent/wire/genetlink.ts";
import {
  buildNewDest,
  buildNewService,
  decodeDestAttrs,
  decodeDestKeyAttrs,
  decodeServiceAttrs,
  decodeServiceKeyAttrs,
  destKeyString,
  IPVS_CMD_ATTR_DEST,
  IPVS_CMD_ATTR_SERVICE,
  IPVS_CMD_DEL_DEST,
  IPVS_CMD_DEL_SERVICE,
  IPVS_CMD_FLUSH,
  IPVS_CMD_GET_DEST,
  IPVS_CMD_GET_INFO,
  IPVS_CMD_GET_SERVICE,
  IPVS_CMD_NEW_DEST,
  IPVS_CMD_NEW_SERVICE,
  IPVS_CMD_SET_DEST,
  IPVS_CMD_SET_INFO,
  IPVS_CMD_SET_SERVICE,
  IPVS_INFO_ATTR_CONN_TAB_SIZE,
  IPVS_INFO_ATTR_VERSION,
  type IpvsDest,
  type IpvsService,
  serviceKeyString,
} from "../../agent/wire/ipvs.ts";
import {
  AttrSet,
  align4,
  decodeNlMsgs,
  encodeNlMsg,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_MULTI,
  NLMSG_ERROR,
  NLMSG_HDRLEN,
  nla,
} from "../../agent/wire/netlink.ts";
import {
  type AckMode,
  type BatchOutcome,
  ChunkAnswers,
  encodeChunk,
  planChunks,
} from "../../agent/wire/netlink-batch.ts";
import type { NetlinkBatchTransport } from "../../ffi/netlink-socket.ts";

/** The kernel's answer to one request (netlink_ack with NETLINK_CAP_ACK: the request header only). */
export function kernelAnswer(request: Uint8Array, errno: number): Uint8Array {
  const body = new Uint8Array(4 + NLMSG_HDRLEN);
  const dv = new DataView(body.buffer);
  dv.setInt32(0, -errno, true);
  body.set(request.subarray(0, NLMSG_HDRLEN), 4);
  const seq = new DataView(request.buffer, request.byteOffset).getUint32(8, true);
  return encodeNlMsg({ type: NLMSG_ERROR, flags: 0x100, seq }, body);
}

export const FAKE_IPVS_FAMILY = 37;
export const SCHEDULERS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "lblcr",
  "dh",
  "sh",
  "sed",
  "nq",
  "fo",
  "ovf",
  "mh",
];

function err(code: string, errno: number): NetlinkError {
  return new NetlinkError(code, errno);
}

export interface FakeEntry {
  service: IpvsService;
  dests: Map<string, IpvsDest>;
}

export class FakeIpvsKernel implements NetlinkBatchTransport {
  readonly table = new Map<string, FakeEntry>();
  readonly log: { cmd: number; service?: string }[] = [];
  /** false: the kernel has no IPVS (family lookup fails with ENOENT) */
  ipvs = true;
  schedulers = new Set(SCHEDULERS);
  /** requestBatch: how the socket would ask for acks, and its datagram limits */
  ackMode: AckMode = "errors";
  batchLimits = { maxBytes: 32 << 10, maxMsgs: 64 };
  /** requests per datagram received through requestBatch */
  readonly datagrams: number[] = [];
  /** answers the "socket" can queue per datagram before the kernel drops the rest (ENOBUFS) */
  answerRoom = Number.POSITIVE_INFINITY;

  /** What NetlinkSocket.requestBatch does, with this fake behind the datagram instead of a kernel. */
  requestBatch(msgs: readonly Uint8Array[]): BatchOutcome[] {
    const out: BatchOutcome[] = [];
    let seq = 1000;
    for (const [from, to] of planChunks(
      msgs.map((m) => m.length),
      this.batchLimits,
    )) {
      const dgram = encodeChunk(msgs, from, to, seq, this.ackMode);
      const answers = new ChunkAnswers(seq, to - from, this.ackMode);
      seq += to - from;
      const queued = this.receiveDatagram(dgram);
      this.datagrams.push(to - from);
      const overrun = queued.length > this.answerRoom;
      for (const a of queued.slice(0, this.answerRoom)) {
        const r = answers.feed(a);
        if (!r.ok) throw new Error(String(r.error));
      }
      for (const o of answers.finish(new NetlinkError("ENOBUFS", 105), !overrun)) out.push(o);
    }
    return out;
  }

  /** netlink_rcv_skb: every message in order, an answer for each failure and each ACK asked for. */
  private receiveDatagram(dgram: Uint8Array): Uint8Array[] {
    const msgs = decodeNlMsgs(dgram);
    if (!msgs.ok) throw new Error(String(msgs.error));
    const answers: Uint8Array[] = [];
    let off = 0;
    for (const m of msgs.value) {
      const len = NLMSG_HDRLEN + m.payload.length;
      const bytes = dgram.subarray(off, off + len);
      off += align4(len);
      let errno = 0;
      try {
        this.request(bytes);
      } catch (e) {
        if (!(e instanceof NetlinkError)) throw e;
        errno = e.errno;
      }
      if (errno !== 0 || m.flags & NLM_F_ACK) answers.push(kernelAnswer(bytes, errno));
    }
    return answers;
  }

  request(msg: Uint8Array): Uint8Array[] {
    const g = decodeGenlMsg(msg);
    if (!g.ok) throw err("EINVAL", 22);
    const attrs = AttrSet.parse(g.value.attrs);
    if (!attrs.ok) throw err("EINVAL", 22);
    const a = attrs.value;
    if (g.value.family === GENL_ID_CTRL) {
      if (a.str(CTRL_ATTR_FAMILY_NAME) !== "IPVS" || !this.ipvs) throw err("ENOENT", 2);
      return [
        encodeGenlMsg(GENL_ID_CTRL, 0, { cmd: CTRL_CMD_NEWFAMILY, version: 2 }, [
          nla.u16(CTRL_ATTR_FAMILY_ID, FAKE_IPVS_FAMILY),
          nla.str(CTRL_ATTR_FAMILY_NAME, "IPVS"),
          nla.u32(CTRL_ATTR_VERSION, 1),
          nla.nested(CTRL_ATTR_MCAST_GROUPS, [
            nla.nested(1, [nla.str(CTRL_ATTR_MCAST_GRP_NAME, "ipvs"), nla.u32(CTRL_ATTR_MCAST_GRP_ID, 9)]),
          ]),
        ]),
      ];
    }
    if (g.value.family !== FAKE_IPVS_FAMILY) throw err("ENOENT", 2);
    const cmd = g.value.cmd;
    const svcBytes = a.bytes(IPVS_CMD_ATTR_SERVICE);
    const destBytes = a.bytes(IPVS_CMD_ATTR_DEST);
    const key = svcBytes ? decodeServiceKeyAttrs(svcBytes) : undefined;
    const name = key?.ok ? serviceKeyString(key.value) : undefined;
    this.log.push(name ? { cmd, service: name } : { cmd });
    const entry = name ? this.table.get(name) : undefined;
    const needKey = () => {
      if (!key?.ok || !name) throw err("EINVAL", 22);
      return { key: key.value, name };
    };
    switch (cmd) {
      case IPVS_CMD_GET_INFO:
        return [
          encodeGenlMsg(FAKE_IPVS_FAMILY, 0, { cmd: IPVS_CMD_SET_INFO, version: 1 }, [
            nla.u32(IPVS_INFO_ATTR_VERSION, 0x010201),
            nla.u32(IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096),
          ]),
        ];
      case IPVS_CMD_GET_SERVICE: {
        if (!svcBytes) {
          return [...this.table.values()].map((e) =>
            this.reply(buildNewService(FAKE_IPVS_FAMILY, e.service)),
          );
        }
        needKey();
        if (!entry) throw err("ESRCH", 3);
        return [this.reply(buildNewService(FAKE_IPVS_FAMILY, entry.service))];
      }
      case IPVS_CMD_NEW_SERVICE:
      case IPVS_CMD_SET_SERVICE: {
        const k = needKey();
        const s = svcBytes ? decodeServiceAttrs(svcBytes) : undefined;
        if (!s?.ok) throw err("EINVAL", 22);
        if (!this.schedulers.has(s.value.sched)) throw err("ENOENT", 2);
        if (cmd === IPVS_CMD_NEW_SERVICE) {
          if (entry) throw err("EEXIST", 17);
          this.table.set(k.name, { service: s.value, dests: new Map() });
        } else {
          if (!entry) throw err("ESRCH", 3);
          entry.service = s.value;
        }
        return [];
      }
      case IPVS_CMD_DEL_SERVICE:
        needKey();
        if (!entry || !name) throw err("ESRCH", 3);
        this.table.delete(name);
        return [];
      case IPVS_CMD_FLUSH:
        this.table.clear();
        return [];
      case IPVS_CMD_GET_DEST: {
        const k = needKey();
        if (!entry) throw err("ESRCH", 3);
        return [...entry.dests.values()].map((d) => this.reply(buildNewDest(FAKE_IPVS_FAMILY, k.key, d)));
      }
      case IPVS_CMD_NEW_DEST:
      case IPVS_CMD_SET_DEST:
      case IPVS_CMD_DEL_DEST: {
        const k = needKey();
        if (!entry) throw err("ESRCH", 3);
        if (!destBytes) throw err("EINVAL", 22);
        const dk = decodeDestKeyAttrs(destBytes, k.key.af);
        if (!dk.ok) throw err("EINVAL", 22);
        const dname = destKeyString(dk.value);
        const have = entry.dests.get(dname);
        if (cmd === IPVS_CMD_DEL_DEST) {
          if (!have) throw err("ENOENT", 2);
          entry.dests.delete(dname);
          return [];
        }
        const d = decodeDestAttrs(destBytes, k.key.af);
        if (!d.ok) throw err("EINVAL", 22);
        if (cmd === IPVS_CMD_NEW_DEST && have) throw err("EEXIST", 17);
        if (cmd === IPVS_CMD_SET_DEST && !have) throw err("ENOENT", 2);
        entry.dests.set(dname, d.value);
        return [];
      }
      default:
        throw err("EOPNOTSUPP", 95);
    }
  }

  /** a request-shaped message turned into a dump reply (same attribute layout, MULTI flag) */
  private reply(m: Uint8Array): Uint8Array {
    const out = m.slice();
    new DataView(out.buffer).setUint16(6, NLM_F_MULTI, true);
    return out;
  }
}
