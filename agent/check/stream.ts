// A TCP (optionally TLS) client connection for the checkers, bounded by one deadline.
//
// Bun.connect is the fast path (no per-connection stream objects), but it cannot choose the local
// address; a checker with `bindto`/`bind_port` goes through node:net / node:tls, which can.
// TLS never verifies the peer: keepalived's SSL_GET does not either (it checks the service, not the
// certificate), and real servers commonly carry certificates for the virtual name, not their address.
import * as net from "node:net";
import * as tls from "node:tls";
import type { ConnectOptions } from "./types.ts";

export interface StreamEvents {
  /** connected (and, with TLS, handshake done) */
  open(write: (b: Uint8Array | string) => void): void;
  data(chunk: Uint8Array): void;
  /** the peer closed its side */
  end(): void;
  /** connect or I/O error, e.g. "ECONNREFUSED" */
  error(code: string): void;
}

export interface TlsMode {
  /** SNI name to send (enable_sni); none when undefined */
  serverName?: string;
}

/** Closes the connection at once; no further events are delivered. */
export type Abort = () => void;

/** A stable error code from whatever a socket API threw or reported. */
export function errorCode(e: unknown): string {
  if (e && typeof e === "object") {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code) return code;
    const msg = (e as { message?: unknown }).message;
    if (typeof msg === "string" && msg) return msg;
  }
  return String(e ?? "error");
}

export function openStream(conn: ConnectOptions, tlsMode: TlsMode | null, ev: StreamEvents): Abort {
  if (conn.bindto !== undefined || conn.bindPort !== undefined) return openNodeStream(conn, tlsMode, ev);
  return openBunStream(conn, tlsMode, ev);
}

function openBunStream(conn: ConnectOptions, tlsMode: TlsMode | null, ev: StreamEvents): Abort {
  let closed = false;
  let sock: Bun.Socket<undefined> | undefined;
  let pending: Uint8Array | null = null;
  const enc = new TextEncoder();
  const write = (b: Uint8Array | string): void => {
    if (closed || !sock) return;
    const bytes = typeof b === "string" ? enc.encode(b) : b;
    const data = pending ? concat(pending, bytes) : bytes;
    const n = sock.write(data);
    pending = n < data.length ? data.subarray(Math.max(n, 0)) : null;
  };
  const opened = (s: Bun.Socket<undefined>): void => {
    if (closed) return;
    sock = s;
    ev.open(write);
  };
  const handler: Bun.SocketHandler<undefined> = {
    open(s) {
      sock = s;
      if (!tlsMode) opened(s);
    },
    handshake(s) {
      // keepalived ignores verification errors, so the handshake result is not inspected
      if (tlsMode) opened(s);
    },
    data(_s, chunk) {
      if (!closed) ev.data(chunk);
    },
    drain() {
      if (pending) write(new Uint8Array(0));
    },
    end() {
      if (!closed) ev.end();
    },
    close(_s, err) {
      if (closed) return;
      if (err) ev.error(errorCode(err));
      else ev.end();
    },
    error(_s, err) {
      if (!closed) ev.error(errorCode(err));
    },
    connectError(_s, err) {
      if (!closed) ev.error(errorCode(err));
    },
  };
  const host = stripBrackets(conn.connectIp);
  const tlsOpt: Bun.TLSOptions | undefined = tlsMode
    ? { rejectUnauthorized: false, ...(tlsMode.serverName ? { serverName: tlsMode.serverName } : {}) }
    : undefined;
  Bun.connect({
    hostname: host,
    port: conn.connectPort,
    socket: handler,
    ...(tlsOpt ? { tls: tlsOpt } : {}),
  }).then(
    (s) => {
      if (closed) s.terminate();
      else sock = s;
    },
    (err: unknown) => {
      if (!closed) ev.error(errorCode(err));
    },
  );
  return () => {
    if (closed) return;
    closed = true;
    // terminate, not end: a checker has nothing more to say and must not wait for the peer's FIN
    sock?.terminate();
  };
}

function openNodeStream(conn: ConnectOptions, tlsMode: TlsMode | null, ev: StreamEvents): Abort {
  let closed = false;
  const host = stripBrackets(conn.connectIp);
  const base = {
    host,
    port: conn.connectPort,
    ...(conn.bindto !== undefined ? { localAddress: conn.bindto } : {}),
    ...(conn.bindPort !== undefined ? { localPort: conn.bindPort } : {}),
  };
  const s: net.Socket = tlsMode
    ? tls.connect({
        ...base,
        rejectUnauthorized: false,
        ...(tlsMode.serverName ? { servername: tlsMode.serverName } : {}),
      })
    : net.connect(base);
  const write = (b: Uint8Array | string): void => {
    if (!closed) s.write(b);
  };
  s.once(tlsMode ? "secureConnect" : "connect", () => {
    if (!closed) ev.open(write);
  });
  s.on("data", (chunk: Buffer) => {
    if (!closed) ev.data(chunk);
  });
  s.on("end", () => {
    if (!closed) ev.end();
  });
  s.on("error", (err: unknown) => {
    if (!closed) ev.error(errorCode(err));
  });
  return () => {
    if (closed) return;
    closed = true;
    s.destroy();
  };
}

function stripBrackets(ip: string): string {
  return ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
