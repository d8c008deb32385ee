// TCP_CHECK (keepalived check_tcp.c): success when the three-way handshake completes within
// connect_timeout; the connection is closed at once without sending anything.
//
// This is the checker that runs by the thousand, so its per-check cost is kept to what the kernel
// needs: one handler object shared by every connection (Bun keeps a per-socket `data` slot for the
// check's context), one small context and one timer per check, and a callback instead of a promise
// chain (tcpProbe; the scheduler calls it directly). A check with bindto/bind_port goes through
// openStream's node:net path, which can choose the local address.
import { errorCode, openStream } from "./stream.ts";
import { type CheckResult, nowMs, type TcpCheckSpec } from "./types.ts";

export type Done = (r: CheckResult) => void;

interface Probe {
  done: Done;
  start: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  sock: Bun.Socket<Probe> | undefined;
  settled: boolean;
}

function settle(p: Probe, ok: boolean, reason: string): void {
  if (p.settled) return;
  p.settled = true;
  clearTimeout(p.timer);
  // terminate, not end: a checker has nothing to say and must not wait for the peer's FIN
  p.sock?.terminate();
  p.done({ ok, reason, latencyMs: nowMs() - p.start });
}

const HANDLER: Bun.SocketHandler<Probe> = {
  open(s) {
    s.data.sock = s;
    settle(s.data, true, "connected");
  },
  data() {},
  end(s) {
    settle(s.data, false, "closed before connect");
  },
  close(s, err) {
    settle(s.data, false, err ? errorCode(err) : "closed before connect");
  },
  error(s, err) {
    settle(s.data, false, errorCode(err));
  },
  connectError(s, err) {
    settle(s.data, false, errorCode(err));
  },
};

function stripBrackets(ip: string): string {
  return ip.charCodeAt(0) === 91 /* [ */ && ip.endsWith("]") ? ip.slice(1, -1) : ip;
}

/** One TCP check; `done` is called exactly once. */
export function tcpProbe(spec: TcpCheckSpec, done: Done): void {
  const conn = spec.conn;
  if (conn.bindto !== undefined || conn.bindPort !== undefined) {
    boundProbe(spec, done);
    return;
  }
  const p: Probe = { done, start: nowMs(), timer: undefined, sock: undefined, settled: false };
  p.timer = setTimeout(settle, conn.connectTimeoutMs, p, false, "timeout");
  Bun.connect({
    hostname: stripBrackets(conn.connectIp),
    port: conn.connectPort,
    socket: HANDLER,
    data: p,
  }).then(
    (s) => {
      // the promise can resolve after the timeout fired: that socket is closed here
      if (p.settled) s.terminate();
      else p.sock = s;
    },
    (err: unknown) => settle(p, false, errorCode(err)),
  );
}

/** bindto / bind_port: node:net, which can bind the local end. */
function boundProbe(spec: TcpCheckSpec, done: Done): void {
  const start = nowMs();
  let settled = false;
  let abort: (() => void) | undefined;
  const finish = (ok: boolean, reason: string): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    abort?.();
    done({ ok, reason, latencyMs: nowMs() - start });
  };
  const timer = setTimeout(finish, spec.conn.connectTimeoutMs, false, "timeout");
  abort = openStream(spec.conn, null, {
    open: () => finish(true, "connected"),
    data: () => {},
    end: () => finish(false, "closed before connect"),
    error: (code) => finish(false, code),
  });
  // openStream may have reported synchronously before `abort` existed
  if (settled) abort();
}

export function tcpCheck(spec: TcpCheckSpec): Promise<CheckResult> {
  return new Promise((resolve) => tcpProbe(spec, resolve));
}
