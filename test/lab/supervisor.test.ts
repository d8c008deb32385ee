// The watchdog process model with real processes: test/lab/fixtures/supervised.ts is a watchdog
// with two roles (vrrp, check) whose children only heartbeat. Run from source and as a compiled
// binary. No namespaces needed; state dirs live under /tmp.
//
// Every process started here carries VIGIL_TEST_TAG in its environment (children inherit it), so
// cleanup finds them all by scanning /proc, whatever a failed test left behind.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectIpc, encodeFrame, encodeRaw, type FramedConnection } from "../../agent/supervisor/ipc.ts";
import {
  acquirePidFile,
  PidFileLockedError,
  processRunning,
  readPidFile,
} from "../../agent/supervisor/pidfile.ts";
import { UnixDgramSocket } from "../../ffi/unix-dgram.ts";

// real processes, real timeouts (the heartbeat test alone waits 3 s); not bun's 5 s default
setDefaultTimeout(30_000);

const root = join(import.meta.dir, "..", "..");
const fixture = join(import.meta.dir, "fixtures", "supervised.ts");
const TAG = `sv-${process.pid}-${Date.now()}`;
const te = new TextEncoder();
const td = new TextDecoder();

interface LogLine {
  level?: string;
  msg?: string;
  pid?: number;
  proc?: string;
  role?: string;
  childPid?: number;
  reason?: string;
  [k: string]: unknown;
}

// ---- process helpers ------------------------------------------------------------------------

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

/** Live (non-zombie) processes carrying this run's tag. */
function taggedProcesses(): number[] {
  const out: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const env = readProc(pid, "environ");
    if (env?.split("\0").includes(`VIGIL_TEST_TAG=${TAG}`) && processRunning(pid)) out.push(pid);
  }
  return out;
}

function killTagged(): void {
  for (const pid of taggedProcesses()) {
    try {
      process.kill(pid, "SIGCONT");
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function argvOf(pid: number): string[] {
  return (readProc(pid, "cmdline") ?? "").split("\0").filter((a) => a !== "");
}

function ppidOf(pid: number): number {
  const stat = readProc(pid, "stat") ?? "";
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

function psArgs(pid: number): string {
  return Bun.spawnSync(["ps", "-o", "args=", "-p", String(pid)])
    .stdout.toString()
    .trim();
}

async function until<T>(what: string, f: () => T | null | undefined | false, timeoutMs = 5000): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== null && v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(5);
  }
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "vigil-sv-"));
  dirs.push(d);
  return d;
}

/** A running fixture watchdog and the JSON lines it and its children print. */
class Supervised {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly proc: Bun.Subprocess<"ignore", "pipe", "pipe">;

  constructor(
    readonly command: string[],
    readonly stateDir: string,
    args: string[] = [],
    env: Record<string, string> = {},
  ) {
    this.proc = Bun.spawn([...command, "watchdog", "--state-dir", stateDir, ...args], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, VIGIL_TEST_TAG: TAG, ...env },
    });
    void this.pump(this.proc.stdout, (l) => {
      if (!l.startsWith("{")) return;
      try {
        this.lines.push(JSON.parse(l) as LogLine);
      } catch {
        // a partial line from a process killed mid-write
      }
    });
    void this.pump(this.proc.stderr, (l) => this.stderr.push(l));
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async pump(s: ReadableStream<Uint8Array>, sink: (line: string) => void): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (process.env["VIGIL_TEST_VERBOSE"]) console.log(`[sv] ${line}`);
        sink(line);
      }
    }
  }

  /** First line at index >= from matching `pred`, with its index. */
  async waitLog(
    what: string,
    pred: (l: LogLine) => boolean,
    from = 0,
    timeoutMs = 8000,
  ): Promise<{ line: LogLine; index: number }> {
    return until(
      what,
      () => {
        for (let i = from; i < this.lines.length; i++)
          if (pred(this.lines[i]!)) return { line: this.lines[i]!, index: i };
        return null;
      },
      timeoutMs,
    );
  }

  /** Pids of the current children by role, from the watchdog's "child up" lines. */
  async up(): Promise<{ vrrp: number; check: number; index: number }> {
    const { index } = await this.waitLog("all children up", (l) => l.msg === "all children up");
    return { vrrp: this.current("vrrp"), check: this.current("check"), index };
  }

  current(role: string): number {
    const ups = this.lines.filter((l) => l.msg === "child up" && l.role === role);
    return ups[ups.length - 1]?.childPid ?? 0;
  }

  async status(): Promise<{ role: string; pid: number | null; restarts: number; crashLooping: boolean }[]> {
    const from = this.lines.length;
    process.kill(this.pid, "SIGUSR2");
    const { line } = await this.waitLog("status", (l) => l.msg === "status", from);
    return line["status"] as { role: string; pid: number | null; restarts: number; crashLooping: boolean }[];
  }

  kill(sig: NodeJS.Signals = "SIGKILL"): void {
    try {
      this.proc.kill(sig);
    } catch {
      // gone
    }
  }
}

