// Which user and group an operator script runs as (keepalived's script_user / per-script `user`).
// vigil itself runs as root (raw sockets, netlink), and a tracking or notify script is operator code
// that has no need for that: like keepalived, it runs as `script_user` when set, else as
// `keepalived_script` when that account exists, else as root. A per-script `user NAME [GROUP]`
// (vrrp_script, MISC_CHECK) overrides the default.
//
// Accounts are looked up through libc (getpwnam_r / getgrnam_r), as keepalived's getpwnam() does, so
// accounts that only NSS modules know (LDAP, sssd) count; `vigil check` uses the same lookups. Should
// libc fail, /etc/passwd and /etc/group are read instead.
import { readFileSync } from "node:fs";
import { lookupGroup, lookupUser } from "../../ffi/accounts.ts";

export interface Identity {
  user: string;
  uid: number;
  gid: number;
}

/** Lookups by name; a Map is one (tests), the system's accounts another. */
export interface AccountDb {
  users: Pick<ReadonlyMap<string, { uid: number; gid: number }>, "get" | "has">;
  groups: Pick<ReadonlyMap<string, number>, "get" | "has">;
}

/** keepalived's default script user, used when script_user is not set and the account exists. */
export const DEFAULT_SCRIPT_USER = "keepalived_script";

/** Parses /etc/passwd text; malformed lines are skipped (a broken line must not hide the others). */
export function parsePasswd(text: string): Map<string, { uid: number; gid: number }> {
  const out = new Map<string, { uid: number; gid: number }>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4 || !f[0] || line.startsWith("#")) continue;
    const uid = idField(f[2]);
    const gid = idField(f[3]);
    if (uid !== null && gid !== null && !out.has(f[0])) out.set(f[0], { uid, gid });
  }
  return out;
}

/** Parses /etc/group text: name -> gid. */
export function parseGroup(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 3 || !f[0] || line.startsWith("#")) continue;
    const gid = idField(f[2]);
    if (gid !== null && !out.has(f[0])) out.set(f[0], gid);
  }
  return out;
}

function idField(s: string | undefined): number | null {
  if (s === undefined || !/^\d{1,10}$/.test(s)) return null;
  const n = Number(s);
  return n <= 0xfffffffe ? n : null;
}

export interface ScriptUserSettings {
  /** global_defs script_user */
  scriptUser?: string | undefined;
  /** global_defs script_user's group */
  scriptGroup?: string | undefined;
}

/**
 * The identity a script runs as: its own `user`/`group` when given, else the global default. An
 * unknown user or group is an error string (the config check refuses such configs; this is the
 * runtime's guard for accounts removed since).
 */
export function resolveIdentity(
  db: AccountDb,
  global: ScriptUserSettings,
  own: { user?: string | undefined; group?: string | undefined } = {},
): Identity | { error: string } {
  let user: string;
  let group: string | undefined;
  if (own.user !== undefined) {
    user = own.user;
    group = own.group;
  } else if (global.scriptUser !== undefined) {
    user = global.scriptUser;
    group = global.scriptGroup;
  } else {
    user = db.users.has(DEFAULT_SCRIPT_USER) ? DEFAULT_SCRIPT_USER : "root";
    group = undefined;
  }
  const u = db.users.get(user);
  if (!u) {
    // root is root even on a machine without a passwd entry for it
    if (user === "root" && group === undefined) return { user, uid: 0, gid: 0 };
    return { error: `script user '${user}' does not exist` };
  }
  if (group === undefined) return { user, uid: u.uid, gid: u.gid };
  const gid = db.groups.get(group);
  if (gid === undefined) return { error: `script group '${group}' does not exist` };
  return { user, uid: u.uid, gid };
}

/** Answers kept this long: scripts start often (tracking scripts every interval), but an account
 * added for a reload should be seen. */
const CACHE_MS = 10_000;

/** A lookup by name with answers cached for CACHE_MS, and the files as a fallback when libc fails. */
function cachedLookup<T>(look: (name: string) => T | null, fromFiles: () => ReadonlyMap<string, T>) {
  const cache = new Map<string, { v: T | undefined; at: number }>();
  const get = (name: string): T | undefined => {
    const now = Date.now();
    const hit = cache.get(name);
    if (hit && now - hit.at < CACHE_MS) return hit.v;
    let v: T | undefined;
    try {
      v = look(name) ?? undefined;
    } catch {
      v = fromFiles().get(name);
    }
    if (cache.size > 1024) cache.clear();
    cache.set(name, { v, at: now });
    return v;
  };
  return { get, has: (name: string) => get(name) !== undefined };
}

const readText = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};

const system: AccountDb = {
  users: cachedLookup(lookupUser, () => parsePasswd(readText("/etc/passwd"))),
  groups: cachedLookup(lookupGroup, () => parseGroup(readText("/etc/group"))),
};

/** This machine's accounts, as libc's name service sees them. */
export function systemAccounts(): AccountDb {
  return system;
}
