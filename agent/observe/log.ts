// Logs: JSON lines to stdout (journald reads them), or, when stdout is a terminal, one human-readable
// line per record: `HH:MM:SS.mmm LEVEL [proc] msg key=value ...`. VIGIL_LOG_FORMAT=json|text forces
// either. No pino transports: they need worker files that a single compiled binary does not carry,
// and they hang at exit; the text form is a plain synchronous stream that pino writes into.
import { writeSync } from "node:fs";
import pino from "pino";

export type Logger = pino.Logger;
export type LogFormat = "json" | "text";

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
 * One pino JSON record as a terminal line (no trailing newline). Local wall-clock time; the level in
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

/** A synchronous pino destination that writes formatRecord lines to `fd`. */
export function textDestination(fd = 1, opts: { color?: boolean } = {}): { write(chunk: string): void } {
  return {
    write(chunk: string): void {
      let out: string;
      try {
        out = `${formatRecord(JSON.parse(chunk) as Record<string, unknown>, opts)}\n`;
      } catch {
        out = chunk.endsWith("\n") ? chunk : `${chunk}\n`;
      }
      try {
        writeSync(fd, out);
      } catch {
        // a closed terminal must not take the agent down
      }
    },
  };
}

export function createLogger(
  opts: { level?: string; bindings?: Record<string, unknown>; format?: LogFormat } = {},
): Logger {
  const format = opts.format ?? logFormat();
  const dest =
    format === "text"
      ? textDestination(1, { color: process.stdout.isTTY === true && !process.env["NO_COLOR"] })
      : pino.destination({ dest: 1, sync: true });
  const logger = pino(
    {
      level: logLevel(opts.level ?? process.env["VIGIL_LOG_LEVEL"]),
      base: { pid: process.pid, ...(opts.bindings ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
  return logger;
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