/** The child message a "child message" log line carries. */
function replyOf(l: LogLine): { type?: string; generation?: number } | null {
  return l.msg === "child message" ? (l["message"] as { type?: string; generation?: number }) : null;
}

function marker(dir: string, role: string, pid: number): string | null {
  const p = join(dir, `${role}.${pid}.shutdown`);
  return existsSync(p) ? readFileSync(p, "utf8") : null;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function memoryOf(pid: number): { rssKb: number; pssKb: number } {
  const text = readProc(pid, "smaps_rollup") ?? "";
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
  return { rssKb: field("Rss"), pssKb: field("Pss") };
}

// ---- setup --------------------------------------------------------------------------------

const sourceCmd = [process.execPath, fixture];
let binDir = "";
let binaryCmd: string[] = [];
const results: Record<string, unknown> = {};

beforeAll(async () => {
  binDir = tempDir();
  const out = join(binDir, "supervised");
  const b = Bun.spawnSync([process.execPath, "build", "--compile", fixture, "--outfile", out], { cwd: root });
  if (b.exitCode !== 0) throw new Error(`bun build --compile failed: ${b.stderr.toString()}`);
  binaryCmd = [out];
});

afterEach(() => {
  killTagged();
});

afterAll(() => {
  killTagged();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (Object.keys(results).length > 0) console.log(`SUPERVISOR_BENCH ${JSON.stringify(results)}`);
});

// ---- tests --------------------------------------------------------------------------------

describe.each([
  ["source", () => sourceCmd],
  ["binary", () => binaryCmd],
] as const)("%s mode", (mode, command) => {
  test("both children start with their role words in ps, re-executing the same program", async () => {
    const dir = tempDir();
    const sv = new Supervised(command(), dir);
    const { vrrp, check } = await sv.up();
    for (const [role, pid] of [
      ["vrrp", vrrp],
      ["check", check],
    ] as const) {
      expect(psArgs(pid)).toContain(`child ${role} --state-dir ${dir}`);
      expect(ppidOf(pid)).toBe(sv.pid);
      const argv = argvOf(pid);
      if (mode === "binary") {
        // the binary alone: no /$bunfs/ path, no script
        expect(argv.slice(0, 3)).toEqual([binaryCmd[0]!, "child", role]);
        expect(readlinkSync(`/proc/${pid}/exe`)).toBe(binaryCmd[0]!);
      } else {
        expect(argv.slice(0, 4)).toEqual([process.execPath, fixture, "child", role]);
      }
      // sd_notify variables are the watchdog's alone
      expect(readProc(pid, "environ")).not.toContain("NOTIFY_SOCKET=");
    }
    // config went down, reload_result and state came back up
    for (const role of ["vrrp", "check"]) {
      await sv.waitLog(
        `${role} reload_result`,
        (l) => l.role === role && replyOf(l)?.type === "reload_result",
      );
      await sv.waitLog(`${role} state`, (l) => l.role === role && replyOf(l)?.type === "state");
    }
    expect(readPidFile(join(dir, "vigil.pid"))).toBe(sv.pid);
  });

  test("kill -9 of the watchdog: children run their shutdown hook and exit within 1 s", async () => {
    const dir = tempDir();
    const sv = new Supervised(command(), dir);
    const { vrrp, check } = await sv.up();
    const t0 = performance.now();
    sv.kill("SIGKILL");
    await until("children gone", () => !processRunning(vrrp) && !processRunning(check), 3000);
    const goneMs = performance.now() - t0;
    results[`${mode}.orphanExitMs`] = Math.round(goneMs);
    expect(goneMs).toBeLessThan(1000);
    for (const [role, pid] of [
      ["vrrp", vrrp],
      ["check", check],
    ] as const) {
      const why = marker(dir, role, pid);
      expect(why).not.toBeNull();
      expect(why!).toMatch(/watchdog died|watchdog connection lost/);
    }
    expect(taggedProcesses()).toEqual([]);
  });
});

describe("orphans", () => {
  test("a shutdown hook that overruns is cut short: orphans are gone within 1 s anyway", async () => {
    const dir = tempDir();
    const sv = new Supervised(sourceCmd, dir, ["--child-shutdown-ms", "5000"]);
    const { vrrp, check } = await sv.up();
    const from = sv.lines.length;
    const t0 = performance.now();
    sv.kill("SIGKILL");
    await until("children gone", () => !processRunning(vrrp) && !processRunning(check), 3000);
    const goneMs = performance.now() - t0;
    results["orphanWithSlowHookExitMs"] = Math.round(goneMs);
    expect(goneMs).toBeLessThan(1000);
    const overran = sv.lines
      .slice(from)
      .filter((l) => l.msg === "shutdown hook overran its deadline; exiting");
    expect(overran.map((l) => l.role).sort()).toEqual(["check", "vrrp"]);
    expect(taggedProcesses()).toEqual([]);
  });
});

describe("restarts", () => {
  test("kill -9 of a child: respawned with a new pid, reason logged, backoff doubles, crash loop reported", async () => {
    const dir = tempDir();
    const sv = new Supervised(sourceCmd, dir);
    await sv.up();
    const checkPid = sv.current("check");
    const delays: number[] = [];
    for (let i = 1; i <= 5; i++) {
      const old = sv.current("vrrp");
      const from = sv.lines.length;
      process.kill(old, "SIGKILL");
      const { line: exit } = await sv.waitLog(
        "exit logged",
        (l) => l.msg === "child exited; restarting",
        from,
      );
      expect(exit).toMatchObject({ role: "vrrp", childPid: old, reason: "signal SIGKILL", restarts: i });
      delays.push(exit["delayMs"] as number);
      expect(exit["crashLooping"]).toBe(i >= 5);
      const { line: up } = await sv.waitLog(
        "respawned",
        (l) => l.msg === "child up" && l.role === "vrrp",
        from,
      );
      expect(up.childPid).not.toBe(old);
      expect(processRunning(up.childPid!)).toBe(true);
    }
    expect(delays).toEqual([100, 200, 400, 800, 1600]);
    await sv.waitLog("crash loop reported", (l) => l.msg === "child is crash-looping" && l.role === "vrrp");
    const st = await sv.status();
    expect(st.find((s) => s.role === "vrrp")).toMatchObject({ restarts: 5, crashLooping: true });
    expect(st.find((s) => s.role === "check")).toMatchObject({
      restarts: 0,
      crashLooping: false,
      pid: checkPid,
    });
    // the other role was never touched
    expect(sv.current("check")).toBe(checkPid);
  });

  test("a child that stops heart-beating (SIGSTOP) is killed after the heartbeat timeout and respawned", async () => {
    const dir = tempDir();
    const sv = new Supervised(sourceCmd, dir);
    const { check } = await sv.up();
    const from = sv.lines.length;
    const t0 = performance.now();
    process.kill(check, "SIGSTOP");
    const { line: kill } = await sv.waitLog(
      "heartbeat timeout",
      (l) => l.msg === "killing unresponsive child",
      from,
    );
    const detectedMs = performance.now() - t0;
    expect(kill).toMatchObject({ role: "check", childPid: check });
    expect(kill.reason).toMatch(/^heartbeat timeout/);
    // 3 s timeout after the last heartbeat (sent 0-1 s before the SIGSTOP), checked every second
    expect(detectedMs).toBeGreaterThan(1900);
    expect(detectedMs).toBeLessThan(4500);
    const { line: exit } = await sv.waitLog("exit", (l) => l.msg === "child exited; restarting", from);
    expect(exit.reason).toMatch(/^heartbeat timeout/);
    expect(exit["signal"]).toBe("SIGKILL");
    const { line: up } = await sv.waitLog(
      "respawned",
      (l) => l.msg === "child up" && l.role === "check",
      from,
    );
    expect(up.childPid).not.toBe(check);
    expect(processRunning(check)).toBe(false);
    results["heartbeatDetectMs"] = Math.round(detectedMs);
  });
});

describe("shutdown", () => {
  test("SIGTERM: children get a shutdown message, exit 0, the watchdog exits 0 and cleans up", async () => {
    const dir = tempDir();
    const notify = join(dir, "notify.sock");
    const rx = UnixDgramSocket.bind(notify);
    try {
      const sv = new Supervised(sourceCmd, dir, [], { NOTIFY_SOCKET: notify });
      const { vrrp, check } = await sv.up();
      const from = sv.lines.length;
      sv.kill("SIGTERM");
      expect(await sv.proc.exited).toBe(0);
      for (const [role, pid] of [
        ["vrrp", vrrp],
        ["check", check],
      ] as const) {
        expect(marker(dir, role, pid)).toBe("watchdog: watchdog stopping");
        const stopped = sv.lines.slice(from).find((l) => l.msg === "child stopped" && l.role === role);
        expect(stopped?.reason).toBe("exit code 0");
        expect(processRunning(pid)).toBe(false);
      }
      expect(sv.lines.slice(from).some((l) => l.msg === "child exited; restarting")).toBe(false);
      expect(existsSync(join(dir, "vigil.pid"))).toBe(false);
      expect(existsSync(join(dir, "supervisor.sock"))).toBe(false);
      const got: string[] = [];
      for (let d = rx.recv(); d; d = rx.recv()) got.push(td.decode(d));
      expect(got[0]).toBe("READY=1\nSTATUS=children up");
      expect(got).toContain("STOPPING=1");
      expect(taggedProcesses()).toEqual([]);
    } finally {
      rx.close();
    }
  });

  test("a child that ignores shutdown is SIGKILLed after the stop timeout", async () => {
    const dir = tempDir();
    const sv = new Supervised(sourceCmd, dir, ["--stop-timeout-ms", "300"]);
    const { vrrp } = await sv.up();
    process.kill(vrrp, "SIGSTOP");
    const from = sv.lines.length;
    sv.kill("SIGTERM");
    expect(await sv.proc.exited).toBe(0);
    const k = sv.lines.slice(from).find((l) => l.msg === "child did not stop; SIGKILL");
    expect(k).toMatchObject({ role: "vrrp", childPid: vrrp });
    expect(processRunning(vrrp)).toBe(false);
  });
});

describe("hostile input on the supervisor socket", () => {
  test("malformed, oversized and impostor frames are rejected; supervision goes on", async () => {
    const dir = tempDir();
    const sv = new Supervised(sourceCmd, dir);
    const { vrrp, check } = await sv.up();
    const sock = join(dir, "supervisor.sock");

    async function probe(bytes: Uint8Array): Promise<string> {
      let closed = false;
      const c: FramedConnection = await connectIpc(sock, { message: () => {}, close: () => (closed = true) });
      c.writeRaw(bytes);
      await until("watchdog closes the connection", () => closed, 3000);
      return "closed";
    }

    const cases: [string, Uint8Array][] = [
      ["garbage", te.encode("\x16\x03\x01 this is not a frame at all")],
      ["length 0xFFFFFFFF", new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3])],
      ["invalid JSON", encodeRaw(te.encode("{not json"))],
      ["invalid UTF-8", encodeRaw(new Uint8Array([0x22, 0xc3, 0x28, 0x22]))],
      ["schema failure", encodeRaw(te.encode('{"type":"hello","role":"vrrp"}'))],
      ["first message not hello", encodeFrame({ type: "heartbeat", seq: 1, at: 1 })],
      ["hello for an unknown role", encodeFrame({ type: "hello", role: "lvs", pid: process.pid })],
      [
        "hello with a pid that is not the child",
        encodeFrame({ type: "hello", role: "vrrp", pid: process.pid }),
      ],
      ["hello impersonating the live child", encodeFrame({ type: "hello", role: "check", pid: check })],
    ];
    for (const [name, bytes] of cases) {
      expect(`${name}: ${await probe(bytes)}`).toBe(`${name}: closed`);
    }
    const rejections = sv.lines.filter(
      (l) => typeof l.msg === "string" && l.msg.startsWith("supervisor connection"),
    );
    expect(rejections.length).toBeGreaterThanOrEqual(5); // log lines are rate-limited (5 per 10 s)
    expect(JSON.stringify(rejections)).toContain("frame-too-large");

    // nothing disturbed the children, and supervision still works
    expect(sv.current("vrrp")).toBe(vrrp);
    expect(sv.current("check")).toBe(check);
    expect(processRunning(sv.pid)).toBe(true);
    const from = sv.lines.length;
    process.kill(vrrp, "SIGKILL");
    const { line } = await sv.waitLog(
      "respawn after hostile input",
      (l) => l.msg === "child up" && l.role === "vrrp",
      from,
    );
    expect(line.childPid).not.toBe(vrrp);
    // and the impersonated child is still the connected one: config still reaches it
    process.kill(sv.pid, "SIGHUP");
    await sv.waitLog(
      "check answers generation 2",
      (l) => l.role === "check" && replyOf(l)?.type === "reload_result" && replyOf(l)?.generation === 2,
      from,
    );
  });
});

