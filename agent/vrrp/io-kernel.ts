// VrrpIo on the real kernel: raw VRRP sockets and AF_PACKET through ffi/, rtnetlink through
// net/kernel.ts, all receive paths multiplexed by one PacketReader worker.

import { inotifyAddWatch, inotifyInit, inotifyRmWatch } from "../../ffi/inotify.ts";
import { closeFd } from "../../ffi/libc.ts";
import { PacketReader } from "../../ffi/reader.ts";
import { openPacketSocket, openVrrpSocket, type PacketSocket, type VrrpSocket } from "../../ffi/socket.ts";
import { type AddAddressOptions, Kernel, type LinkInfo } from "../net/kernel.ts";
import type { Logger } from "../observe/log.ts";
import {
  decodeInotifyEvents,
  IN_CLOSE_WRITE,
  IN_DELETE,
  IN_ISDIR,
  IN_MOVE,
  IN_MOVED_FROM,
  IN_Q_OVERFLOW,
} from "../wire/inotify.ts";
import type { AddressOps, IfaceInfo, VrrpIo, VrrpRx, VrrpTx } from "./io.ts";

type DirHandler = (name: string | null, gone: boolean) => void;

export class KernelIo implements VrrpIo {
  readonly kernel: AddressOps;
  private readonly links = new Map<string, LinkInfo>();
  private readonly endpoints = new Map<string, VrrpSocket>();
  private readonly packetSockets = new Map<number, PacketSocket>();
  private readonly linkListeners: (() => void)[] = [];
  private unwatchKernel: (() => void) | null = null;
  /** one inotify fd for every watched directory, opened on first use */
  private inotifyFd = -1;
  private readonly dirWatches = new Map<number, { dir: string; handlers: Set<DirHandler> }>();

  private constructor(
    private readonly nl: Kernel,
    private readonly reader: PacketReader,
    private readonly log: Logger,
  ) {
    this.kernel = {
      addAddress: (ifindex, address, prefixLen, opts) => {
        const o: AddAddressOptions = {
          nodad: opts.nodad ?? false,
          noPrefixRoute: opts.noPrefixRoute ?? false,
        };
        if (opts.label) o.label = opts.label;
        if (opts.scope !== undefined) o.scope = opts.scope;
        if (opts.broadcast) o.broadcast = opts.broadcast;
        nl.addAddress(ifindex, address, prefixLen, o);
      },
      delAddress: (ifindex, address, prefixLen) => {
        nl.delAddress(ifindex, address, prefixLen);
      },
      addressesOf: (ifindex) => nl.addresses(ifindex).map((a) => a.address),
    };
    this.refreshLinks();
    this.unwatchKernel = nl.watch(reader, (e) => {
      if (e.type === "link") {
        if (e.action === "del") this.links.delete(e.link.name);
        else this.links.set(e.link.name, e.link);
      } else if (e.type === "overrun") {
        this.log.warn("netlink notifications overran; re-reading links");
        this.refreshLinks();
      }
      // address events too: an instance waiting for its interface's address starts on them
      for (const l of this.linkListeners) l();
    });
  }

  static async open(log: Logger): Promise<KernelIo> {
    const reader = new PacketReader({
      onError: (err) => log.error({ err: String(err) }, "packet reader error"),
    });
    await reader.ready;
    return new KernelIo(Kernel.open(), reader, log);
  }

  private refreshLinks(): void {
    this.links.clear();
    for (const l of this.nl.links()) this.links.set(l.name, l);
  }

  iface(name: string): IfaceInfo | null {
    const l = this.links.get(name) ?? this.nl.link(name);
    if (!l) return null;
    const primary: IfaceInfo["primary"] = {};
    const v4 = this.nl.primaryAddress(l.ifindex, 4);
    const v6 = this.nl.primaryAddress(l.ifindex, 6);
    if (v4) primary[4] = v4;
    if (v6) primary[6] = v6;
    return { name: l.name, ifindex: l.ifindex, mac: l.mac, primary };
  }

  /** keepalived's notion of an interface being up: administratively up and running (carrier). */
  linkUp(name: string): boolean {
    const l = this.links.get(name);
    return l?.up === true && l.running;
  }

