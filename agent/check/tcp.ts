// TCP_CHECK (keepalived check_tcp.c): success when the three-way handshake completes within
// connect_timeout; the connection is closed at once without sending anything.
import { openStream } from "./stream.ts";
import { type CheckResult, nowMs, type TcpCheckSpec } from "./types.ts";

export function tcpCheck(spec: TcpCheckSpec): Promise<CheckResult> {
  const start = nowMs();
  return new Promise((resolve) => {
    let done = false;
    let abort: (() => void) | undefined;
    const finish = (ok: boolean, reason: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      abort?.();
      resolve({ ok, reason, latencyMs: nowMs() - start });
    };
    const timer = setTimeout(() => finish(false, "timeout"), spec.conn.connectTimeoutMs);
    abort = openStream(spec.conn, null, {
      open: () => finish(true, "connected"),
      data: () => {},
      end: () => finish(false, "closed before connect"),
      error: (code) => finish(false, code),
    });
    // openStream may have reported synchronously before `abort` existed
    if (done) abort();
  });
}
