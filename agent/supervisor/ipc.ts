// Framed, validated messages between the watchdog and its children over unix stream sockets.
//
// Frame: 4-byte big-endian payload length, then that many bytes of UTF-8 JSON. A stream socket
// delivers bytes, not messages, so the decoder reassembles frames split across reads and splits
// reads that carry several frames. The decoder is pure (bytes in, events out) and never throws:
// whatever a peer writes, the receiving process keeps running.
//
// Error policy, by whether the stream can still be trusted:
// - a length above the maximum, a payload that is not UTF-8 or not JSON: the peer does not speak
//   this protocol (or the stream is desynchronised, and every later length would be garbage), so the
//   decoder fails for good and the connection is closed with the reason;
// - valid JSON that fails the message schema: the frame boundary is intact, so that one message is
//   dropped and the stream continues (a newer child may send a message type an older watchdog does
//   not know during an upgrade).
import { chmodSync, rmSync } from "node:fs";
import { type Message, parseMessage } from "./messages.ts";

/**
 * Largest accepted payload. Configs of large IPVS tables (thousands of real servers) reach a few
 * MiB of JSON, so the cap is well above that and far below anything that would hurt the process.
 */
export const MAX_FRAME = 16 * 1024 * 1024;

/**
 * Environment the watchdog gives each child. Env rather than argv so that the child's command line
 * stays what an operator expects in `ps` (`vigil child vrrp -f FILE`), and so that a role's argv is
 * entirely the role's business.
 */
export const SUPERVISOR_ENV = {
  /** path of the watchdog's unix socket */
  socket: "VIGIL_SUPERVISOR_SOCKET",
  /** the role this child was started for */
  role: "VIGIL_CHILD_ROLE",
  /** the watchdog's pid, to detect a parent that died before PR_SET_PDEATHSIG was armed */
  watchdogPid: "VIGIL_WATCHDOG_PID",
  /** heartbeat period in ms */
  heartbeatMs: "VIGIL_HEARTBEAT_MS",
} as const;

/** Bytes a connection may queue for a peer that does not read before it is dropped. */
export const MAX_PENDING_WRITE = 64 * 1024 * 1024;

export type FatalReason = "frame-too-large" | "invalid-utf8" | "invalid-json";

export type DecodeEvent =
  | { kind: "message"; msg: Message }
  /** one frame dropped, the stream continues */
  | { kind: "rejected"; reason: "schema"; detail: string }
  /** the stream is unusable; no further events will be produced */
  | { kind: "fatal"; reason: FatalReason; detail: string };

export class FrameTooLargeError extends Error {
  override readonly name = "FrameTooLargeError";
  constructor(
    readonly size: number,
    readonly max: number,
  ) {
    super(`frame of ${size} bytes exceeds the maximum of ${max}`);
  }
}

const encoder = new TextEncoder();

/** One frame for `msg`; throws FrameTooLargeError rather than send something the peer must refuse. */
export function encodeFrame(msg: Message, maxFrame = MAX_FRAME): Uint8Array {
  return encodeRaw(encoder.encode(JSON.stringify(msg)), maxFrame);
}

/** Frames an arbitrary payload (tests use it to send payloads that are not messages). */
export function encodeRaw(payload: Uint8Array, maxFrame = MAX_FRAME): Uint8Array {
  if (payload.length > maxFrame) throw new FrameTooLargeError(payload.length, maxFrame);
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length, false);
  out.set(payload, 4);
  return out;
}

