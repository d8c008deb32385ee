// Fd readiness -> callbacks with whole datagrams, without blocking the event loop: a Worker thread
// poll()s the watched fds and posts what it reads (see reader.worker.ts).
//
// Worker location: from source the worker is the file next to this one. In a `bun build --compile`
// binary it must be an extra entry point (scripts/build.ts adds it, with --root at the repository
// root) and is addressed by a plain relative string that the binary resolves against /$bunfs/root/.
import { closeFd, eventFd, eventFdSignal, libc, SysError } from "./libc.ts";
import {
  C,
  CONTROL_BYTES,
  KIND_FRAME,
  KIND_INOTIFY,
  KIND_NETLINK,
  KIND_VRRP4,
  KIND_VRRP6,
  MAX_WATCHES,
  type WireItem,
  type WorkerMessage,
} from "./reader.shared.ts";
import type { RxPacket } from "./socket.ts";
import { POLLIN, PollSet } from "./structs.ts";

export type WatchKind = "vrrp4" | "vrrp6" | "netlink" | "frame" | "inotify";

/** One datagram from a netlink notification socket; `overrun` means the kernel dropped some (ENOBUFS). */
export interface NetlinkDatagram {
  kind: "netlink";
  data: Uint8Array;
  overrun: boolean;
}

/** A frame from an AF_PACKET socket (PacketSocket with receiveEthertype). */
export interface RxFrame {
  kind: "frame";
  data: Uint8Array;
  ifindex: number;
  /** PACKET_HOST 0, BROADCAST 1, MULTICAST 2, OTHERHOST 3, OUTGOING 4 */
  pktType: number;
}

/** What one read(2) of an inotify fd returned: whole inotify_event records (agent/wire/inotify.ts). */
export interface InotifyRead {
  kind: "inotify";
  data: Uint8Array;
}

export interface Delivery {
  vrrp4: RxPacket;
  vrrp6: RxPacket;
  netlink: NetlinkDatagram;
  frame: RxFrame;
  inotify: InotifyRead;
}

/** Called with receive errors of one fd; `removed` when the reader stopped polling it. */
export type FdErrorHandler = (err: SysError, removed: boolean) => void;

export interface PacketReaderOptions {
  /** Worker failures and exceptions thrown by callbacks (default: console.error). */
  onError?: (err: unknown) => void;
}

/** Module specifier of the worker, for source runs and for the compiled binary. */
export const WORKER_ENTRY = "ffi/reader.worker.ts";

function workerSpecifier(): string {
  if (Bun.main.startsWith("/$bunfs/")) return `./${WORKER_ENTRY}`;
  return `${import.meta.dir}/reader.worker.ts`;
}

const KIND_CODE: Record<WatchKind, number> = {
  vrrp4: KIND_VRRP4,
  vrrp6: KIND_VRRP6,
  netlink: KIND_NETLINK,
  frame: KIND_FRAME,
  inotify: KIND_INOTIFY,
};

interface Entry {
  id: number;
  fd: number;
  kind: WatchKind;
  onPacket: (p: Delivery[WatchKind]) => void;
  onError: FdErrorHandler | undefined;
}

const UNWATCH_TIMEOUT_MS = 2000;

export class PacketReader {
  /** resolves once the worker is polling (packets that arrive earlier wait in the socket buffers) */
  readonly ready: Promise<void>;
  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  private readonly efd: number;
  private readonly byFd = new Map<number, Entry>();
  private readonly byId = new Map<number, Entry>();
  private polls = new PollSet(4);
  private nextId = 1;
  private state: "running" | "closing" | "closed" | "failed" = "running";
  private readonly onError: (err: unknown) => void;
  private stopped: (() => void) | undefined;
  private markReady: (() => void) | undefined;