describe("sd_notify", () => {
  test("READY=1 after the children are up, WATCHDOG=1 every WATCHDOG_USEC/2, RELOADING=1 on SIGHUP", async () => {
    const dir = tempDir();
    const notify = join(dir, "notify.sock");
    const rx = UnixDgramSocket.bind(notify);
    try {
      const got: { at: number; text: string }[] = [];
      const drain = () => {
        for (let d = rx.recv(); d; d = rx.recv()) got.push({ at: performance.now(), text: td.decode(d) });
      };
      const sv = new Supervised(sourceCmd, dir, [], { NOTIFY_SOCKET: notify, WATCHDOG_USEC: "200000" });
      const poll = setInterval(drain, 5);
      try {
        await sv.up();
        await until("ready", () => got.some((g) => g.text.startsWith("READY=1")));
        await until("6 pings", () => got.filter((g) => g.text === "WATCHDOG=1").length >= 6, 3000);
        const pings = got.filter((g) => g.text === "WATCHDOG=1").map((g) => g.at);
        const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
        // WATCHDOG_USEC 200 ms -> a ping every 100 ms
        expect(median(gaps)).toBeGreaterThan(70);
        expect(median(gaps)).toBeLessThan(150);
        // nothing before READY=1 but pings that follow it
        expect(got[0]!.text).toBe("READY=1\nSTATUS=children up");
        process.kill(sv.pid, "SIGHUP");
        await until("reloading", () => got.some((g) => g.text.startsWith("RELOADING=1\nMONOTONIC_USEC=")));
        await until("ready again", () => got.some((g) => g.text === "READY=1\nSTATUS=generation 2"));
      } finally {
        clearInterval(poll);
      }
    } finally {
      rx.close();
    }
  });

  test("abstract @socket works; a WATCHDOG_PID for another process means no pings", async () => {
    const dir = tempDir();
    const name = `@vigil-test-${TAG}`;
    const rx = UnixDgramSocket.bind(name);
    try {
      const sv = new Supervised(sourceCmd, dir, [], {
        NOTIFY_SOCKET: name,
        WATCHDOG_USEC: "100000",
        WATCHDOG_PID: "1",
      });
      await sv.up();
      const got: string[] = [];
      await until("ready", () => {
        for (let d = rx.recv(); d; d = rx.recv()) got.push(td.decode(d));
        return got.includes("READY=1\nSTATUS=children up");
      });
      await Bun.sleep(300);
      for (let d = rx.recv(); d; d = rx.recv()) got.push(td.decode(d));
      expect(got.filter((g) => g === "WATCHDOG=1")).toEqual([]);
    } finally {
      rx.close();
    }
  });

  test("an unreachable NOTIFY_SOCKET does not stop the agent", async () => {
    const dir = tempDir();
    const sv = new Supervised(sourceCmd, dir, [], { NOTIFY_SOCKET: join(dir, "nobody.sock") });
    await sv.up();
    await sv.waitLog("failure logged once", (l) => String(l.msg).startsWith("sd_notify failed"));
    expect(processRunning(sv.pid)).toBe(true);
  });
});

