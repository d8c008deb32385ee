// What the PacketReader's main side and its worker agree on: the control block layout in the
// SharedArrayBuffer and the shape of the messages the worker posts.

/** Int32 slots of the control block. */
export const C = {
  /** seqlock over the table: the main thread makes it odd while writing, even when done */
  GEN: 0,
  /** last generation the worker applied (Atomics.notify'd) */
  ACK: 1,
  STOP: 2,
  /** set by the worker before it first reads the table */
  READY: 3,
  COUNT: 4,
  /** batches posted by the worker / handled by the main thread: bounds the queue between them */
  POSTED: 5,
  CONSUMED: 6,
  /** coalescing window in ms for routine VRRP adverts (0 = deliver at once); see PacketReader.coalesce */
  HOLD_MS: 7,
  /** adverts the worker holds for the coalescing window right now */
  HELD: 8,
  /** 1 while the worker reads datagrams it has not yet posted or held (see PacketReader.pending) */
  READING: 9,
  /** watch entries start here: (id, fd, kind) triples */
  TABLE: 10,
} as const;

export const MAX_WATCHES = 256;
export const CONTROL_BYTES = (C.TABLE + MAX_WATCHES * 3) * 4;

export const KIND_VRRP4 = 1;
export const KIND_VRRP6 = 2;
export const KIND_NETLINK = 3;
export const KIND_FRAME = 4;
/** an inotify fd: read(2), not recvmsg; each read returns whole inotify_event records */
export const KIND_INOTIFY = 5;

export type WireItem =
  | {
      id: number;
      kind: typeof KIND_VRRP4 | typeof KIND_VRRP6;
      data: Uint8Array;
      src: string;
      dst: string;
      ttl: number;
      ifindex: number;
    }
  | { id: number; kind: typeof KIND_NETLINK; data: Uint8Array }
  | { id: number; kind: typeof KIND_NETLINK; overrun: true }
  | { id: number; kind: typeof KIND_FRAME; data: Uint8Array; ifindex: number; pktType: number }
  | { id: number; kind: typeof KIND_INOTIFY; data: Uint8Array };

export type WorkerMessage =
  | { t: "ready" }
  | { t: "batch"; items: WireItem[] }
  /** a receive error on one fd (the fd stays watched) */
  | { t: "error"; id: number; errno: number }
  /** the fd was dropped from the poll set (closed under us, or an error that does not clear) */
  | { t: "gone"; id: number; errno: number; reason: string }
  | { t: "stopped" }
  | { t: "fatal"; message: string };
