// TCP_CHECK (keepalived check_tcp.c): success when the three-way handshake completes within
// connect_timeout; the connection is closed at once without sending anything.
//
// This is the checker that runs by the thousand, so its per-check cost is kept to what the kernel
// needs: one handler object shared by every connection (Bun keeps a per-socket `data` slot for the
// check's context), one small context and one timer per check, and a callback instead of a promise
// chain (tcpProbe; the scheduler calls it directly). A check with bindto/bind_port goes through
// openStream's node:net path, which can choose the local address; one with bind_if or fwmark needs
// socket options no JS socket API sets, and connects through ffi/tcp-connect.ts, polled every 2 ms
// while such connects are pending (a few checkers use these options, not thousands).
import { abortTcpConnect, pollTcpConnects, startTcpConnect } from "../../ffi/tcp-connect.ts";
import { familyOf } from "../wire/ip.ts";
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
    const p = s.data;
    // connected after the timeout fired: nobody waits for it any more
    if (p.settled) s.terminate();
    else {
      p.sock = s;
      settle(p, true, "connected");
    }
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
  if (conn.bindIf !== undefined || conn.mark !== undefined) {
    sockoptProbe(spec, done);
    return;
  }
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
    // the socket itself arrives in HANDLER.open; the promise matters only when it rejects
  }).catch((err: unknown) => settle(p, false, errorCode(err)));
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

interface RawProbe {
  fd: number;
  start: number;
  deadline: number;
  done: Done;
}

const rawPending: RawProbe[] = [];
let rawScheduled = false;

/** bind_if / fwmark: a non-blocking connect through ffi, completed by pollRaw(). */
function sockoptProbe(spec: TcpCheckSpec, done: Done): void {
  const conn = spec.conn;
  const start = nowMs();
  const dst = stripBrackets(conn.connectIp);
  let fd: number;
  try {
    fd = startTcpConnect({
      family: familyOf(dst) === 6 ? 6 : 4,
      dst,
      port: conn.connectPort,
      ...(conn.bindto !== undefined ? { src: conn.bindto } : {}),
      ...(conn.bindPort !== undefined ? { srcPort: conn.bindPort } : {}),
      ...(conn.bindIf !== undefined ? { bindIf: conn.bindIf } : {}),
      ...(conn.mark !== undefined ? { mark: conn.mark } : {}),
    });
  } catch (e) {
    const r = { ok: false, reason: errorCode(e), latencyMs: nowMs() - start };
    queueMicrotask(() => done(r));
    return;
  }
  rawPending.push({ fd, start, deadline: start + conn.connectTimeoutMs, done });
  if (!rawScheduled) {
    rawScheduled = true;
    setTimeout(pollRaw, 0);
  }
}

function pollRaw(): void {
  rawScheduled = false;
  const batch = rawPending.splice(0);
  let states: (string | null)[];
  try {
    states = pollTcpConnects(batch.map((p) => p.fd));
  } catch (e) {
    states = batch.map(() => errorCode(e));
  }
  const now = nowMs();
  batch.forEach((p, i) => {
    const st = states[i] ?? null;
    if (st === null && now < p.deadline) {
      rawPending.push(p);
      return;
    }
    abortTcpConnect(p.fd);
    const reason = st ?? "timeout";
    p.done({ ok: reason === "connected", reason, latencyMs: now - p.start });
  });
  if (rawPending.length > 0) {
    rawScheduled = true;
    setTimeout(pollRaw, 2);
  }
}

export function tcpCheck(spec: TcpCheckSpec): Promise<CheckResult> {
  return new Promise((resolve) => tcpProbe(spec, resolve));
}
