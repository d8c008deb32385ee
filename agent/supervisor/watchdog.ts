// The watchdog: starts one child process per role by re-executing its own executable, supervises
// them over the supervisor socket (hello, heartbeats), and respawns a child that exits or stops
// answering, with exponential backoff. Generic over roles: what a role does is the child's business;
// the watchdog only knows names, argv and liveness. Roles can be added and removed while it runs
// (the check child exists only while the config has virtual servers).
//
// Re-executing ourselves (rather than forking workers or threads) keeps each role a separate process
// that the kernel isolates: a vrrp child wedged in a syscall or leaking memory can be killed and
// replaced without touching the check child or the API, and `ps` shows which one is which.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Logger, LogLimiter } from "../observe/log.ts";
import {
  type FramedConnection,
  formatCloseReason,
  type IpcServer,
  listenIpc,
  SUPERVISOR_ENV,
  UNIX_PATH_MAX,
} from "./ipc.ts";
import type { ChildMessage, Message, RoleName, WatchdogMessage } from "./messages.ts";
import { RoleName as RoleNameSchema } from "./messages.ts";
import { SYSTEMD_NOTIFY_ENV } from "./sdnotify.ts";

/** Prefix of Bun.main inside a `bun build --compile` executable (its embedded file system). */
const BUNFS_PREFIX = "/$bunfs/";

/** Runtime flags a child must not inherit: they would watch files, reload, or fight over a debug port. */
const NON_INHERITED_FLAG = /^--(watch|hot|inspect|inspect-brk|inspect-wait|no-clear-screen)(=|$)/;

/**
 * The command that runs this program again, before its own arguments:
 * - compiled binary (`dist/vigil`): Bun.main is "/$bunfs/root/vigil", a path inside the executable
 *   that means nothing on the command line; the executable alone is the program, so `[execPath]`;
 * - from source (`bun agent/main.ts`): execPath is the bun runtime, which needs the entry script
 *   (Bun.main, absolute) and any runtime flags it was given (e.g. --smol), minus flags that only
 *   make sense once (watch/hot/inspect).
 * In both cases `[...selfCommand(), "child", "vrrp"]` reaches main.ts with argv `child vrrp`.
 */
export function selfCommand(
  main: string = Bun.main,
  execPath: string = process.execPath,
  execArgv: readonly string[] = process.execArgv,
): string[] {
  if (main.startsWith(BUNFS_PREFIX)) return [execPath];
  return [execPath, ...execArgv.filter((a) => !NON_INHERITED_FLAG.test(a)), main];
}

export interface RoleSpec {
  name: RoleName;
  /** extra environment for this role's child */
  env?: Record<string, string>;
}

export interface BackoffOptions {
  /** delay before the first restart after a healthy run */
  initialMs: number;
  /** the delay doubles per quick failure up to this cap */
  maxMs: number;
  /** a child that stayed up this long resets the delay to initialMs */
  resetAfterMs: number;
}

export interface CrashLoopOptions {
  /** this many restarts within windowMs mark a role crashLooping */
  restarts: number;
  windowMs: number;
}

export interface WatchdogOptions {
  stateDir: string;
  log: Logger;
  roles: RoleSpec[];
  /** Arguments after the self-exec prefix, e.g. `["child", "vrrp", "-f", file, "--state-dir", dir]`. */
  childArgv: (role: RoleName) => string[];
  /** default `<stateDir>/supervisor.sock` */
  socketPath?: string;
  /** The self-exec prefix; default selfCommand(). Override when the watchdog is not the entry (tests). */
  command?: string[];
  /** Base environment of children (default process.env); systemd notify variables are removed. */
  env?: Record<string, string | undefined>;
  /** how often children send heartbeats (passed to them); default 1000 */
  heartbeatMs?: number;
  /**
   * a child silent this long is killed and respawned; default 3000. Liveness is checked every third
   * of it (at most every second), so a hung child is caught between this and 4/3 of it.
   */
  heartbeatTimeoutMs?: number;
  /** a child that has not said hello this long after spawn is killed; default 10000 */
  helloTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  crashLoop?: Partial<CrashLoopOptions>;
  /** how long stop() waits for children after asking them to shut down before SIGKILL; default 5000 */
  stopTimeoutMs?: number;
}

export interface ExitInfo {
  pid: number;
  /** exit status, or null when a signal ended it */
  code: number | null;
  signal: string | null;
  /** human-readable: "exit code 3", "signal SIGKILL", "heartbeat timeout (3012 ms without a message)" */
  reason: string;
  uptimeMs: number;
  /** wall clock, ms since the epoch */
  at: number;
}