/** Incremental frame decoder: feed it whatever the socket delivered, get the complete frames. */
export class FrameDecoder {
  private buf = new Uint8Array(4096);
  private start = 0;
  private end = 0;
  private dead: FatalReason | null = null;
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });

  constructor(private readonly maxFrame = MAX_FRAME) {}

  /** The reason the stream was given up, or null while it is healthy. */
  get failed(): FatalReason | null {
    return this.dead;
  }

  /** Bytes received but not yet part of a complete frame. */
  get buffered(): number {
    return this.end - this.start;
  }

  push(chunk: Uint8Array): DecodeEvent[] {
    if (this.dead !== null) return [];
    this.append(chunk);
    const out: DecodeEvent[] = [];
    while (this.end - this.start >= 4) {
      const b = this.buf;
      const s = this.start;
      // >>> 0: the length is unsigned; 0xFFFFFFFF must compare as 4 GiB, not -1
      const len = ((b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!) >>> 0;
      if (len > this.maxFrame) {
        out.push(this.fail("frame-too-large", `length ${len} exceeds ${this.maxFrame}`));
        return out;
      }
      if (this.end - s - 4 < len) break;
      const payload = b.subarray(s + 4, s + 4 + len);
      this.start = s + 4 + len;
      const ev = this.decodePayload(payload);
      out.push(ev);
      if (ev.kind === "fatal") return out;
    }
    if (this.start === this.end) {
      this.start = this.end = 0;
      // give back the memory of a large frame once it has been consumed
      if (this.buf.length > 65536) this.buf = new Uint8Array(4096);
    }
    return out;
  }

  private decodePayload(payload: Uint8Array): DecodeEvent {
    let text: string;
    try {
      text = this.utf8.decode(payload);
    } catch {
      return this.fail("invalid-utf8", `${payload.length}-byte payload is not UTF-8`);
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      // also catches RangeError from absurdly deep nesting
      return this.fail("invalid-json", e instanceof Error ? e.message : String(e));
    }
    const r = parseMessage(value);
    if (r.ok) return { kind: "message", msg: r.msg };
    return { kind: "rejected", reason: "schema", detail: r.error };
  }

  private fail(reason: FatalReason, detail: string): DecodeEvent {
    this.dead = reason;
    this.buf = new Uint8Array(0);
    this.start = this.end = 0;
    return { kind: "fatal", reason, detail };
  }

  private append(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.end + chunk.length > this.buf.length) {
      const live = this.end - this.start;
      const need = live + chunk.length;
      // compact in place when that is enough, else grow geometrically (amortised O(1) per byte)
      const next = need <= this.buf.length ? this.buf : new Uint8Array(Math.max(need, this.buf.length * 2));
      if (next === this.buf) this.buf.copyWithin(0, this.start, this.end);
      else next.set(this.buf.subarray(this.start, this.end), 0);
      this.buf = next;
      this.start = 0;
      this.end = live;
    }
    this.buf.set(chunk, this.end);
    this.end += chunk.length;
  }
}

/** Why a connection ended: the peer closed it, a socket error, or a protocol violation we acted on. */
export type CloseReason =
  | { kind: "peer" }
  | { kind: "local"; detail: string }
  | { kind: "error"; detail: string }
  | { kind: "protocol"; reason: FatalReason | "backpressure"; detail: string };

export function formatCloseReason(r: CloseReason): string {
  switch (r.kind) {
    case "peer":
      return "closed by peer";
    case "local":
      return `closed locally: ${r.detail}`;
    case "error":
      return `socket error: ${r.detail}`;
    case "protocol":
      return `${r.reason}: ${r.detail}`;
  }
}

export interface ConnectionHandlers {
  message(conn: FramedConnection, msg: Message): void;
  /** a frame that failed the schema; the connection stays open */
  rejected?(conn: FramedConnection, detail: string): void;
  close?(conn: FramedConnection, reason: CloseReason): void;
}

/** One end of a framed connection, on top of a Bun socket. */
export class FramedConnection {
  private readonly decoder: FrameDecoder;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private closeReason: CloseReason | null = null;
  private closedNotified = false;
  /** free for the owner: e.g. the role a connection has proven with its hello */
  tag: string | null = null;

  constructor(
    private readonly socket: Bun.Socket<FramedConnection | undefined>,
    private readonly handlers: ConnectionHandlers,
    private readonly maxFrame = MAX_FRAME,
  ) {
    this.decoder = new FrameDecoder(maxFrame);
  }

  get closed(): boolean {
    return this.closeReason !== null;
  }

  /** Queues a message; false when the connection is already closed (the message is dropped). */
  send(msg: Message): boolean {
    if (this.closeReason !== null) return false;
    return this.write(encodeFrame(msg, this.maxFrame));
  }

  /** Writes raw bytes (tests only: lets them send malformed frames through the same path). */
  writeRaw(bytes: Uint8Array): boolean {
    if (this.closeReason !== null) return false;
    return this.write(bytes);
  }

  close(detail = "close requested"): void {
    this.shut({ kind: "local", detail });
  }

  /** @internal socket callbacks */
  onData(chunk: Uint8Array): void {
    for (const ev of this.decoder.push(chunk)) {
      if (this.closeReason !== null) return;
      switch (ev.kind) {
        case "message":
          this.handlers.message(this, ev.msg);
          break;
        case "rejected":
          this.handlers.rejected?.(this, ev.detail);
          break;
        case "fatal":
          this.shut({ kind: "protocol", reason: ev.reason, detail: ev.detail });
          return;
      }
    }
  }

