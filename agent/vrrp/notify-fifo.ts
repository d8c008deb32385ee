// keepalived's notify FIFOs (notify_fifo, vrrp_notify_fifo): one line per state change, written
// without blocking (a FIFO nobody reads loses lines rather than stalling VRRP), and the optional
// script started with the FIFO's path to read them (lib/notify.c fifo_open, vrrp_notify.c).
import { chownSync, closeSync, constants, openSync, unlinkSync, writeSync } from "node:fs";
import { makeFifo } from "../../ffi/fifo.ts";
import { stableJson } from "../config/diff.ts";
import type { NotifyFifo } from "../config/model.ts";
import type { Identity } from "../config/script-user.ts";
import type { Logger } from "../observe/log.ts";
import { splitCommand, startLongRunning } from "./scripts.ts";

/** The line keepalived writes: `INSTANCE "VI_1" MASTER 100`, `GROUP "G1" BACKUP 0`. */
export function fifoLine(kind: "INSTANCE" | "GROUP", name: string, state: string, priority: number): string {
  return `${kind} "${name}" ${state} ${priority}\n`;
}

interface OpenFifo {
  key: string;
  path: string;
  fd: number;
  /** we made it, so we remove it when done (keepalived created_fifo) */
  created: boolean;
  stopScript: (() => void) | undefined;
}

// S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH, as keepalived creates them
const FIFO_MODE = 0o644;
// not in node:fs constants; Linux's value
const O_CLOEXEC = 0o2000000;

export class NotifyFifos {
  private open: OpenFifo[] = [];

  constructor(
    private readonly log: Logger,
    /** the identity for a FIFO's owner or its script (user/group, else the script user); null: none */
    private readonly identity: (user?: string, group?: string) => Identity | null,
  ) {}

  /** Opens the configured FIFOs that are not open yet and closes those no longer configured. */
  configure(defs: readonly NotifyFifo[]): void {
    const wanted = new Map(defs.map((d) => [stableJson(d), d]));
    for (const f of this.open.filter((o) => !wanted.has(o.key))) this.closeOne(f);
    this.open = this.open.filter((o) => wanted.has(o.key));
    for (const [key, def] of wanted) {
      if (this.open.some((o) => o.key === key || o.path === def.path)) continue;
      const f = this.openOne(key, def);
      if (f) this.open.push(f);
    }
  }

  write(line: string): void {
    for (const f of this.open) {
      try {
        writeSync(f.fd, line);
      } catch {
        // EAGAIN: the reader is behind and the pipe is full; the line is lost, as with keepalived
      }
    }
  }

  close(): void {
    for (const f of this.open) this.closeOne(f);
    this.open = [];
  }

  /**
   * Stops the FIFO scripts now. keepalived does this first when it shuts down (script_killall), so
   * its scripts never read the STOP lines; other readers of the FIFO still get them.
   */
  stopScripts(): void {
    for (const f of this.open) {
      f.stopScript?.();
      f.stopScript = undefined;
    }
  }

  private openOne(key: string, def: NotifyFifo): OpenFifo | null {
    let created = false;
    try {
      created = makeFifo(def.path, FIFO_MODE);
    } catch (err) {
      this.log.error({ fifo: def.path, err: String(err) }, "notify fifo: cannot create");
      return null;
    }
    if (created) {
      const owner = this.identity(def.user, def.group);
      if (owner && (owner.uid !== 0 || owner.gid !== 0)) {
        try {
          chownSync(def.path, owner.uid, owner.gid);
        } catch (err) {
          this.log.warn({ fifo: def.path, err: String(err) }, "notify fifo: cannot set its owner");
        }
      }
    }
    let stopScript: (() => void) | undefined;
    if (def.script !== undefined) {
      const as = this.identity();
      const r = as
        ? startLongRunning([...splitCommand(def.script), def.path], as)
        : { error: "script user cannot be resolved" };
      if ("error" in r)
        this.log.error(
          { fifo: def.path, script: def.script, err: r.error },
          "notify fifo script not started",
        );
      else stopScript = r.stop;
    }
    let fd: number;
    try {
      // read-write so that opening never waits for a reader and writes never fail for lack of one
      fd = openSync(def.path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW | O_CLOEXEC);
    } catch (err) {
      this.log.error({ fifo: def.path, err: String(err) }, "notify fifo: cannot open");
      stopScript?.();
      if (created) unlinkSync(def.path);
      return null;
    }
    return { key, path: def.path, fd, created, stopScript };
  }

  private closeOne(f: OpenFifo): void {
    // unlinked first, so that a script that reopens the FIFO in a loop cannot find it again
    if (f.created) {
      try {
        unlinkSync(f.path);
      } catch {
        // already gone
      }
    }
    try {
      closeSync(f.fd);
    } catch {
      // already closed
    }
    // the script sees end of file once no writer is left; it gets a moment to read the last lines
    if (f.stopScript) setTimeout(f.stopScript, 500).unref();
  }
}