export type ChildState = "starting" | "running" | "backoff" | "stopping" | "stopped";

export interface ChildStatus {
  role: RoleName;
  pid: number | null;
  state: ChildState;
  /** restarts since the watchdog started */
  restarts: number;
  /** restarts within the crash-loop window */
  recentRestarts: number;
  /** time since this child process was spawned; 0 when none runs */
  uptimeMs: number;
  crashLooping: boolean;
  lastExit: ExitInfo | null;
  /** the delay the next restart will wait */
  nextBackoffMs: number;
}

/** Messages a child may send after its hello, as the watchdog delivers them. */
export type ChildUpstream = Exclude<ChildMessage, { type: "hello" | "heartbeat" }>;

type WatchdogEvents = {
  /** a state/event/reload_result message from a child */
  message: [role: RoleName, msg: ChildUpstream];
  /** a child said hello: it is connected and can take config */
  up: [role: RoleName, pid: number];
  exit: [role: RoleName, info: ExitInfo];
  /** a role just crossed the crash-loop threshold */
  crashloop: [role: RoleName, recentRestarts: number];
};

interface Slot {
  readonly spec: RoleSpec;
  proc: Bun.Subprocess | null;
  pid: number | null;
  conn: FramedConnection | null;
  /** monotonic ms */
  spawnedAt: number;
  helloAt: number | null;
  lastSeen: number;
  restarts: number;
  restartTimes: number[];
  nextDelayMs: number;
  restartTimer: ReturnType<typeof setTimeout> | null;
  /** set when the watchdog kills the child, so its exit is logged with the real reason */
  killReason: string | null;
  lastExit: ExitInfo | null;
  crashLooping: boolean;
  exitWaiters: (() => void)[];
  /** removeRole() asked for this child to go for good: no respawn, the slot is forgotten on exit */
  removed: boolean;
}

const now = () => performance.now();

export class Watchdog {
  readonly socketPath: string;
  private readonly log: Logger;
  private readonly command: string[];
  private readonly heartbeatMs: number;
  private readonly heartbeatTimeoutMs: number;
  private readonly helloTimeoutMs: number;
  private readonly backoff: BackoffOptions;
  private readonly crashLoop: CrashLoopOptions;
  private readonly stopTimeoutMs: number;
  private readonly slots = new Map<RoleName, Slot>();
  private readonly strangers = new Map<FramedConnection, number>();
  private readonly listeners: { [K in keyof WatchdogEvents]: Set<(...a: WatchdogEvents[K]) => void> } = {
    message: new Set(),
    up: new Set(),
    exit: new Set(),
    crashloop: new Set(),
  };
  private readonly limiter = new LogLimiter(5, 10_000);
  private server: IpcServer | null = null;
  private tick: ReturnType<typeof setInterval> | null = null;
  private lastTick = 0;
  private stopping: Promise<void> | null = null;
  private readonly allUp: { promise: Promise<void>; resolve: () => void };

  constructor(private readonly opts: WatchdogOptions) {
    this.log = opts.log;
    this.socketPath = opts.socketPath ?? join(opts.stateDir, "supervisor.sock");
    if (Buffer.byteLength(this.socketPath) > UNIX_PATH_MAX) {
      throw new Error(`supervisor socket path is longer than ${UNIX_PATH_MAX} bytes: ${this.socketPath}`);
    }
    this.command = opts.command ?? selfCommand();
    // Each heartbeat wakes two idle processes; at 1 s, three missed beats still catch a hung child
    // within 3-4 s (a VRRP child's death is noticed at once anyway: its exit, not its silence).
    this.heartbeatMs = opts.heartbeatMs ?? 1000;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 3000;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 10_000;
    // field by field: an explicit `undefined` in the options must not erase a default
    this.backoff = {
      initialMs: opts.backoff?.initialMs ?? 100,
      maxMs: opts.backoff?.maxMs ?? 10_000,
      resetAfterMs: opts.backoff?.resetAfterMs ?? 30_000,
    };
    this.crashLoop = {
      restarts: opts.crashLoop?.restarts ?? 5,
      windowMs: opts.crashLoop?.windowMs ?? 60_000,
    };
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 5000;
    if (opts.roles.length === 0) throw new Error("a watchdog needs at least one role");
    for (const spec of opts.roles) {
      if (this.slots.has(spec.name)) throw new Error(`duplicate role ${spec.name}`);
      this.slots.set(spec.name, this.newSlot(spec));
    }
    let resolve = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.allUp = { promise, resolve };
  }