  /** @internal */
  onDrain(): void {
    while (this.pending.length > 0) {
      const head = this.pending[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      this.pendingBytes -= Math.min(n, head.length);
      if (n < head.length) {
        this.pending[0] = head.subarray(n);
        return;
      }
      this.pending.shift();
    }
  }

  /** @internal */
  onClose(error?: Error): void {
    if (this.closeReason === null) {
      this.closeReason = error ? { kind: "error", detail: error.message } : { kind: "peer" };
    }
    this.notifyClosed();
  }

  private write(bytes: Uint8Array): boolean {
    if (this.pending.length > 0) return this.enqueue(bytes);
    const n = this.socket.write(bytes);
    if (n < 0) {
      this.shut({ kind: "error", detail: "write on a closed socket" });
      return false;
    }
    // a short write: the kernel buffer is full; keep the rest for the drain callback
    if (n < bytes.length) return this.enqueue(bytes.subarray(n));
    return true;
  }

  private enqueue(bytes: Uint8Array): boolean {
    if (this.pendingBytes + bytes.length > MAX_PENDING_WRITE) {
      // the peer stopped reading (hung or SIGSTOPped): drop it rather than grow without bound
      this.shut({ kind: "protocol", reason: "backpressure", detail: `${this.pendingBytes} bytes unread` });
      return false;
    }
    // copy: the caller's buffer may be reused after we return
    this.pending.push(bytes.slice());
    this.pendingBytes += bytes.length;
    return true;
  }

  private shut(reason: CloseReason): void {
    if (this.closeReason !== null) return;
    this.closeReason = reason;
    this.pending = [];
    this.pendingBytes = 0;
    this.socket.end();
    // Bun calls close() on the socket later; notify now as well so owners see the reason at once
    this.notifyClosed();
  }

  private notifyClosed(): void {
    if (this.closedNotified || this.closeReason === null) return;
    this.closedNotified = true;
    this.handlers.close?.(this, this.closeReason);
  }
}

function socketHandlers(
  handlers: ConnectionHandlers,
  maxFrame: number,
  onOpen?: (c: FramedConnection) => void,
): Bun.SocketHandler<FramedConnection | undefined> {
  return {
    open(socket) {
      const conn = new FramedConnection(socket, handlers, maxFrame);
      socket.data = conn;
      onOpen?.(conn);
    },
    data(socket, chunk) {
      socket.data?.onData(chunk);
    },
    drain(socket) {
      socket.data?.onDrain();
    },
    close(socket, error) {
      socket.data?.onClose(error);
    },
    error(socket, error) {
      // a handler threw: that is our bug, but it must not take the process down; drop the connection
      socket.data?.onClose(error);
      socket.end();
    },
  };
}

export interface IpcServer {
  readonly path: string;
  readonly connections: ReadonlySet<FramedConnection>;
  /** Stops accepting, closes every connection, removes the socket file. */
  close(): void;
}

/** sun_path holds 108 bytes including the terminating NUL. */
export const UNIX_PATH_MAX = 107;

/**
 * Listens on a unix stream socket at `path` (mode 0600: only the owner, root in production, may talk
 * to the supervisor). A leftover socket file from a killed process is replaced; callers make sure no
 * live owner exists first (the pid file does).
 */
export function listenIpc(
  path: string,
  handlers: ConnectionHandlers & { open?(conn: FramedConnection): void },
  maxFrame = MAX_FRAME,
): IpcServer {
  if (Buffer.byteLength(path) > UNIX_PATH_MAX) {
    throw new Error(`unix socket path longer than ${UNIX_PATH_MAX} bytes: ${path}`);
  }
  rmSync(path, { force: true });
  const connections = new Set<FramedConnection>();
  const wrapped: ConnectionHandlers = {
    message: (c, m) => handlers.message(c, m),
    rejected: (c, d) => handlers.rejected?.(c, d),
    close: (c, r) => {
      connections.delete(c);
      handlers.close?.(c, r);
    },
  };
  const listener = Bun.listen<FramedConnection | undefined>({
    unix: path,
    data: undefined,
    socket: socketHandlers(wrapped, maxFrame, (c) => {
      connections.add(c);
      handlers.open?.(c);
    }),
  });
  chmodSync(path, 0o600);
  return {
    path,
    connections,
    close() {
      for (const c of [...connections]) c.close("server closing");
      listener.stop(true);
      rmSync(path, { force: true });
    },
  };
}

/** Connects to a unix stream socket; rejects when nobody listens there. */
export async function connectIpc(
  path: string,
  handlers: ConnectionHandlers,
  maxFrame = MAX_FRAME,
): Promise<FramedConnection> {
  const socket = await Bun.connect<FramedConnection | undefined>({
    unix: path,
    data: undefined,
    socket: socketHandlers(handlers, maxFrame),
  });
  // open() has run by the time connect resolves
  if (!socket.data) throw new Error(`connection to ${path} did not open`);
  return socket.data;
}
