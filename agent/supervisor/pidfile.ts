// The watchdog's pid file in the state dir: one vigil per state dir. Two agents on one state dir
// would fight over the supervisor socket and, worse, both run VRRP for the same instances.
//
// Creation is atomic and exclusive: the pid is written to a temp file which is then hard-linked to
// the final name. link(2) fails with EEXIST when the name exists, so of two agents starting at once
// exactly one wins, and a reader never sees a half-written file (rename would give atomicity but
// silently replace a live agent's file).
//
// A pid file left by a kill -9 (or a crash, or a reboot with a persistent state dir) is stale when
// its pid is gone, a zombie, ourselves (containers reuse low pids across restarts), or a process
// that is not this program (the pid was reused). Stale files are taken over.
import { linkSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";

export class PidFileLockedError extends Error {
  override readonly name = "PidFileLockedError";
  constructor(
    readonly path: string,
    readonly pid: number,
  ) {
    super(`another vigil (pid ${pid}) holds ${path}`);
  }
}

export interface PidFile {
  readonly path: string;
  readonly pid: number;
  /** The pid of a stale file this one replaced, if any (worth a log line). */
  readonly tookOverFrom: number | null;
  /** Removes the file if it is still ours. Idempotent; also runs at process exit. */
  release(): void;
}

export interface PidFileOptions {
  pid?: number;
  /** Whether a live pid is an instance of this program; the default compares executable and script. */
  isSameProgram?: (pid: number) => boolean;
}

/** The pid a pid file names, or null when it is missing or does not start with a positive number. */
export function readPidFile(path: string): number | null {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return null;
  }
  const m = /^\s*(\d+)/.exec(text);
  if (!m) return null;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/** Alive and not a zombie (a killed process whose parent has not reaped it yet holds nothing). */
export function processRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // the state letter follows the parenthesised comm, which may itself contain ") "
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false;
  }
}

function ownExecutable(): string {
  try {
    return realpathSync(process.execPath);
  } catch {
    return process.execPath;
  }
}

/**
 * Default identity check: the process runs our executable (an upgrade that replaced the file shows
 * as "PATH (deleted)") and, when we run from source, our entry script; or its command line names
 * vigil.
 */
export function sameProgram(pid: number): boolean {
  let exe = "";
  let argv: string[] = [];
  try {
    exe = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");
  } catch {
    // EACCES for another user's process without CAP_SYS_PTRACE: fall back to the command line
  }
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return false;
  }
  const compiled = Bun.main.startsWith("/$bunfs/");
  if (exe === ownExecutable() && (compiled || argv.includes(Bun.main))) return true;
  return argv.slice(0, 2).some((a) => /(^|\/)vigil$/.test(a));
}

/** Acquires `path` for this process or throws PidFileLockedError naming the live holder. */
export function acquirePidFile(path: string, opts: PidFileOptions = {}): PidFile {
  const pid = opts.pid ?? process.pid;
  const isSame = opts.isSameProgram ?? sameProgram;
  const tmp = `${path}.${pid}.tmp`;
  writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  let tookOverFrom: number | null = null;
  try {
    // a few rounds: between our unlink of a stale file and our link, another starter may win
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 3) throw e;
      }
      const holder = readPidFile(path);
      if (holder !== null && holder !== pid && processRunning(holder) && isSame(holder)) {
        throw new PidFileLockedError(path, holder);
      }
      // stale (or unreadable garbage): remove it, but only if it still names the same holder
      if (readPidFile(path) === holder) {
        rmSync(path, { force: true });
        tookOverFrom = holder;
      }
    }
  } finally {
    rmSync(tmp, { force: true });
  }

  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    // a successor may have taken the file over after we were presumed dead: leave theirs alone
    if (readPidFile(path) === pid) rmSync(path, { force: true });
  };
  process.on("exit", release);
  return { path, pid, tookOverFrom, release };
}