  private newSlot(spec: RoleSpec): Slot {
    RoleNameSchema.parse(spec.name);
    return {
      spec,
      proc: null,
      pid: null,
      conn: null,
      spawnedAt: 0,
      helloAt: null,
      lastSeen: 0,
      restarts: 0,
      restartTimes: [],
      nextDelayMs: this.backoff.initialMs,
      restartTimer: null,
      killReason: null,
      lastExit: null,
      crashLooping: false,
      exitWaiters: [],
      removed: false,
    };
  }

  /** Whether a role is supervised now (a role being removed no longer counts). */
  hasRole(role: RoleName): boolean {
    const slot = this.slots.get(role);
    return slot !== undefined && !slot.removed;
  }

  /**
   * Supervises one more role: its child is spawned at once when the watchdog runs (else at start()).
   * A role still being removed is kept instead: its child, once exited, is respawned as after a crash.
   */
  addRole(spec: RoleSpec): void {
    if (this.stopping) return;
    const existing = this.slots.get(spec.name);
    if (existing) {
      if (existing.removed) {
        existing.removed = false;
        this.log.info({ role: spec.name }, "role kept");
      }
      return;
    }
    const slot = this.newSlot(spec);
    this.slots.set(spec.name, slot);
    this.log.info({ role: spec.name }, "role added");
    if (this.server) this.spawn(slot);
  }

