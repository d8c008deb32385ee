// inotify through libc: an fd the PacketReader polls (kind "inotify") and the watches on it.
// Events are decoded above ffi/ (agent/wire/inotify.ts).
import { check, cString, libc, sysError } from "./libc.ts";

const IN_NONBLOCK = 0x800;
const IN_CLOEXEC = 0x80000;

/** A non-blocking, close-on-exec inotify instance. */
export function inotifyInit(): number {
  const fd = libc().inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw sysError("inotify_init1");
  return fd;
}

/** Watches `path` for `mask` events; returns the watch descriptor (the same one for a path watched twice). */
export function inotifyAddWatch(fd: number, path: string, mask: number): number {
  const wd = libc().inotify_add_watch(fd, cString(path), mask >>> 0);
  if (wd < 0) throw sysError("inotify_add_watch", path);
  return wd;
}

export function inotifyRmWatch(fd: number, wd: number): void {
  check("inotify_rm_watch", libc().inotify_rm_watch(fd, wd));
}
