// Non-blocking TCP connects with the socket options Bun's own sockets cannot set (SO_BINDTODEVICE for
// a checker's bind_if, SO_MARK for its fwmark), for TCP_CHECK: start the connect, ask poll() later
// whether it completed, close with RST (SO_LINGER 0, as Bun's terminate() does) so no TIME_WAIT is
// left behind. The caller drives the polling (agent/check/tcp.ts); nothing here blocks.
import { errnoName } from "../agent/wire/errno.ts";
import {
  buffer,
  check,
  closeFd,
  getsockoptInt,
  ifNameToIndex,
  lastErrno,
  libc,
  SysError,
  setsockoptInt,
} from "./libc.ts";
import { bindToDevice } from "./socket.ts";
import {
  AF_INET,
  AF_INET6,
  POLLERR,
  POLLHUP,
  POLLOUT,
  PollSet,
  SO_ERROR,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOL_SOCKET,
  sockaddrIn,
  sockaddrIn6,
} from "./structs.ts";

const SOCK_STREAM = 1;
const IPPROTO_TCP = 6;
const SO_MARK = 36;
const SO_LINGER = 13;
const EINPROGRESS = 115;

export interface TcpConnectSpec {
  family: 4 | 6;
  dst: string;
  port: number;
  /** local address (bindto) */
  src?: string;
  /** local port (bind_port) */
  srcPort?: number;
  /** interface to bind to (bind_if); also the scope of a link-local IPv6 destination */
  bindIf?: string;
  /** SO_MARK (fwmark) */
  mark?: number;
}

/**
 * Starts a connect; returns the socket, connecting or (rarely, on loopback) already connected.
 * Throws SysError when the kernel refuses at once (EPERM for SO_MARK without CAP_NET_ADMIN, ENODEV
 * for an unknown bind_if, ENETUNREACH, ...); the socket is closed then.
 */
export function startTcpConnect(spec: TcpConnectSpec): number {
  const af = spec.family === 4 ? AF_INET : AF_INET6;
  const fd = check(
    "socket",
    libc().socket(af, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP),
    "TCP",
  );
  try {
    let scope = 0;
    if (spec.bindIf !== undefined) {
      bindToDevice(fd, spec.bindIf);
      scope = ifNameToIndex(spec.bindIf);
    }
    if (spec.mark !== undefined) setsockoptInt(fd, SOL_SOCKET, SO_MARK, spec.mark | 0, "SO_MARK");
    if (spec.src !== undefined || spec.srcPort !== undefined) {
      const src = spec.src ?? (spec.family === 4 ? "0.0.0.0" : "::");
      const sa =
        spec.family === 4 ? sockaddrIn(src, spec.srcPort ?? 0) : sockaddrIn6(src, 0, spec.srcPort ?? 0);
      check("bind", libc().bind(fd, sa, sa.length), src);
    }
    const sa = spec.family === 4 ? sockaddrIn(spec.dst, spec.port) : sockaddrIn6(spec.dst, scope, spec.port);
    if (libc().connect(fd, sa, sa.length) < 0) {
      const e = lastErrno();
      if (e !== EINPROGRESS) throw new SysError("connect", e, spec.dst);
    }
    return fd;
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

/**
 * Which of the connecting sockets have finished: for each fd, null (still connecting), "connected",
 * or the errno name of the failure ("ECONNREFUSED", ...). One poll() with a zero timeout.
 */
export function pollTcpConnects(fds: readonly number[]): (string | null)[] {
  const polls = new PollSet(fds.length);
  for (const [i, fd] of fds.entries()) polls.set(i, fd, POLLOUT);
  check("poll", libc().poll(polls.buf, fds.length, 0));
  return fds.map((fd, i) => {
    if (!(polls.revents(i) & (POLLOUT | POLLERR | POLLHUP))) return null;
    const err = getsockoptInt(fd, SOL_SOCKET, SO_ERROR, "SO_ERROR");
    return err === 0 ? "connected" : errnoName(err);
  });
}

const LINGER0 = buffer(8);
new DataView(LINGER0.buffer).setInt32(0, 1, true);

/** Closes a socket at once: RST if connected, nothing left in TIME_WAIT or SYN_SENT. */
export function abortTcpConnect(fd: number): void {
  libc().setsockopt(fd, SOL_SOCKET, SO_LINGER, LINGER0, 8);
  closeFd(fd);
}
