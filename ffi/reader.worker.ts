// Receive thread of the PacketReader: poll()s the watched fds plus a control eventfd, drains readable
// fds with recvmsg, and posts whole datagrams to the main thread in one message per wake-up.
//
// The loop never returns to this worker's event loop, so control does not come by postMessage: the
// main thread edits a table in a SharedArrayBuffer, bumps a generation and writes the eventfd
// (worker.terminate() cannot interrupt a thread blocked in poll()). See reader.ts for the layout.
import { formatIp } from "../agent/wire/ip.ts";
import { addressOf, buffer, eventFdDrain, getsockoptInt, lastErrno, libc, monotonicNs } from "./libc.ts";
import {
  C,
  KIND_FRAME,
  KIND_INOTIFY,
  KIND_NETLINK,
  KIND_VRRP4,
  KIND_VRRP6,
  MAX_WATCHES,
  type WireItem,
  type WorkerMessage,
} from "./reader.shared.ts";
import {
  EAGAIN,
  EINTR,
  ENOBUFS,
  MSG_DONTWAIT,
  MSG_TRUNC,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  PollSet,
  parseCmsgs,
  SO_ERROR,
  SOL_SOCKET,
  sockaddrToIp,
} from "./structs.ts";

declare const self: {
  onmessage: ((ev: MessageEvent) => void) | null;
  postMessage(msg: unknown): void;
};

// Per wake-up and fd: enough to empty a socket under a flood, bounded so one fd cannot starve the others
// or the control eventfd (poll is level-triggered: what is left is reported again at once).
const MAX_PER_FD = 512;
// Stop reading when the main thread is this many batches behind: the kernel socket buffer then
// overflows and drops, which is cheaper than queueing unbounded copies here.
const MAX_BACKLOG = 256;
const EBADF = 9;
const EIO = 5;
const EPIPE = 32;
// consecutive error-only wake-ups before an fd is considered broken and dropped from the poll set
const MAX_ERROR_WAKEUPS = 64;
// held adverts are posted at once beyond this many (a flood gains nothing from waiting)
const MAX_HELD = 256;

/**
 * Whether a datagram may wait for the coalescing window: a VRRP advert with a non-zero priority.
 * Priority 0 (a master leaving) is acted on within Skew_Time, so it and everything else go at once.
 * Offsets: IPv4 raw sockets return the IP header, IPv6 ones only the VRRP packet; byte 2 of the
 * VRRP header is the priority in both versions.
 */
function routine(item: WireItem): boolean {
  if (item.kind === KIND_VRRP6) return item.data.length > 2 && item.data[2] !== 0;
  if (item.kind !== KIND_VRRP4) return false;
  const at = (item.data[0]! & 0x0f) * 4 + 2;
  return item.data.length > at && item.data[at] !== 0;
}

interface Watch {
  id: number;
  fd: number;
  kind: number;
  errorWakeups: number;
  lastErrno: number;
}

// Datagrams are cloned, not transferred: for packets of a few hundred bytes a structured clone is
// cheaper than detaching buffers (measured ~10 us per message less).
function post(msg: WorkerMessage): void {
  self.postMessage(msg);
}