  constructor(opts: PacketReaderOptions = {}) {
    this.onError = opts.onError ?? ((e) => console.error("PacketReader:", e));
    this.ctl = new Int32Array(new SharedArrayBuffer(CONTROL_BYTES));
    this.efd = eventFd();
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
    this.worker = new Worker(workerSpecifier());
    this.worker.onmessage = (ev: MessageEvent) => this.handle(ev.data as WorkerMessage);
    this.worker.onerror = (ev: ErrorEvent) => {
      this.fail(new Error(`packet reader worker: ${ev.message}`));
    };
    this.worker.postMessage({ efd: this.efd, sab: this.ctl.buffer });
  }

  /** Starts delivering datagrams read from fd. The caller keeps owning the fd (unwatch before close). */
  watch<K extends WatchKind>(
    fd: number,
    kind: K,
    onPacket: (p: Delivery[K]) => void,
    onError?: FdErrorHandler,
  ): void {
    if (this.state !== "running") throw new Error(`PacketReader is ${this.state}`);
    if (this.byFd.has(fd)) throw new Error(`fd ${fd} is already watched`);
    if (this.byFd.size >= MAX_WATCHES) throw new Error(`PacketReader watches at most ${MAX_WATCHES} fds`);
    const e: Entry = { id: this.nextId++, fd, kind, onPacket: onPacket as Entry["onPacket"], onError };
    this.byFd.set(fd, e);
    this.byId.set(e.id, e);
    this.publish();
  }

  /**
   * Stops watching fd. When this returns the worker no longer touches the fd, so it may be closed
   * (and its number reused) at once. Datagrams already read from it are discarded.
   */
  unwatch(fd: number): void {
    const e = this.byFd.get(fd);
    if (!e) return;
    this.byFd.delete(fd);
    this.byId.delete(e.id);
    if (this.state !== "running") return;
    const gen = this.publish();
    this.awaitAck(gen);
  }

  /**
   * Lets the worker hold routine VRRP adverts (non-zero priority) for up to `ms` and deliver them
   * together; anything else (priority 0, netlink, frames, errors) still goes at once and takes the
   * held adverts with it. 0 turns it off.
   */
  coalesce(ms: number): void {
    Atomics.store(this.ctl, C.HOLD_MS, Math.max(0, Math.floor(ms)));
  }

  /**
   * True when VRRP datagrams have arrived that the main thread has not handled yet: posted by the
   * worker and queued behind whatever runs now, held for the coalescing window, being read by the
   * worker, or still unread in a watched VRRP socket (one poll() with no wait). A backup asks this before it takes over: after a
   * stall of the process its Master_Down timer can run before adverts that arrived in time.
   */
  pending(): boolean {
    if (this.state !== "running") return false;
    // Stages in the order a datagram passes them (socket, worker reading, held, posted), each entered
    // before the previous one is left: asking earlier stages first, a datagram moving on while this
    // runs is still seen in a later one.
    const fds = [...this.byFd.values()].filter((e) => e.kind === "vrrp4" || e.kind === "vrrp6");
    if (fds.length > 0) {
      if (this.polls.capacity < fds.length) this.polls = new PollSet(fds.length);
      for (const [i, e] of fds.entries()) this.polls.set(i, e.fd, POLLIN);
      if (libc().poll(this.polls.buf, fds.length, 0) > 0) return true;
    }
    if (Atomics.load(this.ctl, C.READING) !== 0) return true;
    if (Atomics.load(this.ctl, C.HELD) > 0) return true;
    return Atomics.load(this.ctl, C.POSTED) !== Atomics.load(this.ctl, C.CONSUMED);
  }

  get watching(): number[] {
    return [...this.byFd.keys()];
  }

  /** Stops the worker (waking it through the eventfd) and releases the eventfd. Idempotent. */
  async close(): Promise<void> {
    if (this.state === "closed") return;
    if (this.state === "running") {
      this.state = "closing";
      const done = new Promise<void>((resolve) => {
        this.stopped = resolve;
      });
      Atomics.store(this.ctl, C.STOP, 1);
      eventFdSignal(this.efd);
      // a worker that never started cannot answer; do not wait for it
      if (Atomics.load(this.ctl, C.READY) === 1) {
        await Promise.race([done, Bun.sleep(UNWATCH_TIMEOUT_MS)]);
      }
    }
    this.state = "closed";
    this.worker.terminate();
    closeFd(this.efd);
    this.byFd.clear();
    this.byId.clear();
  }

