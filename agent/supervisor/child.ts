// The child side of supervision: connect back to the watchdog, say hello, heartbeat, receive config
// and shutdown orders, and make sure a child never outlives its watchdog by more than a second.
//
// Why the last point matters: the vrrp child holds VIPs. If the watchdog dies (kill -9, OOM killer)
// and the child lingers, a restarted vigil would start a second VRRP speaker next to the orphan, and
// the orphan keeps answering ARP for addresses nobody manages any more. Two independent signals end
// an orphan, whichever comes first:
// - PR_SET_PDEATHSIG(SIGTERM), armed as the first thing in the child, makes the kernel signal us when
//   the watchdog's thread exits, even if the child's event loop is busy;
// - the supervisor socket closing (the kernel closes the watchdog's end when it dies).
// Both run the role's graceful shutdown hook (priority-0 adverts, VIPs removed) under a deadline.
import { readFileSync } from "node:fs";
import type { z } from "zod";
import { prctlDeathSignal } from "../../ffi/libc.ts";
import { createLogger, type Logger } from "../observe/log.ts";
import {
  type CloseReason,
  connectIpc,
  type FramedConnection,
  formatCloseReason,
  SUPERVISOR_ENV,
} from "./ipc.ts";
import type { ChildMessage, Message, MessageOf, RoleName } from "./messages.ts";

const SIGTERM = 15;
/** Exit code of a child that found its watchdog already gone at startup. */
export const EXIT_ORPHANED = 75;

export const DEFAULT_HEARTBEAT_MS = 1000;
/**
 * An orphan must be gone within 1 s of the watchdog's death. Noticing it takes a few ms (signal or
 * EOF) and exiting a few more, so the shutdown hook gets 800 ms of that second.
 */
export const ORPHAN_DEADLINE_MS = 800;
/** An ordered shutdown (message or SIGTERM) may take longer; the watchdog SIGKILLs after its own timeout. */
export const SHUTDOWN_DEADLINE_MS = 4000;

let deathSignalArmed = false;

/**
 * Whether the watchdog is gone or going. getppid() alone is not enough: PR_SET_PDEATHSIG fires when
 * the parent *thread* that spawned us exits, and under kill -9 that thread can go before the rest of
 * the process, so the signal may arrive while our ppid still names the dying watchdog. Its state in
 * /proc then reads zombie/dead (or the entry is gone).
 */
function watchdogGone(pid: number): boolean {
  if (process.ppid !== pid) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.charAt(stat.lastIndexOf(")") + 2);
    return state === "Z" || state === "X" || state === "x";
  } catch {
    return true;
  }
}

/**
 * Arms PR_SET_PDEATHSIG(SIGTERM) and checks that the watchdog did not die before that (the kernel
 * only signals deaths that happen after the prctl). Call it before anything slow in the child entry;
 * connectToWatchdog calls it too, so forgetting it only widens the window. Exits with EXIT_ORPHANED
 * when the parent is already gone.
 */
export function armParentDeathSignal(env: Record<string, string | undefined> = process.env): void {
  if (deathSignalArmed) return;
  prctlDeathSignal(SIGTERM);
  deathSignalArmed = true;
  const expected = Number(env[SUPERVISOR_ENV.watchdogPid]);
  if (Number.isInteger(expected) && expected > 0 && process.ppid !== expected) {
    process.stderr.write(`vigil child: watchdog ${expected} is gone (parent is ${process.ppid}); exiting\n`);
    process.exit(EXIT_ORPHANED);
  }
}

/** Messages the watchdog sends that are the role's business (shutdown is handled here). */
export type ChildInbound = Exclude<Message, { type: "shutdown" }>;

export interface ChildLinkOptions {
  /** default: $VIGIL_SUPERVISOR_SOCKET */
  socketPath?: string;
  /** default: $VIGIL_HEARTBEAT_MS, else 1000 */
  heartbeatMs?: number;
  log?: Logger;
  /**
   * The role's graceful shutdown: stop advertising, release VIPs. Runs at most once, whatever asked
   * for it, and must finish within the deadline (1 s when the watchdog is gone).
   */
  onShutdown?: (reason: string) => void | Promise<void>;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (default true). */
  handleSignals?: boolean;
  /** For tests: what "exit" means (default process.exit). */
  exit?: (code: number) => void;
}

export interface ChildLink {
  readonly role: RoleName;
  readonly connected: boolean;
  /** Sends to the watchdog; false when the connection is gone. */
  send(msg: ChildMessage): boolean;
  /** Registers a handler for config and other messages from the watchdog; returns an unsubscribe. */
  onMessage(handler: (msg: ChildInbound) => void): () => void;
  /** Runs the shutdown hook (once) and exits: 0 if it finished, 1 if the deadline passed. */
  shutdown(reason: string, deadlineMs?: number): Promise<void>;
}

/**
 * Connects to the watchdog's socket and starts heartbeats. Rejects when the socket cannot be
 * reached; the caller should then exit non-zero and let the watchdog respawn it with backoff.
 */