  /**
   * Stops a role's child for good: shutdown message (SIGTERM without a link), SIGKILL after
   * stopTimeoutMs; no respawn, no exit event. Resolves once the child is gone.
   */
  async removeRole(role: RoleName): Promise<void> {
    const slot = this.slots.get(role);
    if (!slot || slot.removed) return;
    slot.removed = true;
    if (slot.restartTimer) clearTimeout(slot.restartTimer);
    slot.restartTimer = null;
    this.log.info({ role, childPid: slot.pid }, "role removed; stopping its child");
    if (!slot.proc) {
      this.slots.delete(role);
      return;
    }
    const gone = new Promise<void>((r) => slot.exitWaiters.push(r));
    if (!slot.conn?.send({ type: "shutdown", reason: "role no longer needed" })) slot.proc.kill("SIGTERM");
    let timer: ReturnType<typeof setTimeout> | null = null;
    const timedOut = await Promise.race([
      gone.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), this.stopTimeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (timedOut && slot.proc) {
      slot.killReason = "killed at role removal (timeout)";
      slot.proc.kill("SIGKILL");
      await gone;
    }
  }

  /** Listens on the supervisor socket and spawns every role. */
  start(): void {
    if (this.server) throw new Error("watchdog already started");
    mkdirSync(this.opts.stateDir, { recursive: true, mode: 0o700 });
    this.server = listenIpc(this.socketPath, {
      open: (c) => this.strangers.set(c, now()),
      message: (c, m) => this.onMessage(c, m),
      rejected: (c, detail) => this.onRejected(c, detail),
      close: (c, reason) => {
        this.strangers.delete(c);
        const slot = c.tag === null ? undefined : this.slots.get(c.tag);
        if (slot && slot.conn === c) {
          slot.conn = null;
          // usually the child is exiting (its exit is logged next). One that stays up without a link
          // is ended by the heartbeat timeout, so this is not a warning by itself.
          if (slot.proc && !this.stopping) {
            this.log.info(
              { role: c.tag, childPid: slot.pid, why: formatCloseReason(reason) },
              "child link closed",
            );
          }
        } else if (reason.kind === "protocol") {
          this.limited(
            "reject",
            { why: formatCloseReason(reason) },
            "supervisor connection closed: protocol violation",
          );
        }
      },
    });
    this.lastTick = now();
    // a third of the timeout, at most a second: a silent child is caught at most a third late, and
    // an idle watchdog wakes once a second for this
    this.tick = setInterval(
      () => this.checkLiveness(),
      Math.max(50, Math.min(1000, this.heartbeatTimeoutMs / 3)),
    );
    for (const slot of this.slots.values()) this.spawn(slot);
    this.log.info(
      { socket: this.socketPath, roles: [...this.slots.keys()], command: this.command },
      "watchdog started",
    );
  }

  /** Resolves once every role has said hello at least once. */
  whenAllUp(): Promise<void> {
    return this.allUp.promise;
  }

  /**
   * Asks every child to shut down (shutdown message, or SIGTERM when it has no link), waits up to
   * stopTimeoutMs, SIGKILLs what is left, then closes the socket. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /** Sends a message to a role's child; false when that child is not connected. */
  send(role: RoleName, msg: WatchdogMessage): boolean {
    const slot = this.slots.get(role);
    if (!slot?.conn || slot.removed) return false;
    return slot.conn.send(msg);
  }

  on<K extends keyof WatchdogEvents>(event: K, fn: (...args: WatchdogEvents[K]) => void): () => void {
    const set = this.listeners[event] as Set<(...a: WatchdogEvents[K]) => void>;
    set.add(fn);
    return () => set.delete(fn);
  }

  status(): ChildStatus[] {
    const t = now();
    return [...this.slots.values()].map((s) => {
      const recent = this.recentRestarts(s, t);
      let state: ChildState;
      if (this.stopping || s.removed) state = s.proc ? "stopping" : "stopped";
      else if (s.proc) state = s.helloAt === null ? "starting" : "running";
      else state = s.restartTimer ? "backoff" : "stopped";
      return {
        role: s.spec.name,
        pid: s.pid,
        state,
        restarts: s.restarts,
        recentRestarts: recent,
        uptimeMs: s.proc ? Math.round(t - s.spawnedAt) : 0,
        crashLooping: recent >= this.crashLoop.restarts,
        lastExit: s.lastExit,
        nextBackoffMs: s.nextDelayMs,
      };
    });
  }

  /** Running children by role. */
  get children(): { role: RoleName; pid: number }[] {
    const out: { role: RoleName; pid: number }[] = [];
    for (const s of this.slots.values())
      if (s.pid !== null && s.proc) out.push({ role: s.spec.name, pid: s.pid });
    return out;
  }

  private emit<K extends keyof WatchdogEvents>(event: K, ...args: WatchdogEvents[K]): void {
    for (const fn of this.listeners[event] as Set<(...a: WatchdogEvents[K]) => void>) {
      try {
        fn(...args);
      } catch (e) {
        this.log.error({ err: String(e), event }, "watchdog listener failed");
      }
    }
  }

  private childEnv(slot: Slot): Record<string, string> {
    const base = this.opts.env ?? process.env;
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
    // sd_notify is the watchdog's job: with NotifyAccess=all a child's READY=1 would lie
    for (const k of SYSTEMD_NOTIFY_ENV) delete env[k];
    env[SUPERVISOR_ENV.socket] = this.socketPath;
    env[SUPERVISOR_ENV.role] = slot.spec.name;
    env[SUPERVISOR_ENV.watchdogPid] = String(process.pid);
    env[SUPERVISOR_ENV.heartbeatMs] = String(this.heartbeatMs);
    return { ...env, ...slot.spec.env };
  }

  private spawn(slot: Slot): void {
    slot.restartTimer = null;
    if (this.stopping) return;
    const role = slot.spec.name;
    const argv = [...this.command, ...this.opts.childArgv(role)];
    slot.killReason = null;
    slot.helloAt = null;
    slot.conn = null;
    slot.spawnedAt = now();
    try {
      const proc = Bun.spawn(argv, {
        env: this.childEnv(slot),
        stdin: "ignore",
        // children log JSON lines to the same stdout as the watchdog: one stream for journald
        stdout: "inherit",
        stderr: "inherit",
        onExit: (p, code, signal) => this.onExit(slot, p, code, signal),
      });
      slot.proc = proc;
      slot.pid = proc.pid;
      this.log.info({ role, childPid: proc.pid, argv }, "child spawned");
    } catch (e) {
      // e.g. the executable was removed by an upgrade in progress: retry with backoff like a crash
      slot.proc = null;
      slot.pid = null;
      this.log.error({ role, argv, err: String(e) }, "child spawn failed");
      this.afterExit(slot, {
        pid: 0,
        code: null,
        signal: null,
        reason: `spawn failed: ${e}`,
        uptimeMs: 0,
        at: Date.now(),
      });
    }
  }

  private onExit(
    slot: Slot,
    proc: Bun.Subprocess,
    code: number | null,
    signal: NodeJS.Signals | number | null,
  ): void {
    if (slot.proc !== proc) return;
    const sig = signal === null ? null : String(signal);
    const reason = slot.killReason ?? (sig !== null ? `signal ${sig}` : `exit code ${code}`);
    const info: ExitInfo = {
      pid: proc.pid,
      code: sig === null ? code : null,
      signal: sig,
      reason,
      uptimeMs: Math.round(now() - slot.spawnedAt),
      at: Date.now(),
    };
    slot.proc = null;
    slot.pid = null;
    slot.helloAt = null;
    if (slot.conn) slot.conn.close("child exited");
    slot.conn = null;
    slot.lastExit = info;
    const waiters = slot.exitWaiters;
    slot.exitWaiters = [];
    for (const w of waiters) w();
    if (slot.removed) {
      if (this.slots.get(slot.spec.name) === slot) this.slots.delete(slot.spec.name);
      this.log.info({ role: slot.spec.name, childPid: info.pid, reason }, "child stopped (role removed)");
      return;
    }
    this.emit("exit", slot.spec.name, info);
    if (this.stopping) {
      this.log.info({ role: slot.spec.name, childPid: info.pid, reason }, "child stopped");
      return;
    }
    this.afterExit(slot, info);
  }

  /** Restart bookkeeping shared by exits and failed spawns: count, back off, detect crash loops. */
  private afterExit(slot: Slot, info: ExitInfo): void {
    const t = now();
    slot.lastExit = info;
    slot.restarts++;
    slot.restartTimes.push(t);
    const recent = this.recentRestarts(slot, t);
    // a child that ran long enough was healthy: this failure starts a fresh backoff sequence
    if (info.uptimeMs >= this.backoff.resetAfterMs) slot.nextDelayMs = this.backoff.initialMs;
    const delayMs = slot.nextDelayMs;
    slot.nextDelayMs = Math.min(this.backoff.maxMs, Math.max(delayMs * 2, 0));
    const looping = recent >= this.crashLoop.restarts;
    this.log.warn(
      {
        role: slot.spec.name,
        childPid: info.pid,
        reason: info.reason,
        code: info.code,
        signal: info.signal,
        uptimeMs: info.uptimeMs,
        restarts: slot.restarts,
        recentRestarts: recent,
        delayMs,
        crashLooping: looping,
      },
      "child exited; restarting",
    );
    if (looping && !slot.crashLooping) {
      slot.crashLooping = true;
      this.log.error(
        {
          role: slot.spec.name,
          recentRestarts: recent,
          windowMs: this.crashLoop.windowMs,
          lastReason: info.reason,
        },
        "child is crash-looping",
      );
      this.emit("crashloop", slot.spec.name, recent);
    }
    slot.restartTimer = setTimeout(() => this.spawn(slot), delayMs);
  }

  private recentRestarts(slot: Slot, t: number): number {
    const from = t - this.crashLoop.windowMs;
    while (slot.restartTimes.length > 0 && slot.restartTimes[0]! < from) slot.restartTimes.shift();
    return slot.restartTimes.length;
  }

  private onMessage(c: FramedConnection, msg: Message): void {
    if (c.tag === null) {
      this.onHello(c, msg);
      return;
    }
    const slot = this.slots.get(c.tag);
    if (!slot || slot.conn !== c) return;
    slot.lastSeen = now();
    switch (msg.type) {
      case "heartbeat":
        return;
      case "state":
      case "event":
      case "reload_result":
        this.emit("message", slot.spec.name, msg);
        return;
      default:
        this.limited(
          `unexpected:${c.tag}`,
          { role: c.tag, type: msg.type },
          "unexpected message from child ignored",
        );
    }
  }

  private onHello(c: FramedConnection, msg: Message): void {
    this.strangers.delete(c);
    if (msg.type !== "hello") {
      this.limited(
        "reject",
        { type: msg.type },
        "supervisor connection rejected: first message is not hello",
      );
      c.close("first message is not hello");
      return;
    }
    const slot = this.slots.get(msg.role);
    // only the process we spawned for that role may speak for it: a stale child from before a
    // restart, or anything else that can reach the socket, is turned away
    if (!slot || slot.pid !== msg.pid || !slot.proc || (slot.conn && !slot.conn.closed)) {
      const why = !slot
        ? "unknown role"
        : slot.pid !== msg.pid
          ? `pid ${msg.pid} is not the ${msg.role} child`
          : "duplicate hello";
      this.limited("reject", { role: msg.role, claimedPid: msg.pid, why }, "supervisor connection rejected");
      c.close(why);
      return;
    }
    const t = now();
    c.tag = msg.role;
    slot.conn = c;
    slot.lastSeen = t;
    slot.helloAt = t;
    this.log.info(
      { role: msg.role, childPid: msg.pid, spawnToHelloMs: Math.round((t - slot.spawnedAt) * 10) / 10 },
      "child up",
    );
    this.emit("up", msg.role, msg.pid);
    if ([...this.slots.values()].every((s) => s.helloAt !== null)) this.allUp.resolve();
  }

  private onRejected(c: FramedConnection, detail: string): void {
    if (c.tag === null) {
      this.strangers.delete(c);
      this.limited("reject", { detail }, "supervisor connection rejected: invalid message");
      c.close(`invalid message: ${detail}`);
      return;
    }
    // a known child sent something this watchdog does not understand (version skew): drop that one
    this.limited(`schema:${c.tag}`, { role: c.tag, detail }, "invalid message from child dropped");
  }

  private checkLiveness(): void {
    const t = now();
    const lag = t - this.lastTick;
    this.lastTick = t;
    if (lag > this.heartbeatTimeoutMs / 2) {
      // our own loop was stalled (not the children's): their heartbeats wait unread in the socket
      // buffers, so judging them now would kill healthy children. Give everyone a fresh period.
      this.log.warn({ lagMs: Math.round(lag) }, "watchdog event loop stalled; heartbeat deadlines extended");
      for (const s of this.slots.values()) s.lastSeen = t;
      return;
    }
    for (const slot of this.slots.values()) {
      if (!slot.proc || slot.killReason !== null) continue;
      if (slot.helloAt === null) {
        if (t - slot.spawnedAt > this.helloTimeoutMs) {
          this.kill(slot, `hello timeout (${Math.round(t - slot.spawnedAt)} ms after spawn)`);
        }
      } else if (t - slot.lastSeen > this.heartbeatTimeoutMs) {
        this.kill(slot, `heartbeat timeout (${Math.round(t - slot.lastSeen)} ms without a message)`);
      }
    }
    for (const [c, openedAt] of this.strangers) {
      if (t - openedAt > this.helloTimeoutMs) {
        this.strangers.delete(c);
        this.limited("reject", {}, "supervisor connection rejected: no hello");
        c.close("no hello");
      }
    }
    for (const slot of this.slots.values()) {
      if (slot.crashLooping && this.recentRestarts(slot, t) < this.crashLoop.restarts) {
        slot.crashLooping = false;
        this.log.info({ role: slot.spec.name }, "child no longer crash-looping");
      }
    }
  }

  /** SIGKILL: a hung or stopped process cannot run a SIGTERM handler, and its replacement reconciles. */
  private kill(slot: Slot, reason: string): void {
    slot.killReason = reason;
    this.log.warn({ role: slot.spec.name, childPid: slot.pid, reason }, "killing unresponsive child");
    slot.proc?.kill("SIGKILL");
  }

  private async doStop(): Promise<void> {
    if (this.tick) clearInterval(this.tick);
    this.tick = null;
    const waits: Promise<void>[] = [];
    for (const slot of this.slots.values()) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      slot.restartTimer = null;
      if (!slot.proc) continue;
      waits.push(new Promise<void>((r) => slot.exitWaiters.push(r)));
      if (slot.conn?.send({ type: "shutdown", reason: "watchdog stopping" })) continue;
      slot.proc.kill("SIGTERM");
    }
    this.log.info({ children: waits.length }, "stopping children");
    let timer: ReturnType<typeof setTimeout> | null = null;
    const timedOut = await Promise.race([
      Promise.all(waits).then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), this.stopTimeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (timedOut) {
      const left: Promise<void>[] = [];
      for (const slot of this.slots.values()) {
        if (!slot.proc) continue;
        this.log.warn(
          { role: slot.spec.name, childPid: slot.pid, timeoutMs: this.stopTimeoutMs },
          "child did not stop; SIGKILL",
        );
        slot.killReason = "killed at stop (timeout)";
        left.push(new Promise<void>((r) => slot.exitWaiters.push(r)));
        slot.proc.kill("SIGKILL");
      }
      await Promise.all(left);
    }
    this.server?.close();
    this.server = null;
    this.log.info("watchdog stopped");
  }

  private limited(key: string, fields: Record<string, unknown>, msg: string): void {
    const suppressed = this.limiter.allow(key, Date.now());
    if (suppressed === null) return;
    this.log.warn(suppressed > 0 ? { ...fields, suppressed } : fields, msg);
  }
}
