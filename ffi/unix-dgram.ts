// Unix datagram sockets (AF_UNIX, SOCK_DGRAM) through bun:ffi. Bun's own socket APIs cover unix
// *stream* sockets only, and systemd's notification protocol ($NOTIFY_SOCKET) is datagrams: one
// message per sendto(). Also CLOCK_MONOTONIC, which sd_notify's RELOADING=1 must carry and which
// JavaScript cannot read (performance.now() has an arbitrary origin).
import { dlopen, FFIType } from "bun:ffi";
import { buffer, check, closeFd, lastErrno, libc, SysError } from "./libc.ts";
import { EAGAIN, MSG_DONTWAIT, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from "./structs.ts";

export const AF_UNIX = 1;
const MSG_NOSIGNAL = 0x4000;
/** sizeof(struct sockaddr_un): sa_family_t (2 bytes) + sun_path[108] */
const SOCKADDR_UN_LEN = 110;
const SUN_PATH_MAX = 108;
const EINTR = 4;

/**
 * struct sockaddr_un for `path`; a leading "@" names a Linux abstract socket (sun_path[0] = NUL,
 * no terminator, and the length passed to the kernel counts exactly the name bytes), as systemd
 * writes it in $NOTIFY_SOCKET.
 */
export function sockaddrUn(path: string): { addr: Uint8Array; len: number } {
  if (path.length === 0) throw new SysError("sockaddr_un", 22, "empty path");
  const abstract = path.startsWith("@");
  const name = new TextEncoder().encode(abstract ? path.slice(1) : path);
  // either a path plus its NUL or a leading NUL plus the name: 107 bytes of name at most
  if (name.length > SUN_PATH_MAX - 1) throw new SysError("sockaddr_un", 36, path); // ENAMETOOLONG
  const addr = buffer(SOCKADDR_UN_LEN);
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  if (abstract) {
    addr.set(name, 3);
    return { addr, len: 2 + 1 + name.length };
  }
  addr.set(name, 2);
  return { addr, len: 2 + name.length + 1 };
}

export class UnixDgramSocket {
  private open = true;
  private constructor(readonly fd: number) {}

  /** An unbound, non-blocking socket for sending (the kernel auto-binds it when needed). */
  static create(): UnixDgramSocket {
    const fd = check(
      "socket",
      libc().socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0),
      "AF_UNIX",
    );
    return new UnixDgramSocket(fd);
  }

  /** A non-blocking socket bound to `path` (or "@abstract") for receiving. */
  static bind(path: string): UnixDgramSocket {
    const s = UnixDgramSocket.create();
    const { addr, len } = sockaddrUn(path);
    const r = libc().bind(s.fd, addr, len);
    if (r < 0) {
      const err = new SysError("bind", lastErrno(), path);
      s.close();
      throw err;
    }
    return s;
  }

  /**
   * Sends one datagram to `path`. Throws SysError: ENOENT/ECONNREFUSED when nobody listens, EAGAIN
   * when the receiver's queue is full (the socket is non-blocking, so a stuck receiver cannot block
   * the caller's event loop).
   */
  sendTo(path: string, data: Uint8Array): void {
    this.assertOpen();
    const { addr, len } = sockaddrUn(path);
    // the kernel reads from this address: hand it a buffer that owns its ArrayBuffer
    const msg = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
    for (;;) {
      const n = libc().sendto(this.fd, msg, msg.length, MSG_NOSIGNAL, addr, len);
      if (n >= 0) return;
      const e = lastErrno();
      if (e !== EINTR) throw new SysError("sendto", e, path);
    }
  }

  /** One datagram, or null when none is queued (EAGAIN). Longer datagrams are truncated to `max`. */
  recv(max = 4096): Uint8Array | null {
    this.assertOpen();
    const b = buffer(max);
    for (;;) {
      const n = libc().recvfrom(this.fd, b, max, MSG_DONTWAIT, null, null);
      if (n >= 0) return b.slice(0, Number(n));
      const e = lastErrno();
      if (e === EAGAIN) return null;
      if (e !== EINTR) throw new SysError("recvfrom", e);
    }
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    closeFd(this.fd);
  }

  private assertOpen(): void {
    if (!this.open) throw new SysError("socket", 9, "closed"); // EBADF
  }
}

const CLOCK_MONOTONIC = 1;

let clockLib: { clock_gettime: (clk: number, ts: Uint8Array) => number } | undefined;

/** CLOCK_MONOTONIC in microseconds, the clock systemd compares MONOTONIC_USEC= against. */
export function monotonicUsec(): bigint {
  clockLib ??= dlopen("libc.so.6", {
    clock_gettime: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  }).symbols;
  const ts = buffer(16);
  check("clock_gettime", clockLib.clock_gettime(CLOCK_MONOTONIC, ts), "CLOCK_MONOTONIC");
  const v = new DataView(ts.buffer);
  return v.getBigInt64(0, true) * 1_000_000n + v.getBigInt64(8, true) / 1000n;
}
