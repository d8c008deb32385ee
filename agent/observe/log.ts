// JSON lines to stdout (journald reads them). No pino transports: they need worker files that a
// single compiled binary does not carry, and they hang at exit.
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(opts: { level?: string; bindings?: Record<string, unknown> } = {}): Logger {
  const logger = pino(
    {
      level: opts.level ?? process.env["VIGIL_LOG_LEVEL"] ?? "info",
      base: { pid: process.pid, ...(opts.bindings ?? {}) },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: true }),
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
