// Supervisor IPC: the frame decoder against arbitrary byte streams cut at arbitrary points, round
// trips of every message type, schema rejection, and the same over real unix sockets in-process.
// Also the pure helpers of the supervisor: the self-exec rule, sd_notify formatting and intervals,
// sockaddr_un encoding.
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import {
  type CloseReason,
  connectIpc,
  type DecodeEvent,
  encodeFrame,
  encodeRaw,
  FrameDecoder,
  type FramedConnection,
  FrameTooLargeError,
  type IpcServer,
  listenIpc,
  MAX_FRAME,
} from "../../agent/supervisor/ipc.ts";
import { type Message, parseMessage } from "../../agent/supervisor/messages.ts";
import { formatNotify, watchdogIntervalMs } from "../../agent/supervisor/sdnotify.ts";
import { selfCommand } from "../../agent/supervisor/watchdog.ts";
import { sockaddrUn } from "../../ffi/unix-dgram.ts";
import { until } from "./wait.ts";

const te = new TextEncoder();

// ---- arbitraries ------------------------------------------------------------------------------

const role = fc.stringMatching(/^[a-z][a-z0-9-]{0,31}$/);
// JSON has no -0, NaN or Infinity: numbers that survive the trip
const jsonNumber = fc
  .oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))
  .map((n) => (Object.is(n, -0) ? 0 : n));
const json = fc.jsonValue({ maxDepth: 3 });
const record = fc.dictionary(fc.string({ maxLength: 12 }), json, { maxKeys: 5 });

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ type: fc.constant("hello" as const), role, pid: fc.integer({ min: 1, max: 4_194_304 }) }),
  fc.record({ type: fc.constant("heartbeat" as const), seq: fc.nat(), at: jsonNumber }),
  fc.record({ type: fc.constant("config" as const), generation: fc.nat(), config: json }),
  fc.record({ type: fc.constant("state" as const), instances: record }),
  fc.record(
    {
      type: fc.constant("event" as const),
      name: fc.string({ minLength: 1, maxLength: 128 }),
      at: jsonNumber,
      data: record,
    },
    { requiredKeys: ["type", "name", "at"] },
  ),
  fc.record(
    {
      type: fc.constant("reload_result" as const),
      generation: fc.nat(),
      ok: fc.boolean(),
      error: fc.string(),
    },
    { requiredKeys: ["type", "ok"] },
  ),
  fc.record({ type: fc.constant("shutdown" as const), reason: fc.string() }, { requiredKeys: ["type"] }),
);

/** Cut `bytes` at the given (arbitrary, unsorted, possibly repeated) offsets. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function decodeAll(chunks: Uint8Array[], max = MAX_FRAME): DecodeEvent[] {
  const d = new FrameDecoder(max);
  return chunks.flatMap((c) => d.push(c));
}

/** What a message looks like after JSON (undefined fields vanish). */
const viaJson = (m: Message): unknown => JSON.parse(JSON.stringify(m));

const frame = (payload: string | Uint8Array) =>
  encodeRaw(typeof payload === "string" ? te.encode(payload) : payload);
const header = (len: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, len >>> 0, false);
  return b;
};

// ---- decoder properties -----------------------------------------------------------------------

