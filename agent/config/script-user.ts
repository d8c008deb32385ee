// Which user and group an operator script runs as (keepalived's script_user / per-script `user`).
// vigil itself runs as root (raw sockets, netlink), and a tracking or notify script is operator code
// that has no need for that: like keepalived, it runs as `script_user` when set, else as
// `keepalived_script` when that account exists, else as root. A per-script `user NAME [GROUP]`
// (vrrp_script, MISC_CHECK) overrides the default.
//
// Accounts are read from /etc/passwd and /etc/group, the same source `vigil check` uses to say a user
// does not exist (accounts known only to NSS modules such as LDAP are not seen; keepalived's
// getpwnam() would see them).
import { readFileSync } from "node:fs";

export interface Identity {
  user: string;
  uid: number;
  gid: number;
}

export interface AccountDb {
  users: ReadonlyMap<string, { uid: number; gid: number }>;
  groups: ReadonlyMap<string, number>;
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

let cached: { db: AccountDb; at: number } | undefined;

/**
 * This machine's accounts, re-read at most every 10 s: scripts start often (tracking scripts every
 * interval) and the files rarely change, but an account added for a reload should be seen.
 */
export function systemAccounts(now = Date.now()): AccountDb {
  if (cached && now - cached.at < 10_000) return cached.db;
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  const db = { users: parsePasswd(read("/etc/passwd")), groups: parseGroup(read("/etc/group")) };
  cached = { db, at: now };
  return db;
}