describe("pid file", () => {
  test("a second watchdog on the same state dir refuses to start", async () => {
    const dir = tempDir();
    const first = new Supervised(sourceCmd, dir);
    await first.up();
    const second = new Supervised(sourceCmd, dir);
    expect(await second.proc.exited).toBe(1);
    expect(second.stderr.join("\n")).toContain(`another vigil (pid ${first.pid}) holds`);
    expect(processRunning(first.pid)).toBe(true);
    expect(readPidFile(join(dir, "vigil.pid"))).toBe(first.pid);
  });

  test("a stale pid file from a kill -9 is taken over", async () => {
    const dir = tempDir();
    const first = new Supervised(sourceCmd, dir);
    await first.up();
    first.kill("SIGKILL");
    await first.proc.exited;
    expect(readPidFile(join(dir, "vigil.pid"))).toBe(first.pid);
    await until("orphans gone", () => taggedProcesses().length === 0, 3000);
    const second = new Supervised(sourceCmd, dir);
    await second.up();
    const { line } = await second.waitLog("takeover", (l) => l.msg === "took over a stale pid file");
    expect(line["stalePid"]).toBe(first.pid);
    expect(readPidFile(join(dir, "vigil.pid"))).toBe(second.pid);
  });

  test("a pid file naming a live process that is not vigil (pid reuse) is taken over", async () => {
    const dir = tempDir();
    const sleeper = Bun.spawn(["sleep", "30"], { env: { ...process.env, VIGIL_TEST_TAG: TAG } });
    try {
      writeFileSync(join(dir, "vigil.pid"), `${sleeper.pid}\n`);
      const sv = new Supervised(sourceCmd, dir);
      await sv.up();
      expect(readPidFile(join(dir, "vigil.pid"))).toBe(sv.pid);
    } finally {
      sleeper.kill("SIGKILL");
    }
  });

  test("in-process: acquire, refuse, release only our own file, take over garbage", () => {
    const dir = tempDir();
    const path = join(dir, "x.pid");
    const a = acquirePidFile(path);
    expect(readFileSync(path, "utf8")).toBe(`${process.pid}\n`);
    expect(readdirSync(dir)).toEqual(["x.pid"]); // no temp file left behind
    // another vigil (pid 1 here) finds us alive: refused, and our file is untouched
    expect(() => acquirePidFile(path, { pid: 1, isSameProgram: () => true })).toThrow(PidFileLockedError);
    expect(readPidFile(path)).toBe(process.pid);
    expect(readdirSync(dir)).toEqual(["x.pid"]);
    // a live holder that is not vigil (pid reuse): taken over
    writeFileSync(path, `${process.ppid}\n`);
    const b = acquirePidFile(path, { pid: 1, isSameProgram: () => false });
    expect(b.tookOverFrom).toBe(process.ppid);
    expect(readPidFile(path)).toBe(1);
    // our release does not remove a file someone else now holds
    a.release();
    expect(readPidFile(path)).toBe(1);
    // unreadable content counts as stale
    writeFileSync(path, "garbage\n");
    const c = acquirePidFile(path);
    expect(c.tookOverFrom).toBeNull();
    expect(readPidFile(path)).toBe(process.pid);
    c.release();
    expect(existsSync(path)).toBe(false);
    b.release(); // not ours any more either: a no-op
  });
});