describe("FrameDecoder properties", () => {
  test("round trip: any messages, encoded and cut anywhere, decode to the same messages in order", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (msgs, cuts) => {
          const stream = concat(msgs.map((m) => encodeFrame(m)));
          const events = decodeAll(split(stream, cuts));
          expect(events.every((e) => e.kind === "message")).toBe(true);
          expect(events.map((e) => (e.kind === "message" ? viaJson(e.msg) : null))).toEqual(
            msgs.map(viaJson),
          );
        },
      ),
      { numRuns: 400 },
    );
  });

  test("arbitrary bytes cut anywhere: never throws, nothing after a fatal event, same result as one chunk", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.integer({ min: 0, max: 1024 }),
        (bytes, cuts, max) => {
          const chunked = decodeAll(split(bytes, cuts), max);
          const whole = decodeAll([bytes], max);
          const fatalAt = chunked.findIndex((e) => e.kind === "fatal");
          if (fatalAt >= 0) expect(fatalAt).toBe(chunked.length - 1);
          expect(chunked).toEqual(whole);
        },
      ),
      { numRuns: 1000 },
    );
  });

  test("valid frames, schema-invalid frames and garbage interleaved: each valid frame before the garbage survives", () => {
    const piece = fc.oneof(
      messageArb.map((m) => ({ kind: "ok" as const, bytes: encodeFrame(m), msg: m })),
      // valid JSON, wrong shape: dropped, the stream goes on
      json.map((v) => ({ kind: "bad" as const, bytes: frame(JSON.stringify({ type: "nope", v })) })),
      // bytes that are not a frame (the stream may or may not survive them, depending on their length field)
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => ({ kind: "junk" as const, bytes: b })),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (pieces, cuts) => {
          const events = decodeAll(split(concat(pieces.map((p) => p.bytes)), cuts));
          // up to the first junk piece the decoder's output is exactly determined
          const clean = pieces.slice(
            0,
            pieces.findIndex((p) => p.kind === "junk") < 0
              ? pieces.length
              : pieces.findIndex((p) => p.kind === "junk"),
          );
          const expected = clean.map((p) => (p.kind === "ok" ? "message" : "rejected"));
          expect(events.slice(0, expected.length).map((e) => e.kind)).toEqual(expected);
          for (let i = 0; i < clean.length; i++) {
            const p = clean[i]!;
            const e = events[i]!;
            if (p.kind === "ok" && e.kind === "message") expect(viaJson(e.msg)).toEqual(viaJson(p.msg));
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---- decoder cases --------------------------------------------------------------------------

describe("FrameDecoder cases", () => {
  const hello: Message = { type: "hello", role: "vrrp", pid: 42 };
  const beat: Message = { type: "heartbeat", seq: 1, at: 1700000000000 };

  test("several frames in one chunk", () => {
    const ev = decodeAll([concat([encodeFrame(hello), encodeFrame(beat), encodeFrame(hello)])]);
    expect(ev.map((e) => e.kind)).toEqual(["message", "message", "message"]);
  });

  test("a frame delivered one byte at a time", () => {
    const bytes = encodeFrame(beat);
    const d = new FrameDecoder();
    const ev: DecodeEvent[] = [];
    for (let i = 0; i < bytes.length; i++) {
      ev.push(...d.push(bytes.subarray(i, i + 1)));
      if (i < bytes.length - 1) expect(ev).toHaveLength(0);
    }
    expect(ev).toEqual([{ kind: "message", msg: beat }]);
    expect(d.buffered).toBe(0);
  });

  test("length 0xFFFFFFFF is fatal before any payload arrives", () => {
    const d = new FrameDecoder();
    const ev = d.push(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
    expect(ev).toEqual([
      { kind: "fatal", reason: "frame-too-large", detail: `length 4294967295 exceeds ${MAX_FRAME}` },
    ]);
    expect(d.failed).toBe("frame-too-large");
    // and the decoder stays dead: a valid frame after it is not trusted
    expect(d.push(encodeFrame(hello))).toEqual([]);
  });

  test("exactly the maximum is accepted, one more byte is not", () => {
    const max = 64;
    const base = JSON.stringify({ type: "shutdown", reason: "" });
    const atMax = JSON.stringify({ type: "shutdown", reason: "x".repeat(max - base.length) });
    expect(te.encode(atMax).length).toBe(max);
    expect(decodeAll([frame(atMax)], max).map((e) => e.kind)).toEqual(["message"]);
    expect(decodeAll([concat([header(max + 1), new Uint8Array(max + 1)])], max)[0]).toMatchObject({
      kind: "fatal",
      reason: "frame-too-large",
    });
  });

  test("zero-length frame, invalid UTF-8, invalid JSON: fatal", () => {
    expect(decodeAll([header(0)])[0]).toMatchObject({ kind: "fatal", reason: "invalid-json" });
    expect(decodeAll([frame(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))])[0]).toMatchObject({
      kind: "fatal",
      reason: "invalid-utf8",
    });
    expect(decodeAll([frame('{"type":"hello",')])[0]).toMatchObject({
      kind: "fatal",
      reason: "invalid-json",
    });
  });

  test("absurdly deep JSON nesting does not throw", () => {
    const deep = "[".repeat(200_000) + "]".repeat(200_000);
    const ev = decodeAll([frame(deep)]);
    expect(ev).toHaveLength(1);
    expect(["rejected", "fatal"]).toContain(ev[0]!.kind);
  });

  test("valid JSON failing the schema: that frame is rejected, the next one still decodes", () => {
    const ev = decodeAll([concat([frame('{"type":"hello","role":"vrrp"}'), encodeFrame(beat)])]);
    expect(ev[0]).toMatchObject({ kind: "rejected", reason: "schema" });
    expect(ev[0]!.kind === "rejected" && ev[0]!.detail).toContain("pid");
    expect(ev[1]).toEqual({ kind: "message", msg: beat });
  });

  test("a large frame is reassembled and its buffer is given back afterwards", () => {
    const big: Message = { type: "config", generation: 1, config: { blob: "y".repeat(3_000_000) } };
    const bytes = encodeFrame(big);
    const d = new FrameDecoder();
    const ev = split(bytes, [1, 3, 65536, 2_000_000]).flatMap((c) => d.push(c));
    expect(ev).toHaveLength(1);
    expect(d.buffered).toBe(0);
  });

  test("encodeFrame refuses what the receiver would refuse", () => {
    const big: Message = { type: "config", generation: 1, config: "z".repeat(100) };
    expect(() => encodeFrame(big, 50)).toThrow(FrameTooLargeError);
  });
});

// ---- schema -------------------------------------------------------------------------------

describe("message schema", () => {
  const bad: [string, unknown][] = [
    ["not an object", "hello"],
    ["null", null],
    ["array", [{ type: "hello" }]],
    ["no type", { role: "vrrp", pid: 1 }],
    ["unknown type", { type: "reboot" }],
    ["hello without pid", { type: "hello", role: "vrrp" }],
    ["hello pid 0", { type: "hello", role: "vrrp", pid: 0 }],
    ["hello pid fractional", { type: "hello", role: "vrrp", pid: 1.5 }],
    ["hello role uppercase", { type: "hello", role: "VRRP", pid: 1 }],
    ["hello role with a space", { type: "hello", role: "vr rp", pid: 1 }],
    ["heartbeat negative seq", { type: "heartbeat", seq: -1, at: 0 }],
    ["heartbeat at string", { type: "heartbeat", seq: 1, at: "now" }],
    ["config without generation", { type: "config", config: {} }],
    ["state instances array", { type: "state", instances: [] }],
    ["event empty name", { type: "event", name: "", at: 0 }],
    ["reload_result ok string", { type: "reload_result", ok: "yes" }],
    ["shutdown reason number", { type: "shutdown", reason: 3 }],
  ];
  for (const [name, value] of bad) {
    test(`rejects ${name}`, () => {
      const r = parseMessage(value);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.length).toBeGreaterThan(0);
    });
  }

  test("accepts every generated message and keeps config opaque", () => {
    fc.assert(
      fc.property(messageArb, (m) => {
        const r = parseMessage(viaJson(m));
        expect(r.ok).toBe(true);
      }),
    );
    const r = parseMessage({ type: "config", generation: 3, config: { anything: [1, "two", null] } });
    expect(r).toEqual({
      ok: true,
      msg: { type: "config", generation: 3, config: { anything: [1, "two", null] } },
    });
  });
});

// ---- real unix sockets ------------------------------------------------------------------------

describe("framed connections over unix sockets", () => {
  let dir = "";
  let server: IpcServer | null = null;
  const clients: FramedConnection[] = [];

  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
    server?.close();
    server = null;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function setup() {
    dir = mkdtempSync(join(tmpdir(), "vigil-ipc-"));
    const received: Message[] = [];
    const rejected: string[] = [];
    const closed: CloseReason[] = [];
    server = listenIpc(join(dir, "s.sock"), {
      message: (c, m) => {
        received.push(m);
        if (m.type === "hello") c.send({ type: "config", generation: 7, config: { from: "server" } });
      },
      rejected: (_c, d) => rejected.push(d),
      close: (_c, r) => closed.push(r),
    });
    return { path: join(dir, "s.sock"), received, rejected, closed };
  }

  test("messages both ways, including one larger than the socket buffer", async () => {
    const s = setup();
    const got: Message[] = [];
    const c = await connectIpc(s.path, { message: (_c, m) => got.push(m) });
    clients.push(c);
    c.send({ type: "hello", role: "check", pid: process.pid });
    const big: Message = { type: "state", instances: { x: "q".repeat(4_000_000) } };
    c.send(big);
    await until(() => s.received.length === 2 && got.length === 1);
    expect(s.received[0]).toEqual({ type: "hello", role: "check", pid: process.pid });
    expect(s.received[1]).toEqual(big);
    expect(got[0]).toEqual({ type: "config", generation: 7, config: { from: "server" } });
  });

  test("garbage closes only the offending connection; the server keeps serving", async () => {
    const s = setup();
    const bad = await connectIpc(s.path, { message: () => {} });
    clients.push(bad);
    bad.writeRaw(te.encode("GET / HTTP/1.1\r\n\r\n"));
    await until(() => s.closed.length === 1);
    expect(s.closed[0]).toMatchObject({ kind: "protocol", reason: "frame-too-large" });

    const overflow = await connectIpc(s.path, { message: () => {} });
    clients.push(overflow);
    overflow.writeRaw(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0]));
    await until(() => s.closed.length === 2);
    expect(s.closed[1]).toMatchObject({ kind: "protocol", reason: "frame-too-large" });

    const schema = await connectIpc(s.path, { message: () => {} });
    clients.push(schema);
    schema.writeRaw(frame('{"type":"hello","role":"vrrp","pid":-3}'));
    await until(() => s.rejected.length === 1);

    // half a frame, then the peer goes away: no message, no crash
    const partial = await connectIpc(s.path, { message: () => {} });
    partial.writeRaw(encodeFrame({ type: "hello", role: "vrrp", pid: 9 }).subarray(0, 10));
    await Bun.sleep(20);
    partial.close();

    const good = await connectIpc(s.path, { message: () => {} });
    clients.push(good);
    good.send({ type: "heartbeat", seq: 1, at: 2 });
    await until(() => s.received.some((m) => m.type === "heartbeat"));
    expect(s.received.filter((m) => m.type === "hello")).toHaveLength(0);
  });

  test("the client sees the server going away", async () => {
    const s = setup();
    let reason: CloseReason | null = null;
    const c = await connectIpc(s.path, { message: () => {}, close: (_c, r) => (reason = r) });
    clients.push(c);
    server?.close();
    server = null;
    await until(() => reason !== null);
    expect(c.closed).toBe(true);
    expect(c.send({ type: "heartbeat", seq: 1, at: 1 })).toBe(false);
  });

  test("connecting to a missing socket rejects", async () => {
    dir = mkdtempSync(join(tmpdir(), "vigil-ipc-"));
    await expect(connectIpc(join(dir, "none.sock"), { message: () => {} })).rejects.toThrow();
  });
});

// ---- pure helpers -------------------------------------------------------------------------

describe("self-exec rule", () => {
  test("compiled binary: the executable alone; the /$bunfs/ script path is not an argument", () => {
    expect(selfCommand("/$bunfs/root/vigil", "/usr/local/bin/vigil", [])).toEqual(["/usr/local/bin/vigil"]);
  });
  test("from source: bun, its runtime flags, the entry script", () => {
    expect(selfCommand("/src/agent/main.ts", "/usr/bin/bun", ["--smol"])).toEqual([
      "/usr/bin/bun",
      "--smol",
      "/src/agent/main.ts",
    ]);
  });
  test("from source: one-shot flags (watch, hot, inspect) are not inherited", () => {
    expect(
      selfCommand("/src/main.ts", "/usr/bin/bun", [
        "--watch",
        "--hot",
        "--inspect=9229",
        "--smol",
        "--inspect-brk",
      ]),
    ).toEqual(["/usr/bin/bun", "--smol", "/src/main.ts"]);
  });
});

describe("sd_notify helpers", () => {
  test("formatNotify: KEY=VALUE lines, values kept on one line", () => {
    expect(formatNotify({ READY: 1, STATUS: "two\nlines" })).toBe("READY=1\nSTATUS=two lines");
    expect(formatNotify({ RELOADING: 1, MONOTONIC_USEC: 12345n })).toBe("RELOADING=1\nMONOTONIC_USEC=12345");
  });
  test("watchdogIntervalMs: half of WATCHDOG_USEC, only for the watched pid", () => {
    expect(watchdogIntervalMs({}, 10)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "3000000" }, 10)).toBe(1500);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "10" }, 10)).toBe(1500);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "3000000", WATCHDOG_PID: "11" }, 10)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "0" }, 10)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "abc" }, 10)).toBeNull();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: "1000" }, 10)).toBe(1);
  });
  test("sockaddrUn: filesystem path with NUL, abstract name without", () => {
    const p = sockaddrUn("/run/systemd/notify");
    expect(p.len).toBe(2 + 19 + 1);
    expect(p.addr[0]).toBe(1);
    expect(new TextDecoder().decode(p.addr.subarray(2, 21))).toBe("/run/systemd/notify");
    const a = sockaddrUn("@vigil/notify");
    expect(a.len).toBe(2 + 1 + 12);
    expect(a.addr[2]).toBe(0);
    expect(new TextDecoder().decode(a.addr.subarray(3, 15))).toBe("vigil/notify");
    expect(() => sockaddrUn(`/${"x".repeat(107)}`)).toThrow();
    expect(() => sockaddrUn(`/${"x".repeat(106)}`)).not.toThrow();
  });
});
