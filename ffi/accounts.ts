// User and group lookups through libc's getpwnam_r / getgrnam_r, so that accounts known only to NSS
// modules (LDAP, sssd, systemd's dynamic users) are seen as keepalived's getpwnam() sees them.
import { cString, libc, SysError } from "./libc.ts";

const ERANGE = 34;
// "not found" as glibc and NSS modules report it besides a null result (getpwnam_r(3))
const NOT_FOUND = new Set([2 /* ENOENT */, 3 /* ESRCH */, 9 /* EBADF */, 1 /* EPERM */]);
// x86_64 glibc layouts: struct passwd { char *name, *passwd; uid_t uid; gid_t gid; char *gecos, *dir,
// *shell } and struct group { char *name, *passwd; gid_t gid; char **mem }
const PASSWD_SIZE = 48;
const GROUP_SIZE = 32;
const MAX_BUF = 1 << 20;

type Call = (name: Uint8Array, out: Uint8Array, buf: Uint8Array, len: number, result: Uint8Array) => number;

/** Runs a *nam_r call, growing the string buffer on ERANGE; the filled struct, or null when not found. */
function lookup(what: string, call: Call, name: string, size: number): DataView | null {
  if (name === "" || name.includes("\0")) return null;
  const cname = cString(name);
  const out = new Uint8Array(size);
  const result = new Uint8Array(8);
  for (let len = 1024; ; len *= 4) {
    const buf = new Uint8Array(len);
    const rc = call(cname, out, buf, len, result);
    if (rc === ERANGE && len < MAX_BUF) continue;
    if (rc !== 0) {
      if (NOT_FOUND.has(rc)) return null;
      throw new SysError(what, rc, name);
    }
    if (new DataView(result.buffer).getBigUint64(0, true) === 0n) return null;
    return new DataView(out.buffer);
  }
}

/** uid and primary gid of a user, or null when no such user exists. Throws SysError on lookup failure. */
export function lookupUser(name: string): { uid: number; gid: number } | null {
  const sys = libc();
  const pw = lookup("getpwnam_r", (n, o, b, l, r) => sys.getpwnam_r(n, o, b, l, r), name, PASSWD_SIZE);
  return pw ? { uid: pw.getUint32(16, true), gid: pw.getUint32(20, true) } : null;
}

/** gid of a group, or null when no such group exists. Throws SysError on lookup failure. */
export function lookupGroup(name: string): number | null {
  const sys = libc();
  const gr = lookup("getgrnam_r", (n, o, b, l, r) => sys.getgrnam_r(n, o, b, l, r), name, GROUP_SIZE);
  return gr ? gr.getUint32(16, true) : null;
}
