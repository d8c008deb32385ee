// Logs: JSON lines to stdout (journald reads them), or, when stdout is a terminal, one human-readable
// line per record: `HH:MM:SS.mmm LEVEL [proc] msg key=value ...`. VIGIL_LOG_FORMAT=json|text forces
// either. No pino transports: they need worker files that a single compiled binary does not carry,
// and they hang at exit.
//
// The logger is vigil's own, with the subset of pino's interface the agent uses (`info(fields, msg)`,
// `info(msg)`, levels, JSON records in pino's layout). pino itself pulls Node compatibility modules
// (worker_threads, streams, events) into every process: ~10 MB PSS in each of the three processes of
// an idle agent, for what is here one JSON.stringify and one write(2) per line.
import { writeSync } from "node:fs";

export type LogFormat = "json" | "text";
type LogFn = {
  (fields: Record<string, unknown>, msg?: string): void;
  (msg: string): void;
};
export interface Logger {
  readonly level: string;
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
}

/** json unless stdout is a terminal; VIGIL_LOG_FORMAT=json|text overrides. */
export function logFormat(
  env: Record<string, string | undefined> = process.env,
  isTTY: boolean = process.stdout.isTTY === true,
): LogFormat {
  const forced = env["VIGIL_LOG_FORMAT"];
  if (forced === "json" || forced === "text") return forced;
  return isTTY ? "text" : "json";
}

const LEVEL_COLOR: Record<string, string> = {
  trace: "\x1b[90m",
  debug: "\x1b[36m",
  info: "\x1b[32m",
  warn: "\x1b[33m",
  error: "\x1b[31m",
  fatal: "\x1b[35m",
};
const RESET = "\x1b[0m";
/** fields that the line's fixed columns already show, or that only matter to machines */
const HIDDEN = new Set(["time", "level", "msg", "proc", "pid", "hostname"]);

function pad(n: number, w = 2): string {
  return String(n).padStart(w, "0");
}

function formatValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=\\]+$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean" || v === null) return String(v);
  return JSON.stringify(v) ?? String(v);
}

/**
 * One JSON record as a terminal line (no trailing newline). Local wall-clock time; the level in
 * capitals, padded to five; `[proc]` when the record has one; then every other field as key=value,
 * strings quoted only when they contain spaces, quotes, '=' or backslashes.
 */
export function formatRecord(rec: Record<string, unknown>, opts: { color?: boolean } = {}): string {
  const t =
    typeof rec["time"] === "string" || typeof rec["time"] === "number" ? new Date(rec["time"]) : new Date();
  const time = Number.isNaN(t.getTime())
    ? "??:??:??.???"
    : `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
  const label = String(rec["level"] ?? "info");
  let level = label.toUpperCase().padEnd(5);
  if (opts.color) level = `${LEVEL_COLOR[label] ?? ""}${level}${RESET}`;
  const parts = [time, level];
  if (rec["proc"] !== undefined) parts.push(`[${String(rec["proc"])}]`);
  if (rec["msg"] !== undefined && rec["msg"] !== "") parts.push(String(rec["msg"]));
  for (const [k, v] of Object.entries(rec)) {
    if (HIDDEN.has(k) || v === undefined) continue;
    parts.push(`${k}=${formatValue(v)}`);
  }
  return parts.join(" ");
}

/** pino's numeric levels: a record is written when its level is at least the logger's. */
const LEVEL_VALUES: Record<string, number> = {
  trace: 10,
  debug: 20,
  info: 30,
  warn: 40,
  error: 50,
  fatal: 60,
  silent: Number.POSITIVE_INFINITY,
};

/** Error values would serialize as `{}`: keep their message (and stack, as pino's err serializer does). */
function jsonReplacer(_key: string, v: unknown): unknown {
  if (v instanceof Error) return { type: v.name, message: v.message, stack: v.stack };
  if (typeof v === "bigint") return v.toString();
  return v;
}

/**
 * One record as a JSON line in pino's layout: level, time, the bindings (pid, proc), the fields,
 * then msg. Fields named like the fixed keys do not override them.
 */
export function jsonRecord(
  level: string,
  time: Date,
  bindings: Record<string, unknown>,
  fields: Record<string, unknown> | undefined,
  msg: string | undefined,
): string {
  const rec: Record<string, unknown> = { level, time: time.toISOString(), ...bindings };
  if (fields) for (const [k, v] of Object.entries(fields)) if (!(k in rec) && k !== "msg") rec[k] = v;
  if (msg !== undefined) rec["msg"] = msg;
  try {
    return JSON.stringify(rec, jsonReplacer);
  } catch {
    // a cycle in the fields: the line still says what happened
    return JSON.stringify({ level, time: rec["time"], ...bindings, msg, unserializable: true });
  }
}

const EAGAIN = "EAGAIN";

/** write(2) of the whole line; a full non-blocking pipe is retried briefly, then the line is dropped. */
function writeLine(fd: number, line: string): void {
  const buf = Buffer.from(line);
  let off = 0;
  for (let tries = 0; off < buf.length && tries < 100; ) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== EAGAIN) return; // a closed stdout must not take the agent down
      tries++;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
    }
  }
}

export function createLogger(
  opts: { level?: string; bindings?: Record<string, unknown>; format?: LogFormat; fd?: number } = {},
): Logger {
  const format = opts.format ?? logFormat();
  const fd = opts.fd ?? 1;
  const color = format === "text" && process.stdout.isTTY === true && !process.env["NO_COLOR"];
  const level = logLevel(opts.level ?? process.env["VIGIL_LOG_LEVEL"]);
  const threshold = LEVEL_VALUES[level]!;
  const bindings = { pid: process.pid, ...(opts.bindings ?? {}) };
  const make = (name: string): LogFn => {
    if (LEVEL_VALUES[name]! < threshold) return () => {};
    return ((a: Record<string, unknown> | string, b?: string) => {
      const fields = typeof a === "string" ? undefined : a;
      const msg = typeof a === "string" ? a : b;
      const line = jsonRecord(name, new Date(), bindings, fields, msg);
      if (format === "text") {
        writeLine(fd, `${formatRecord(JSON.parse(line) as Record<string, unknown>, { color })}\n`);
      } else {
        writeLine(fd, `${line}\n`);
      }
    }) as LogFn;
  };
  return {
    level,
    fatal: make("fatal"),
    error: make("error"),
    warn: make("warn"),
    info: make("info"),
    debug: make("debug"),
    trace: make("trace"),
  };
}

/**
 * Rate limiter for log lines about hostile or repeated input: at most `burst` lines per `windowMs`
 * per key; the number suppressed is reported with the next line that gets through.
 */
export class LogLimiter {
  private readonly windows = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(
    private readonly burst = 5,
    private readonly windowMs = 10_000,
  ) {}
  /** Returns null when the line must be suppressed, else the number suppressed since the last one. */
  allow(key: string, now: number): number | null {
    const w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      this.windows.set(key, { start: now, count: 1, suppressed: 0 });
      return suppressed;
    }
    if (w.count < this.burst) {
      w.count++;
      return 0;
    }
    w.suppressed++;
    return null;
  }
}

const LEVELS = new Set(["fatal", "error", "warn", "info", "debug", "trace", "silent"]);

/** A mistyped level must not crash the agent (or crash-loop its children): fall back to info. */
export function logLevel(wanted: string | undefined): string {
  if (wanted === undefined) return "info";
  if (LEVELS.has(wanted)) return wanted;
  process.stderr.write(
    `vigil: unknown log level '${wanted}', using info (one of ${[...LEVELS].join(", ")})\n`,
  );
  return "info";
}
