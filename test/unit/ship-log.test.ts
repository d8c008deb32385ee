// agent/observe/log.ts: JSON lines by default, `HH:MM:SS.mmm LEVEL [proc] msg key=value` on a terminal.
// The formatter is tested as a pure function; the choice of format end to end in real processes, one
// of them on a pseudo-terminal (`script`, Debian's bsdutils, Essential).
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatRecord, jsonRecord, logFormat } from "../../agent/observe/log.ts";

const at = new Date(2026, 0, 2, 3, 4, 5, 67); // local time 03:04:05.067
const LOG_TS = join(import.meta.dir, "..", "..", "agent", "observe", "log.ts");

describe("formatRecord", () => {
  test("a transition: time, level, proc, message, then instance/from/to/reason", () => {
    const line = formatRecord({
      level: "info",
      time: at.toISOString(),
      pid: 4242,
      proc: "vrrp",
      event: "transition",
      instance: "VI_1",
      from: "BACKUP",
      to: "MASTER",
      reason: "master_down",
      priority: 150,
      msg: "(VI_1) Entering MASTER STATE",
    });
    expect(line).toBe(
      "03:04:05.067 INFO  [vrrp] (VI_1) Entering MASTER STATE event=transition instance=VI_1 from=BACKUP to=MASTER reason=master_down priority=150",
    );
  });

  test("values: quoted when they need it, JSON for objects, no pid/hostname/time", () => {
    const line = formatRecord({
      level: "warn",
      time: at.getTime(),
      pid: 1,
      hostname: "h",
      msg: "x",
      err: "Error: boom here",
      eq: "a=b",
      quote: 'say "hi"',
      empty: "",
      ok: true,
      none: null,
      list: ["192.0.2.1", "192.0.2.2"],
      obj: { a: 1 },
    });
    expect(line).toBe(
      '03:04:05.067 WARN  x err="Error: boom here" eq="a=b" quote="say \\"hi\\"" empty="" ok=true none=null list=["192.0.2.1","192.0.2.2"] obj={"a":1}',
    );
  });

  test("every level is five columns wide; color only when asked", () => {
    for (const [level, text] of [
      ["trace", "TRACE"],
      ["debug", "DEBUG"],
      ["info", "INFO "],
      ["warn", "WARN "],
      ["error", "ERROR"],
      ["fatal", "FATAL"],
    ] as const) {
      expect(formatRecord({ level, time: at.toISOString(), msg: "m" })).toBe(`03:04:05.067 ${text} m`);
    }
    const colored = formatRecord({ level: "error", time: at.toISOString(), msg: "m" }, { color: true });
    expect(colored).toBe("03:04:05.067 \x1b[31mERROR\x1b[0m m");
  });

  test("a record without time or message still gives a line", () => {
    expect(formatRecord({ level: "info", proc: "watchdog", a: 1 })).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[watchdog\] a=1$/,
    );
  });
});

describe("JSON records (pino's layout, without pino)", () => {
  test("level, time, bindings, fields, msg in that order; fixed keys cannot be overridden", () => {
    const line = jsonRecord(
      "warn",
      new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 67)),
      { pid: 7, proc: "vrrp" },
      { instance: "VI_1", level: "fake", pid: 1, msg: "fake" },
      "m",
    );
    expect(line).toBe(
      '{"level":"warn","time":"2026-01-02T03:04:05.067Z","pid":7,"proc":"vrrp","instance":"VI_1","msg":"m"}',
    );
  });

  test("errors keep their message, bigints their digits, cycles do not throw", () => {
    const rec = JSON.parse(jsonRecord("error", new Date(0), {}, { err: new Error("boom"), n: 5n }, "x"));
    expect(rec.err.message).toBe("boom");
    expect(rec.err.type).toBe("Error");
    expect(rec.n).toBe("5");
    const cyc: Record<string, unknown> = {};
    cyc["self"] = cyc;
    expect(JSON.parse(jsonRecord("info", new Date(0), { pid: 1 }, cyc, "c"))).toMatchObject({
      msg: "c",
      unserializable: true,
    });
  });
});

describe("logFormat", () => {
  test("JSON unless stdout is a terminal; VIGIL_LOG_FORMAT forces either", () => {
    expect(logFormat({}, false)).toBe("json");
    expect(logFormat({}, true)).toBe("text");
    expect(logFormat({ VIGIL_LOG_FORMAT: "json" }, true)).toBe("json");
    expect(logFormat({ VIGIL_LOG_FORMAT: "text" }, false)).toBe("text");
    expect(logFormat({ VIGIL_LOG_FORMAT: "bogus" }, true)).toBe("text");
  });
});

describe("createLogger in a process", () => {
  const program = `
    import { createLogger } from ${JSON.stringify(LOG_TS)};
    const log = createLogger({ bindings: { proc: "vrrp" } });
    log.info({ event: "transition", instance: "VI_1", from: "BACKUP", to: "MASTER", reason: "master_down" }, "(VI_1) Entering MASTER STATE");
    log.debug("hidden at info");
  `;
  const run = (cmd: string[], env: Record<string, string> = {}) => {
    const p = Bun.spawnSync(cmd, {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, NO_COLOR: "1", VIGIL_LOG_FORMAT: "", ...env },
      timeout: 10_000,
    });
    return { code: p.exitCode, out: p.stdout.toString().replace(/\r/g, "") };
  };

  test("piped stdout: one JSON line with the transition fields", () => {
    const r = run([process.execPath, "-e", program]);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines.length).toBe(1);
    const rec = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(rec).toMatchObject({
      level: "info",
      proc: "vrrp",
      instance: "VI_1",
      from: "BACKUP",
      to: "MASTER",
    });
    expect(rec["reason"]).toBe("master_down");
  });

  test("a terminal: one text line, and the process exits (no transport left behind)", () => {
    const script = Bun.which("script");
    if (!script) throw new Error("script(1) not found: Debian's bsdutils package");
    const dir = mkdtempSync(join(tmpdir(), "vigil-log-"));
    try {
      const file = join(dir, "prog.ts");
      writeFileSync(file, program);
      const r = run([script, "-qec", `'${process.execPath}' '${file}'`, "/dev/null"]);
      expect(r.code).toBe(0);
      const lines = r.out.trim().split("\n");
      expect(lines.length).toBe(1);
      expect(lines[0]).toMatch(
        /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[vrrp\] \(VI_1\) Entering MASTER STATE event=transition instance=VI_1 from=BACKUP to=MASTER reason=master_down$/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("levels below the logger's are not written; an unknown level falls back to info", () => {
    const prog = `
      import { createLogger } from ${JSON.stringify(LOG_TS)};
      const log = createLogger({ level: "warn" });
      log.info("no"); log.debug({ a: 1 }, "no"); log.warn({ a: 1 }, "yes"); log.error("yes too");
      const bad = createLogger({ level: "loud" });
      bad.debug("no"); bad.info("info line");
    `;
    const r = run([process.execPath, "-e", prog]);
    expect(r.code).toBe(0);
    const recs = r.out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((x) => [x["level"], x["msg"]])).toEqual([
      ["warn", "yes"],
      ["error", "yes too"],
      ["info", "info line"],
    ]);
  });

  test("VIGIL_LOG_FORMAT=text without a terminal", () => {
    const r = run([process.execPath, "-e", program], { VIGIL_LOG_FORMAT: "text" });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[vrrp\] \(VI_1\) Entering MASTER STATE event=transition/,
    );
  });
});