  open(
    iface: IfaceInfo,
    family: 4 | 6,
    src: string,
    group: string | null,
    onRx: (rx: VrrpRx) => void,
  ): VrrpTx {
    const key = `${iface.ifindex}/${family}/${src}/${group ?? "u"}`;
    let sock = this.endpoints.get(key);
    if (!sock) {
      sock = openVrrpSocket({
        family,
        ifname: iface.name,
        ifindex: iface.ifindex,
        src,
        multicast: group !== null,
        ...(group !== null ? { group } : {}),
      });
      this.endpoints.set(key, sock);
      for (const fd of sock.fds) {
        this.reader.watch(fd, sock.kind, onRx, (err, removed) =>
          this.log.error(
            { err: err.message, code: err.code, removed, iface: iface.name },
            "VRRP socket error",
          ),
        );
      }
    }
    const s = sock;
    return { send: (payload, dst) => s.send(payload, dst) };
  }

  sendFrame(ifindex: number, frame: Uint8Array): void {
    let ps = this.packetSockets.get(ifindex);
    if (!ps) {
      ps = openPacketSocket(ifindex);
      this.packetSockets.set(ifindex, ps);
    }
    ps.sendFrame(frame);
  }

  coalesce(ms: number): void {
    this.reader.coalesce(ms);
  }

  pendingInput(): boolean {
    return this.reader.pending();
  }

  /**
   * keepalived's track_file watch (IN_CLOSE_WRITE | IN_DELETE | IN_MOVE on the directory): a file is
   * read once its writer closed it, never half written.
   */
  watchDirectory(dir: string, onEvent: DirHandler): () => void {
    if (this.inotifyFd < 0) {
      this.inotifyFd = inotifyInit();
      this.reader.watch(
        this.inotifyFd,
        "inotify",
        (r) => this.onInotify(r.data),
        (err) => this.log.error({ err: err.message, code: err.code }, "inotify read error"),
      );
    }
    const wd = inotifyAddWatch(this.inotifyFd, dir, IN_CLOSE_WRITE | IN_DELETE | IN_MOVE);
    let w = this.dirWatches.get(wd);
    if (!w) {
      w = { dir, handlers: new Set() };
      this.dirWatches.set(wd, w);
    }
    w.handlers.add(onEvent);
    const entry = w;
    return () => {
      entry.handlers.delete(onEvent);
      if (entry.handlers.size > 0 || this.dirWatches.get(wd) !== entry) return;
      this.dirWatches.delete(wd);
      try {
        inotifyRmWatch(this.inotifyFd, wd);
      } catch {
        // the directory is gone, and the kernel dropped the watch with it
      }
    };
  }

  private onInotify(data: Uint8Array): void {
    const r = decodeInotifyEvents(data);
    if (!r.ok) {
      this.log.warn({ reason: r.error.toString() }, "inotify: undecodable events");
      return;
    }
    for (const e of r.value) {
      if (e.mask & IN_Q_OVERFLOW) {
        for (const w of this.dirWatches.values()) for (const h of w.handlers) h(null, false);
        continue;
      }
      if (e.mask & IN_ISDIR || e.name === "") continue;
      const w = this.dirWatches.get(e.wd);
      if (!w) continue;
      const gone = (e.mask & (IN_DELETE | IN_MOVED_FROM)) !== 0;
      for (const h of w.handlers) h(e.name, gone);
    }
  }

  onLinkChange(cb: () => void): void {
    this.linkListeners.push(cb);
  }

  async close(): Promise<void> {
    this.unwatchKernel?.();
    this.unwatchKernel = null;
    for (const s of this.endpoints.values()) {
      for (const fd of s.fds) this.reader.unwatch(fd);
      s.close();
    }
    this.endpoints.clear();
    for (const p of this.packetSockets.values()) p.close();
    this.packetSockets.clear();
    if (this.inotifyFd >= 0) {
      this.reader.unwatch(this.inotifyFd);
      closeFd(this.inotifyFd);
      this.inotifyFd = -1;
      this.dirWatches.clear();
    }
    await this.reader.close();
    this.nl.close();
  }
}
