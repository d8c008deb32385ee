// Which identity operator scripts run as: /etc/passwd and /etc/group parsing and keepalived's
// precedence (a script's own user, then script_user, then keepalived_script, then root).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type AccountDb,
  parseGroup,
  parsePasswd,
  resolveIdentity,
  systemAccounts,
} from "../../agent/config/script-user.ts";
import { lookupGroup, lookupUser } from "../../ffi/accounts.ts";

const passwd = [
  "root:x:0:0:root:/root:/bin/bash",
  "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
  "# a comment:x:5:5",
  "broken line",
  "neg:x:-1:3::/:/bin/false",
  "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
  "daemon:x:999:999:a second entry does not override the first::",
].join("\n");
const group = ["root:x:0:", "daemon:x:1:", "web:x:33:alice,bob", "nogroup:x:65534:", "bad:x:abc:"].join("\n");

describe("passwd and group files", () => {
  test("well-formed entries are read, malformed ones skipped, the first entry wins", () => {
    const u = parsePasswd(passwd);
    expect([...u.keys()]).toEqual(["root", "daemon", "nobody"]);
    expect(u.get("daemon")).toEqual({ uid: 1, gid: 1 });
    expect(u.get("nobody")).toEqual({ uid: 65534, gid: 65534 });
    const g = parseGroup(group);
    expect(g.get("web")).toBe(33);
    expect(g.has("bad")).toBe(false);
  });

  test("any text parses without throwing, and every id read is a valid uid/gid", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        for (const v of parsePasswd(text).values()) {
          expect(Number.isInteger(v.uid) && v.uid >= 0 && v.uid < 2 ** 32).toBe(true);
          expect(Number.isInteger(v.gid) && v.gid >= 0 && v.gid < 2 ** 32).toBe(true);
        }
        for (const gid of parseGroup(text).values()) expect(gid >= 0 && gid < 2 ** 32).toBe(true);
      }),
    );
  });
});

describe("resolveIdentity", () => {
  const db = (withKeepalivedScript: boolean): AccountDb => {
    const users = parsePasswd(passwd);
    if (withKeepalivedScript) users.set("keepalived_script", { uid: 990, gid: 990 });
    return { users, groups: parseGroup(group) };
  };

  test("no script_user: keepalived_script when it exists, else root", () => {
    expect(resolveIdentity(db(true), {})).toEqual({ user: "keepalived_script", uid: 990, gid: 990 });
    expect(resolveIdentity(db(false), {})).toEqual({ user: "root", uid: 0, gid: 0 });
    // root without a passwd entry is still root
    expect(resolveIdentity({ users: new Map(), groups: new Map() }, {})).toEqual({
      user: "root",
      uid: 0,
      gid: 0,
    });
  });

  test("script_user with and without a group; the script's own user wins over it", () => {
    expect(resolveIdentity(db(true), { scriptUser: "nobody" })).toEqual({
      user: "nobody",
      uid: 65534,
      gid: 65534,
    });
    expect(resolveIdentity(db(true), { scriptUser: "nobody", scriptGroup: "web" })).toEqual({
      user: "nobody",
      uid: 65534,
      gid: 33,
    });
    // the global group does not leak onto a script that names its own user
    expect(
      resolveIdentity(db(true), { scriptUser: "nobody", scriptGroup: "web" }, { user: "daemon" }),
    ).toEqual({ user: "daemon", uid: 1, gid: 1 });
    expect(resolveIdentity(db(true), {}, { user: "daemon", group: "nogroup" })).toEqual({
      user: "daemon",
      uid: 1,
      gid: 65534,
    });
  });

  test("an unknown user or group is an error, never a fallback to root", () => {
    expect(resolveIdentity(db(true), { scriptUser: "ghost" })).toEqual({
      error: "script user 'ghost' does not exist",
    });
    expect(resolveIdentity(db(true), {}, { user: "daemon", group: "ghosts" })).toEqual({
      error: "script group 'ghosts' does not exist",
    });
    expect(resolveIdentity(db(false), {}, { user: "root", group: "ghosts" })).toEqual({
      error: "script group 'ghosts' does not exist",
    });
  });
});

describe("system accounts (libc's name service, as keepalived's getpwnam)", () => {
  const getent = (db: string) => Bun.spawnSync(["getent", db]).stdout.toString();

  test("every account getent lists resolves to the same ids", () => {
    const users = parsePasswd(getent("passwd"));
    const groups = parseGroup(getent("group"));
    expect(users.get("root")).toEqual({ uid: 0, gid: 0 });
    for (const [name, ids] of users) {
      expect(lookupUser(name)).toEqual(ids);
      expect(systemAccounts().users.get(name)).toEqual(ids);
    }
    for (const [name, gid] of groups) {
      expect(lookupGroup(name)).toBe(gid);
      expect(systemAccounts().groups.get(name)).toBe(gid);
    }
  });

  test("unknown and impossible names are not found, never an exception", () => {
    for (const name of ["vigil-no-such-account-7f3a", "", "a\0b", "x".repeat(5000)]) {
      expect(lookupUser(name)).toBeNull();
      expect(lookupGroup(name)).toBeNull();
      expect(systemAccounts().users.has(name)).toBe(false);
    }
  });
});