export async function connectToWatchdog(role: RoleName, opts: ChildLinkOptions = {}): Promise<ChildLink> {
  armParentDeathSignal();
  const env = process.env;
  const socketPath = opts.socketPath ?? env[SUPERVISOR_ENV.socket];
  if (!socketPath)
    throw new Error(`${SUPERVISOR_ENV.socket} is not set: children are started by the watchdog`);
  const heartbeatMs = opts.heartbeatMs ?? (Number(env[SUPERVISOR_ENV.heartbeatMs]) || DEFAULT_HEARTBEAT_MS);
  const log = opts.log ?? createLogger({ bindings: { proc: role } });
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const watchdogPid = Number(env[SUPERVISOR_ENV.watchdogPid]) || process.ppid;
  const handlers = new Set<(msg: ChildInbound) => void>();

  let conn: FramedConnection | null = null;
  let beat: ReturnType<typeof setInterval> | null = null;
  let stopping: Promise<void> | null = null;
  let deadlineAt = Number.POSITIVE_INFINITY;
  let deadlineTimer: ReturnType<typeof setTimeout> | null = null;

  const orphaned = () => watchdogGone(watchdogPid);

  /** Moves the exit deadline earlier (never later): a watchdog death during an ordered shutdown. */
  const tighten = (reason: string, deadlineMs: number) => {
    const at = performance.now() + deadlineMs;
    if (at >= deadlineAt) return;
    deadlineAt = at;
    if (deadlineTimer) clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(() => {
      log.error({ reason, deadlineMs }, "shutdown hook overran its deadline; exiting");
      exit(1);
    }, deadlineMs);
  };

  const shutdown = (reason: string, deadlineMs = SHUTDOWN_DEADLINE_MS): Promise<void> => {
    const deadline = orphaned() ? Math.min(deadlineMs, ORPHAN_DEADLINE_MS) : deadlineMs;
    tighten(reason, deadline);
    if (stopping) return stopping;
    if (beat) clearInterval(beat);
    log.info({ reason, deadlineMs: deadline }, "child shutting down");
    stopping = (async () => {
      let code = 0;
      try {
        await opts.onShutdown?.(reason);
      } catch (e) {
        log.error({ err: String(e) }, "shutdown hook failed");
        code = 1;
      }
      if (deadlineTimer) clearTimeout(deadlineTimer);
      conn?.close("child exiting");
      exit(code);
    })();
    return stopping;
  };

  const onClose = (reason: CloseReason) => {
    // the watchdog went away (or broke the protocol): nobody supervises us, and a vrrp child must
    // not keep VIPs unsupervised. Leave quickly.
    void shutdown(`watchdog connection lost (${formatCloseReason(reason)})`, ORPHAN_DEADLINE_MS);
  };

  conn = await connectIpc(socketPath, {
    message(_c, msg) {
      if (msg.type === "shutdown") {
        void shutdown(msg.reason ? `watchdog: ${msg.reason}` : "watchdog requested shutdown");
        return;
      }
      for (const h of handlers) {
        try {
          h(msg);
        } catch (e) {
          log.error({ err: String(e), type: msg.type }, "message handler failed");
        }
      }
    },
    rejected(_c, detail) {
      log.warn({ detail }, "invalid message from watchdog dropped");
    },
    close(_c, reason) {
      onClose(reason);
    },
  });

  conn.send({ type: "hello", role, pid: process.pid });
  let seq = 0;
  beat = setInterval(() => {
    conn?.send({ type: "heartbeat", seq: ++seq, at: Date.now() });
  }, heartbeatMs);

  if (opts.handleSignals !== false) {
    // SIGTERM: the kernel's parent-death signal, or systemd stopping the whole cgroup
    process.on("SIGTERM", () => void shutdown(orphaned() ? "watchdog died (SIGTERM)" : "SIGTERM"));
    // Ctrl-C and terminal hangups reach the whole process group; the watchdog orders the shutdown
    // (or the reload) itself, so a child must not act on them alone
    process.on("SIGINT", () => log.debug("SIGINT ignored: the watchdog coordinates shutdown"));
    process.on("SIGHUP", () => log.debug("SIGHUP ignored: reloads arrive as config messages"));
  }

  return {
    role,
    get connected() {
      return conn !== null && !conn.closed;
    },
    send: (msg) => conn?.send(msg) ?? false,
    onMessage(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    shutdown,
  };
}

/**
 * The config a `config` message carries, validated with the role's schema (the envelope leaves it
 * opaque); a config that fails is answered with a refusal at once and yields null.
 */
export function configFrom<T>(link: ChildLink, msg: MessageOf<"config">, schema: z.ZodType<T>): T | null {
  const parsed = schema.safeParse(msg.config);
  if (parsed.success) return parsed.data;
  link.send({ type: "reload_result", generation: msg.generation, ok: false, error: parsed.error.message });
  return null;
}