  /**
   * Writes the watch table under a seqlock (GEN odd while writing), wakes the worker, and returns the
   * (even) generation it will acknowledge.
   */
  private publish(): number {
    Atomics.add(this.ctl, C.GEN, 1);
    const entries = [...this.byFd.values()];
    entries.forEach((e, i) => {
      const base = C.TABLE + i * 3;
      Atomics.store(this.ctl, base, e.id);
      Atomics.store(this.ctl, base + 1, e.fd);
      Atomics.store(this.ctl, base + 2, KIND_CODE[e.kind]);
    });
    Atomics.store(this.ctl, C.COUNT, entries.length);
    const gen = Atomics.add(this.ctl, C.GEN, 1) + 1;
    eventFdSignal(this.efd);
    return gen;
  }

  private awaitAck(gen: number): void {
    // Before READY the worker has not read the table yet and will see this generation when it does.
    if (Atomics.load(this.ctl, C.READY) !== 1) return;
    const deadline = performance.now() + UNWATCH_TIMEOUT_MS;
    for (;;) {
      const acked = Atomics.load(this.ctl, C.ACK);
      if (acked >= gen) return;
      const left = deadline - performance.now();
      if (left <= 0) {
        this.onError(
          new Error(`PacketReader: worker did not acknowledge unwatch within ${UNWATCH_TIMEOUT_MS} ms`),
        );
        return;
      }
      Atomics.wait(this.ctl, C.ACK, acked, left);
    }
  }

  private handle(m: WorkerMessage): void {
    switch (m.t) {
      case "ready":
        this.markReady?.();
        return;
      case "batch":
        Atomics.add(this.ctl, C.CONSUMED, 1);
        Atomics.notify(this.ctl, C.CONSUMED);
        for (const item of m.items) this.deliver(item);
        return;
      case "error":
      case "gone": {
        const e = this.byId.get(m.id);
        if (!e) return;
        const removed = m.t === "gone";
        const err = new SysError("recvmsg", m.errno, removed ? `fd ${e.fd}: ${m.reason}` : `fd ${e.fd}`);
        if (e.onError) this.safely(() => e.onError?.(err, removed));
        else this.onError(err);
        return;
      }
      case "stopped":
        this.stopped?.();
        return;
      case "fatal":
        this.fail(new Error(`packet reader worker: ${m.message}`));
        return;
    }
  }

  private deliver(item: WireItem): void {
    const e = this.byId.get(item.id);
    if (!e) return; // unwatched since the worker read it
    let p: Delivery[WatchKind];
    switch (item.kind) {
      case KIND_VRRP4:
      case KIND_VRRP6:
        p = {
          family: item.kind === KIND_VRRP4 ? 4 : 6,
          data: item.data,
          src: item.src,
          dst: item.dst,
          ttl: item.ttl,
          ifindex: item.ifindex,
        };
        break;
      case KIND_NETLINK:
        p =
          "overrun" in item
            ? { kind: "netlink", data: new Uint8Array(0), overrun: true }
            : { kind: "netlink", data: item.data, overrun: false };
        break;
      case KIND_FRAME:
        p = { kind: "frame", data: item.data, ifindex: item.ifindex, pktType: item.pktType };
        break;
      case KIND_INOTIFY:
        p = { kind: "inotify", data: item.data };
        break;
    }
    this.safely(() => e.onPacket(p));
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.onError(err);
    }
  }

  private fail(err: Error): void {
    if (this.state === "closed") return;
    if (this.state === "closing") {
      this.stopped?.();
      return;
    }
    this.state = "failed";
    this.onError(err);
  }
}
