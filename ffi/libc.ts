// libc through bun:ffi: the raw symbols, errno, and SysError. Everything with pointers lives in ffi/;
// code above it sees typed functions and typed errors only.
//
// Pointer arguments are declared "ptr" and given Uint8Arrays backed by their own ArrayBuffer (allocated
// once, never resized), so the address the kernel writes to stays valid for the whole call.
import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { errnoName } from "../agent/wire/errno.ts";

const { i32, u32, u64, i64_fast: ssize, ptr: p, cstring } = FFIType;

const defs = {
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, p, u32], returns: i32 },
  connect: { args: [i32, p, u32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, p, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, p, p], returns: i32 },
  sendto: { args: [i32, p, u64, i32, p, u32], returns: ssize },
  sendmsg: { args: [i32, p, i32], returns: ssize },
  recvfrom: { args: [i32, p, u64, i32, p, p], returns: ssize },
  recvmsg: { args: [i32, p, i32], returns: ssize },
  poll: { args: [p, u64, i32], returns: i32 },
  close: { args: [i32], returns: i32 },
  // variadic in C; the third argument is an int for every command we use
  fcntl: { args: [i32, i32, i32], returns: i32 },
  if_nametoindex: { args: [p], returns: u32 },
  if_indextoname: { args: [u32, p], returns: p },
  eventfd: { args: [u32, i32], returns: i32 },
  read: { args: [i32, p, u64], returns: ssize },
  write: { args: [i32, p, u64], returns: ssize },
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  getpid: { args: [], returns: i32 },
  clock_gettime: { args: [i32, p], returns: i32 },
  strerror: { args: [i32], returns: cstring },
  // (name, struct passwd/group *, buf, buflen, result **): 0 or an errno
  getpwnam_r: { args: [p, p, p, u64, p], returns: i32 },
  getgrnam_r: { args: [p, p, p, u64, p], returns: i32 },
  mkfifo: { args: [p, u32], returns: i32 },
  inotify_init1: { args: [i32], returns: i32 },
  inotify_add_watch: { args: [i32, p, u32], returns: i32 },
  inotify_rm_watch: { args: [i32, i32], returns: i32 },
  __errno_location: { args: [], returns: p },
} as const;

type Libc = ReturnType<typeof dlopen<typeof defs>>["symbols"];

let lib: Libc | undefined;

/** The libc symbols; opened on first use so importing ffi/ has no side effects (pure tests import it). */
export function libc(): Libc {
  lib ??= dlopen("libc.so.6", defs).symbols;
  return lib;
}

/** errno of the calling thread. Call it right after the failing call: any other libc call may change it. */
export function lastErrno(): number {
  const loc = libc().__errno_location();
  return loc === null ? 0 : read.i32(loc, 0);
}

/** A failed system call: symbolic code ("EPERM", "ENODEV", ...), numeric errno and which call failed. */
export class SysError extends Error {
  override readonly name = "SysError";
  readonly code: string;
  constructor(
    readonly syscall: string,
    readonly errno: number,
    detail = "",
  ) {
    const code = errnoName(errno);
    super(`${syscall}${detail ? ` ${detail}` : ""}: ${code} (${describe(errno)})`);
    this.code = code;
  }
}

function describe(errno: number): string {
  try {
    return libc().strerror(errno) ?? `errno ${errno}`;
  } catch {
    return `errno ${errno}`;
  }
}

/** Builds a SysError from the current errno; must be the first thing after the failing call. */
export function sysError(syscall: string, detail = ""): SysError {
  return new SysError(syscall, lastErrno(), detail);
}

/** Throws SysError when a libc call returned a negative value; returns the value otherwise. */
export function check(syscall: string, ret: number | bigint, detail = ""): number {
  if (ret < 0) throw sysError(syscall, detail);
  return Number(ret);
}

