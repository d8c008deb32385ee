// inotify events as read(2) returns them, and the number in a tracked file, both as keepalived reads
// them (track_file.c process_inotify / process_track_file). Pure, so both are tested on any bytes.
import { fail, ok, type Result } from "./result.ts";

export const IN_MODIFY = 0x2;
export const IN_CLOSE_WRITE = 0x8;
export const IN_MOVED_FROM = 0x40;
export const IN_MOVED_TO = 0x80;
export const IN_CREATE = 0x100;
export const IN_DELETE = 0x200;
export const IN_DELETE_SELF = 0x400;
export const IN_MOVE_SELF = 0x800;
export const IN_Q_OVERFLOW = 0x4000;
export const IN_IGNORED = 0x8000;
export const IN_ISDIR = 0x40000000;
export const IN_MOVE = IN_MOVED_FROM | IN_MOVED_TO;

/** struct inotify_event: wd, mask, cookie, len (4 x 4 bytes), then `len` bytes of NUL-padded name */
const HEADER = 16;

export interface InotifyEvent {
  wd: number;
  mask: number;
  cookie: number;
  /** file name within the watched directory; "" for events on the watched object itself */
  name: string;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** Decodes the records of one read(2). A record cut short is an error; the ones before it are lost too. */
export function decodeInotifyEvents(buf: Uint8Array): Result<InotifyEvent[]> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: InotifyEvent[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER) return fail("truncated", `header at ${off}`);
    const len = dv.getUint32(off + 12, true);
    if (len > buf.length - off - HEADER) return fail("truncated", `name of ${len} bytes at ${off}`);
    const raw = buf.subarray(off + HEADER, off + HEADER + len);
    const nul = raw.indexOf(0);
    out.push({
      wd: dv.getInt32(off, true),
      mask: dv.getUint32(off + 4, true),
      cookie: dv.getUint32(off + 8, true),
      name: utf8.decode(nul < 0 ? raw : raw.subarray(0, nul)),
    });
    off += HEADER + len;
  }
  return ok(out);
}

/** Encodes events the way the kernel lays them out (names NUL-padded to 4 bytes); for tests. */
export function encodeInotifyEvents(events: readonly InotifyEvent[]): Uint8Array {
  const parts = events.map((e) => {
    const name = new TextEncoder().encode(e.name);
    const len = name.length === 0 ? 0 : (name.length + 4) & ~3;
    const b = new Uint8Array(HEADER + len);
    const dv = new DataView(b.buffer);
    dv.setInt32(0, e.wd, true);
    dv.setUint32(4, e.mask >>> 0, true);
    dv.setUint32(8, e.cookie >>> 0, true);
    dv.setUint32(12, len, true);
    b.set(name, HEADER);
    return b;
  });
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * The number in a tracked file, as keepalived reads it: the first 127 bytes through strtol(..., 0),
 * so leading white space, a sign, 0x (hex) and a leading 0 (octal) count, and reading stops at the
 * first character that is not a digit. No digits at all read as 0, like an empty or missing file.
 * null: the number does not fit (keepalived logs "Invalid number" and keeps the previous value).
 */
export function parseTrackFileValue(bytes: Uint8Array): number | null {
  const nul = bytes.subarray(0, 127).indexOf(0);
  const text = String.fromCharCode(...bytes.subarray(0, nul < 0 ? 127 : nul));
  let i = 0;
  while (i < text.length && " \t\n\v\f\r".includes(text[i]!)) i++;
  let sign = 1n;
  if (text[i] === "+" || text[i] === "-") {
    if (text[i] === "-") sign = -1n;
    i++;
  }
  let base = 10;
  if (text[i] === "0") {
    const x = text[i + 1];
    if ((x === "x" || x === "X") && /[0-9a-fA-F]/.test(text[i + 2] ?? "")) {
      base = 16;
      i += 2;
    } else base = 8;
  }
  let v = 0n;
  let digits = 0;
  for (; i < text.length; i++) {
    const d = Number.parseInt(text[i]!, 36);
    if (Number.isNaN(d) || d >= base) break;
    v = v * BigInt(base) + BigInt(d);
    digits++;
  }
  if (digits === 0) return 0;
  const n = sign * v;
  // strtol saturates at the range of long (64 bits) with ERANGE; keepalived then ignores the value,
  // as it does anything outside [INT32_MIN, INT32_MAX + 1]
  if (n < BigInt(INT32_MIN) || n > BigInt(INT32_MAX) + 1n) return null;
  return Number(n);
}