describe("measurements", () => {
  for (const mode of ["binary", "source"] as const) {
    test(`${mode}: respawn time (kill -9 -> new child's hello), median of 20; idle PSS/RSS`, async () => {
      const dir = tempDir();
      const cmd = mode === "binary" ? binaryCmd : sourceCmd;
      // backoff 0: measure the mechanism itself (production adds the 100 ms first backoff step)
      const sv = new Supervised(cmd, dir, ["--backoff-initial-ms", "0", "--crash-loop-restarts", "1000"]);
      await sv.up();
      // idle memory first, after things settled
      await Bun.sleep(1500);
      const mem = {
        watchdog: memoryOf(sv.pid),
        vrrp: memoryOf(sv.current("vrrp")),
        check: memoryOf(sv.current("check")),
      };
      const totalPssKb = mem.watchdog.pssKb + mem.vrrp.pssKb + mem.check.pssKb;
      const totalRssKb = mem.watchdog.rssKb + mem.vrrp.rssKb + mem.check.rssKb;
      const wall: number[] = [];
      const spawnToHello: number[] = [];
      for (let i = 0; i < 20; i++) {
        const old = sv.current("vrrp");
        const from = sv.lines.length;
        const t0 = performance.now();
        process.kill(old, "SIGKILL");
        const { line } = await sv.waitLog("respawn", (l) => l.msg === "child up" && l.role === "vrrp", from);
        wall.push(performance.now() - t0);
        spawnToHello.push(line["spawnToHelloMs"] as number);
        // let the new child settle so runs are independent
        await Bun.sleep(50);
      }
      results[mode] = {
        respawnMedianMs: Math.round(median(wall) * 10) / 10,
        respawnMinMs: Math.round(Math.min(...wall) * 10) / 10,
        respawnMaxMs: Math.round(Math.max(...wall) * 10) / 10,
        spawnToHelloMedianMs: Math.round(median(spawnToHello) * 10) / 10,
        memoryKb: mem,
        totalPssKb,
        totalRssKb,
      };
      expect(wall).toHaveLength(20);
      expect(totalPssKb).toBeGreaterThan(0);
    });
  }
});