/** A byte buffer with its own ArrayBuffer, safe to hand to the kernel by address. */
export function buffer(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

/** Address of a buffer, for structs that carry pointers (msghdr, iovec, sock_fprog). */
export function addressOf(buf: Uint8Array): number {
  return ptr(buf);
}

export function cString(s: string): Uint8Array {
  const b = new TextEncoder().encode(s);
  const out = buffer(b.length + 1);
  out.set(b);
  return out;
}

export function closeFd(fd: number): void {
  if (fd >= 0) libc().close(fd);
}

export function setsockoptInt(fd: number, level: number, name: number, value: number, what: string): void {
  const b = buffer(4);
  new DataView(b.buffer).setInt32(0, value, true);
  check("setsockopt", libc().setsockopt(fd, level, name, b, 4), what);
}

export function setsockoptBytes(
  fd: number,
  level: number,
  name: number,
  value: Uint8Array,
  what: string,
): void {
  const b = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength ? value : value.slice();
  check("setsockopt", libc().setsockopt(fd, level, name, b, b.length), what);
}

export function getsockoptInt(fd: number, level: number, name: number, what: string): number {
  const b = buffer(4);
  const len = buffer(4);
  new DataView(len.buffer).setUint32(0, 4, true);
  check("getsockopt", libc().getsockopt(fd, level, name, b, len), what);
  return new DataView(b.buffer).getInt32(0, true);
}

const F_GETFL = 3;
const F_SETFL = 4;
export const O_NONBLOCK = 0x800;

export function setNonBlocking(fd: number, on = true): void {
  const flags = check("fcntl", libc().fcntl(fd, F_GETFL, 0), "F_GETFL");
  const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (next !== flags) check("fcntl", libc().fcntl(fd, F_SETFL, next), "F_SETFL");
}

export const EFD_NONBLOCK = 0x800;
export const EFD_CLOEXEC = 0x80000;

/** A non-blocking, close-on-exec eventfd. */
export function eventFd(): number {
  return check("eventfd", libc().eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

const one = new BigUint64Array(new ArrayBuffer(8));
one[0] = 1n;
const oneBytes = new Uint8Array(one.buffer);

/** Adds 1 to an eventfd counter (wakes a poll() on it). */
export function eventFdSignal(fd: number): void {
  check("write", libc().write(fd, oneBytes, 8), "eventfd");
}

const drainBuf = buffer(8);

/** Resets an eventfd counter; false if it was already 0 (EAGAIN). */
export function eventFdDrain(fd: number): boolean {
  return libc().read(fd, drainBuf, 8) === 8;
}

const PR_SET_PDEATHSIG = 1;

/** Makes the kernel send `sig` to this process when its parent thread exits. */
export function prctlDeathSignal(sig: number): void {
  check("prctl", libc().prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0), "PR_SET_PDEATHSIG");
}

const CLOCK_MONOTONIC = 1;
const timespec = buffer(16);
const timespecView = new DataView(timespec.buffer);

/**
 * CLOCK_MONOTONIC in nanoseconds: one clock for every process of the host (network namespaces do not
 * change it), unlike process.hrtime, whose origin differs between Bun processes.
 */
export function monotonicNs(): bigint {
  check("clock_gettime", libc().clock_gettime(CLOCK_MONOTONIC, timespec), "CLOCK_MONOTONIC");
  return timespecView.getBigInt64(0, true) * 1_000_000_000n + timespecView.getBigInt64(8, true);
}

export function getPid(): number {
  return libc().getpid();
}

/** Interface index by name; throws SysError ENODEV when there is no such interface. */
export function ifNameToIndex(name: string): number {
  if (name.length >= 16) throw new SysError("if_nametoindex", 19, name);
  const idx = libc().if_nametoindex(cString(name));
  if (idx === 0) {
    const e = lastErrno();
    // glibc reports ENODEV; some paths leave errno at 0
    throw new SysError("if_nametoindex", e === 0 ? 19 : e, name);
  }
  return idx;
}

/** Interface name by index; throws SysError ENXIO when there is no such interface. */
export function ifIndexToName(ifindex: number): string {
  const b = buffer(16);
  const r = libc().if_indextoname(ifindex >>> 0, b);
  if (r === null || r === 0) {
    const e = lastErrno();
    throw new SysError("if_indextoname", e === 0 ? 6 : e, String(ifindex));
  }
  const nul = b.indexOf(0);
  return new TextDecoder().decode(b.subarray(0, nul < 0 ? b.length : nul));
}