self.onmessage = (ev: MessageEvent) => {
  const init = ev.data as { efd: number; sab: SharedArrayBuffer };
  self.onmessage = null;
  try {
    run(init.efd, new Int32Array(init.sab));
    post({ t: "stopped" });
  } catch (e) {
    post({ t: "fatal", message: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
};

/**
 * The kernel holds raw pointers to these buffers (msghdr -> iovec -> data, name, control). A buffer
 * only reachable through such a pointer is garbage to the JS engine: `iov` is never touched again
 * after setup, and once collected its memory was reused, so recvmsg wrote datagrams elsewhere (stale
 * packets delivered, and crashes). Keeping them in module scope keeps them alive for the worker's life.
 */
const pinned: Uint8Array[] = [];

function run(efd: number, ctl: Int32Array): void {
  const sys = libc();
  const data = buffer(65536);
  const name = buffer(128);
  const control = buffer(512);
  const iov = buffer(16);
  const msg = buffer(56);
  pinned.push(data, name, control, iov, msg);
  {
    const iv = new DataView(iov.buffer);
    iv.setBigUint64(0, BigInt(addressOf(data)), true);
    iv.setBigUint64(8, BigInt(data.length), true);
    const mv = new DataView(msg.buffer);
    mv.setBigUint64(0, BigInt(addressOf(name)), true);
    mv.setBigUint64(16, BigInt(addressOf(iov)), true);
    mv.setBigUint64(24, 1n, true);
    mv.setBigUint64(32, BigInt(addressOf(control)), true);
  }
  const mv = new DataView(msg.buffer);
  const nameDv = new DataView(name.buffer);

  const polls = new PollSet(MAX_WATCHES + 1);
  let watches: Watch[] = [];
  const broken = new Set<number>();
  let applied = -1;
  let dropped = false;

  /**
   * Reads the watch table under the main thread's seqlock (GEN is odd while it writes) so a table in
   * the middle of an update is never polled: a torn entry could pair an id with another socket's fd.
   */
  const readTable = (): { gen: number; entries: { id: number; fd: number; kind: number }[] } => {
    for (;;) {
      const g1 = Atomics.load(ctl, C.GEN);
      if (g1 & 1) continue; // the writer holds it for microseconds
      const count = Math.min(Atomics.load(ctl, C.COUNT), MAX_WATCHES);
      const entries: { id: number; fd: number; kind: number }[] = [];
      for (let i = 0; i < count; i++) {
        const base = C.TABLE + i * 3;
        entries.push({
          id: Atomics.load(ctl, base),
          fd: Atomics.load(ctl, base + 1),
          kind: Atomics.load(ctl, base + 2),
        });
      }
      if (Atomics.load(ctl, C.GEN) === g1) return { gen: g1, entries };
    }
  };

  const rebuild = (): void => {
    const table = readTable();
    const prev = new Map(watches.map((w) => [w.id, w]));
    const next: Watch[] = [];
    for (const e of table.entries) {
      if (broken.has(e.id)) continue;
      next.push(prev.get(e.id) ?? { ...e, errorWakeups: 0, lastErrno: 0 });
    }
    // forget broken ids once the main thread has unwatched them
    for (const id of broken) if (!table.entries.some((e) => e.id === id)) broken.delete(id);
    watches = next;
    polls.set(0, efd, POLLIN);
    for (let i = 0; i < watches.length; i++) polls.set(i + 1, watches[i]!.fd, POLLIN);
    polls.count = watches.length + 1;
    applied = table.gen;
  };

  /** Applies table changes and acknowledges them; true when the reader is asked to stop. */
  const applyControl = (): boolean => {
    if (Atomics.load(ctl, C.GEN) !== applied || dropped) {
      // after a drop too: the table may have changed since, and the main thread may be waiting
      dropped = false;
      rebuild();
      Atomics.store(ctl, C.ACK, applied);
      Atomics.notify(ctl, C.ACK);
    }
    return Atomics.load(ctl, C.STOP) !== 0;
  };

  const drop = (w: Watch, code: number, reason: string): void => {
    broken.add(w.id);
    dropped = true;
    post({ t: "gone", id: w.id, errno: code, reason });
  };

  // adverts waiting for the coalescing window, and when it closes (CLOCK_MONOTONIC ns)
  let held: WireItem[] = [];
  let holdUntil = 0n;
  const flush = (): void => {
    if (held.length === 0) return;
    // counted as posted before HELD drops, so that PacketReader.pending never sees neither
    Atomics.add(ctl, C.POSTED, 1);
    post({ t: "batch", items: held });
    held = [];
    Atomics.store(ctl, C.HELD, 0);
  };

  // must be set before the first table read: see PacketReader.unwatch
  Atomics.store(ctl, C.READY, 1);
  post({ t: "ready" });
  for (;;) {
    // drops are applied here, between poll rounds: revents of the current round index the old set
    if (applyControl()) return;

    while (Atomics.load(ctl, C.POSTED) - Atomics.load(ctl, C.CONSUMED) > MAX_BACKLOG) {
      Atomics.wait(ctl, C.CONSUMED, Atomics.load(ctl, C.CONSUMED), 5);
      // the main thread may be blocked in unwatch() waiting for us: keep acknowledging
      if (applyControl()) return;
    }

    let timeout = -1;
    if (held.length > 0) {
      const left = holdUntil - monotonicNs();
      if (left <= 0n) {
        flush();
        continue;
      }
      timeout = Math.ceil(Number(left) / 1e6);
    }
    const r = sys.poll(polls.buf, polls.count, timeout);
    if (r < 0) {
      const e = lastErrno();
      if (e === EINTR) continue;
      throw new Error(`poll failed: errno ${e}`);
    }
    if (polls.revents(0) !== 0) eventFdDrain(efd);
    // from here until the datagrams are posted or held they are neither in a socket nor counted:
    // PacketReader.pending must still see them
    Atomics.store(ctl, C.READING, 1);

    const items: WireItem[] = [];
    const snapshot = watches;
    for (let i = 0; i < snapshot.length; i++) {
      const w = snapshot[i]!;
      const rev = polls.revents(i + 1);
      if (rev === 0) continue;
      if (rev & POLLNVAL) {
        drop(w, EBADF, "fd is not open");
        continue;
      }
      let got = 0;
      let errored = false;
      for (let n = 0; n < MAX_PER_FD; n++) {
        mv.setUint32(8, name.length, true);
        mv.setBigUint64(40, BigInt(control.length), true);
        mv.setInt32(48, 0, true);
        // inotify fds are not sockets (and are opened non-blocking): read(2) gives whole event records
        const len =
          w.kind === KIND_INOTIFY
            ? Number(sys.read(w.fd, data, data.length))
            : Number(sys.recvmsg(w.fd, msg, MSG_DONTWAIT));
        if (len < 0) {
          const e = lastErrno();
          if (e === EAGAIN) break;
          if (e === EINTR) continue;
          if (e === ENOBUFS && w.kind === KIND_NETLINK) {
            // the kernel dropped notifications: the consumer must re-read state
            items.push({ id: w.id, kind: KIND_NETLINK, overrun: true });
            continue;
          }
          errored = true;
          w.lastErrno = e;
          post({ t: "error", id: w.id, errno: e });
          break;
        }
        if (w.kind === KIND_INOTIFY) {
          if (len === 0) break;
          items.push({ id: w.id, kind: KIND_INOTIFY, data: data.slice(0, len) });
          got++;
          continue;
        }
        if (mv.getInt32(48, true) & MSG_TRUNC) continue; // larger than 64 KiB: never a valid datagram here
        const bytes = data.slice(0, len);
        const namelen = mv.getUint32(8, true);
        const item = decode(w, bytes, namelen, parseCmsgs(control, Number(mv.getBigUint64(40, true))));
        if (item) {
          items.push(item);
          got++;
        }
      }
      if (got > 0 || !(errored || rev & (POLLERR | POLLHUP))) {
        w.errorWakeups = 0;
        continue;
      }
      // a wake-up that yielded only errors: reading SO_ERROR clears a pending socket error, and a
      // condition that never clears (or an fd that is not a socket) is dropped rather than spun on
      if (rev & POLLERR && !errored) {
        try {
          const soErr = getsockoptInt(w.fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
          if (soErr !== 0) {
            w.lastErrno = soErr;
            post({ t: "error", id: w.id, errno: soErr });
          }
        } catch {
          // closed under us: POLLNVAL next round
        }
      }
      if (rev & POLLHUP && !(rev & POLLIN)) drop(w, EPIPE, "POLLHUP");
      else if (++w.errorWakeups >= MAX_ERROR_WAKEUPS) drop(w, w.lastErrno || EIO, "errors on every wake-up");
    }
    if (items.length === 0) {
      Atomics.store(ctl, C.READING, 0);
      continue;
    }
    // Coalescing: a backup hears one advert per instance and interval, spread over the interval by the
    // masters' timers; delivering them in one message wakes the main thread once instead of per advert.
    const holdMs = Atomics.load(ctl, C.HOLD_MS);
    for (const it of items) held.push(it);
    if (holdMs > 0 && held.length < MAX_HELD && items.every(routine)) {
      if (held.length === items.length) holdUntil = monotonicNs() + BigInt(holdMs) * 1_000_000n;
      Atomics.store(ctl, C.HELD, held.length);
      Atomics.store(ctl, C.READING, 0);
      continue;
    }
    flush();
    Atomics.store(ctl, C.READING, 0);
  }

  function decode(
    w: Watch,
    bytes: Uint8Array,
    namelen: number,
    info: ReturnType<typeof parseCmsgs>,
  ): WireItem | null {
    switch (w.kind) {
      case KIND_VRRP4: {
        if (bytes.length < 20 || bytes[0]! >> 4 !== 4) return null;
        return {
          id: w.id,
          kind: KIND_VRRP4,
          data: bytes,
          src: formatIp(bytes, 12, 4),
          dst: formatIp(bytes, 16, 4),
          ttl: bytes[8]!,
          ifindex: info.ifindex ?? 0,
        };
      }
      case KIND_VRRP6:
        return {
          id: w.id,
          kind: KIND_VRRP6,
          data: bytes,
          src: sockaddrToIp(name, namelen),
          dst: info.dst ?? "",
          ttl: info.hopLimit ?? 0,
          ifindex: info.ifindex ?? 0,
        };
      case KIND_NETLINK:
        // only the kernel (port 0) sends notifications; anything else is not ours to trust
        if (namelen >= 8 && nameDv.getUint32(4, true) !== 0) return null;
        return { id: w.id, kind: KIND_NETLINK, data: bytes };
      case KIND_FRAME:
        return {
          id: w.id,
          kind: KIND_FRAME,
          data: bytes,
          ifindex: namelen >= 8 ? nameDv.getInt32(4, true) : 0,
          pktType: namelen >= 11 ? name[10]! : 0,
        };
      default:
        return null;
    }
  }
}
