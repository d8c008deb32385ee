// systemd's notification protocol (sd_notify(3)) without libsystemd: newline-separated KEY=VALUE
// fields in one datagram to the unix socket named by $NOTIFY_SOCKET (a path, or "@name" for an
// abstract socket). Used by the watchdog (the service's main process) for Type=notify readiness,
// reload/stop progress, and WatchdogSec= keep-alive pings.
//
// Notification is best effort: when systemd is not listening (started by hand, NOTIFY_SOCKET stale)
// vigil must run exactly as it would otherwise, so failures are logged once and never thrown.
import { monotonicUsec, UnixDgramSocket } from "../../ffi/unix-dgram.ts";
import type { Logger } from "../observe/log.ts";

/** The environment variables systemd sets for a notify service (and that children must not inherit). */
export const SYSTEMD_NOTIFY_ENV = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] as const;

type Env = Record<string, string | undefined>;

/** The notification text for `fields`; values are single-line (a newline would start a new field). */
export function formatNotify(fields: Record<string, string | number | bigint>): string {
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${String(v).replace(/[\r\n]+/g, " ")}`)
    .join("\n");
}

/**
 * How often to send WATCHDOG=1, or null when systemd does not expect pings from `pid`: half of
 * WATCHDOG_USEC, as sd_watchdog_enabled(3) recommends, so one late ping does not trip it.
 */
export function watchdogIntervalMs(env: Env, pid: number): number | null {
  const usecText = env["WATCHDOG_USEC"];
  if (!usecText || !/^\d+$/.test(usecText)) return null;
  const usec = Number(usecText);
  if (usec <= 0) return null;
  const wpid = env["WATCHDOG_PID"];
  // WATCHDOG_PID names the process systemd watches; a child that inherited it must not ping
  if (wpid !== undefined && wpid !== "" && Number(wpid) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2 / 1000));
}

const NOTIFY_SOCKET_RE = /^(\/|@)/;

export class SdNotify {
  private sock: UnixDgramSocket | null = null;
  private pinger: ReturnType<typeof setInterval> | null = null;
  private warned = false;
  /** Datagrams sent successfully, for tests and status. */
  sent = 0;

  private constructor(
    private readonly path: string | null,
    private readonly pingMs: number | null,
    private readonly log: Logger | undefined,
  ) {}

  /** From $NOTIFY_SOCKET / $WATCHDOG_USEC / $WATCHDOG_PID; disabled when NOTIFY_SOCKET is unset. */
  static fromEnv(env: Env = process.env, log?: Logger, pid = process.pid): SdNotify {
    const raw = env["NOTIFY_SOCKET"];
    let path: string | null = null;
    if (raw && NOTIFY_SOCKET_RE.test(raw)) path = raw;
    else if (raw)
      log?.warn({ notifySocket: raw }, "NOTIFY_SOCKET is not a unix socket path; sd_notify disabled");
    return new SdNotify(path, path ? watchdogIntervalMs(env, pid) : null, log);
  }

  get enabled(): boolean {
    return this.path !== null;
  }

  /** The WATCHDOG=1 period in ms, or null when systemd's watchdog is off for this process. */
  get watchdogMs(): number | null {
    return this.pingMs;
  }

  /** Sends one notification; false when disabled or the send failed (logged once). */
  notify(fields: Record<string, string | number | bigint>): boolean {
    if (this.path === null) return false;
    try {
      this.sock ??= UnixDgramSocket.create();
      this.sock.sendTo(this.path, new TextEncoder().encode(formatNotify(fields)));
      this.sent++;
      return true;
    } catch (e) {
      if (!this.warned) {
        this.warned = true;
        this.log?.warn(
          { notifySocket: this.path, err: String(e) },
          "sd_notify failed (further failures not logged)",
        );
      }
      return false;
    }
  }

  ready(status?: string): boolean {
    return this.notify(status === undefined ? { READY: 1 } : { READY: 1, STATUS: status });
  }

  status(text: string): boolean {
    return this.notify({ STATUS: text });
  }

  /** Start of a reload; systemd (Type=notify-reload) pairs it with the MONOTONIC_USEC timestamp. */
  reloading(status?: string): boolean {
    const f: Record<string, string | number | bigint> = { RELOADING: 1, MONOTONIC_USEC: monotonicUsec() };
    if (status !== undefined) f["STATUS"] = status;
    return this.notify(f);
  }

  stopping(status?: string): boolean {
    return this.notify(status === undefined ? { STOPPING: 1 } : { STOPPING: 1, STATUS: status });
  }

  /**
   * Starts WATCHDOG=1 pings when systemd asked for them; returns whether it did. The pings run on
   * the watchdog's own event loop on purpose: if that loop hangs, pings stop and systemd restarts us.
   */
  startWatchdogPings(): boolean {
    if (this.pingMs === null || this.pinger !== null) return this.pinger !== null;
    this.notify({ WATCHDOG: 1 });
    this.pinger = setInterval(() => this.notify({ WATCHDOG: 1 }), this.pingMs);
    // pings alone must not keep a process alive that has otherwise finished
    this.pinger.unref();
    return true;
  }

  stopWatchdogPings(): void {
    if (this.pinger !== null) clearInterval(this.pinger);
    this.pinger = null;
  }

  close(): void {
    this.stopWatchdogPings();
    this.sock?.close();
    this.sock = null;
  }
}
