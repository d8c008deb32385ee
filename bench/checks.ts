// Health-check throughput: TCP_CHECKs per second on one core, against loopback listeners in another
// process (pinned to another core), counted at the listeners as well as by the checker.
//
//   bun bench/checks.ts [--seconds S] [--ports N] [--concurrency C] [--delay-ms D] [--keepalived]
//   test/vm/run.sh --smp 2 -- node_modules/.bin/bun bench/checks.ts --keepalived   (keepalived needs IPVS)
//
// Three measurements:
//  1. closed loop: C checks in flight at all times through tcpCheck(), i.e. the checker's raw capacity;
//  2. scheduler: N real servers with one TCP_CHECK each and a small delay_loop through CheckScheduler,
//     i.e. what the agent sustains with its timers, retries and state bookkeeping;
//  3. with --keepalived (needs IPVS, e.g. inside test/vm/run.sh): keepalived 2.2.7 -C with a generated
//     TCP_CHECK config for the same N real servers and delay_loop, then vigil's scheduler again, both
//     counted at the listeners, with the CPU time each checker process used: the ratio is per check.
// Results go to stdout as a table plus one JSON line ({"bench":"checks",...}) for BENCHMARKS.md.
//
// Internal roles (spawned by the above): `listen BASE N`, `drive-closed ...`, `drive-sched ...`.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckScheduler } from "../agent/check/scheduler.ts";
import { tcpCheck } from "../agent/check/tcp.ts";
import type { CheckerSpec } from "../agent/check/types.ts";

const BASE_PORT = 21000;
const HOST = "127.0.0.1";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

function emit(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

interface Cpu {
  /** user CPU seconds */
  user: number;
  /** system CPU seconds */
  sys: number;
}

/** user and system CPU seconds of this process */
function cpuSeconds(): Cpu {
  const u = process.cpuUsage();
  return { user: u.user / 1e6, sys: u.system / 1e6 };
}

/** user and system CPU seconds of another process, from /proc (clock ticks of 1/100 s) */
function procCpuSeconds(pid: number): Cpu {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}

function cpuSince(c0: Cpu, c1: Cpu): Cpu {
  return { user: c1.user - c0.user, sys: c1.sys - c0.sys };
}

/** CPU microseconds per check, total and split: the figure that means something on a busy machine */
function perCheck(cpu: Cpu, checks: number): { cpuUsPerCheck: number; userUs: number; sysUs: number } {
  const n = Math.max(1, checks);
  return {
    cpuUsPerCheck: +(((cpu.user + cpu.sys) / n) * 1e6).toFixed(1),
    userUs: +((cpu.user / n) * 1e6).toFixed(1),
    sysUs: +((cpu.sys / n) * 1e6).toFixed(1),
  };
}

// ---------------------------------------------------------------------------------------------------
// roles

async function listen(base: number, n: number): Promise<void> {
  let accepts = 0;
  for (let i = 0; i < n; i++) {
    Bun.listen({
      hostname: HOST,
      port: base + i,
      socket: {
        open() {
          accepts++;
        },
        data() {},
      },
    });
  }
  emit({ ready: true });
  setInterval(() => emit({ accepts }), 100);
  await new Promise(() => {});
}

async function driveClosed(base: number, n: number, conc: number, seconds: number): Promise<void> {
  const spec = (i: number): CheckerSpec => ({
    type: "TCP_CHECK",
    conn: { connectIp: HOST, connectPort: base + (i % n), connectTimeoutMs: 2000 },
  });
  let ok = 0;
  let failed = 0;
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  emit({ start: true });
  const end = t0 + seconds * 1000;
  let k = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const r = await tcpCheck(spec(k++) as Parameters<typeof tcpCheck>[0]);
      if (r.ok) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  const wall = (performance.now() - t0) / 1000;
  emit({ mode: "closed", ok, failed, wall, cpu: cpuSince(cpu0, cpuSeconds()) });
  process.exit(0);
}

async function driveSched(base: number, n: number, delayMs: number, seconds: number): Promise<void> {
  let ok = 0;
  let failed = 0;
  const sched = new CheckScheduler({
    onChange: () => {},
    onResult: (_rs, _c, r) => {
      if (r.ok) ok++;
      else failed++;
    },
  });
  const cpu0 = cpuSeconds();
  const t0 = performance.now();
  emit({ start: true });
  for (let i = 0; i < n; i++) {
    sched.add({
      rs: `rs${i}`,
      checkers: [
        {
          type: "TCP_CHECK",
          conn: { connectIp: HOST, connectPort: base + i, connectTimeoutMs: 2000 },
          timing: { delayLoopMs: delayMs, warmupMs: delayMs, retry: 1, delayBeforeRetryMs: 1000 },
        },
      ],
    });
  }
  await Bun.sleep(seconds * 1000);
  sched.stop();
  const wall = (performance.now() - t0) / 1000;
  emit({ mode: "sched", ok, failed, wall, cpu: cpuSince(cpu0, cpuSeconds()) });
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------------
// orchestration

interface Listener {
  accepts(): number;
  stop(): void;
}

function taskset(cpu: number | null, cmd: string[]): string[] {
  return cpu !== null && Bun.which("taskset") ? ["taskset", "-c", String(cpu), ...cmd] : cmd;
}

const cpus = navigator.hardwareConcurrency;
/** the checker gets core 0, the listeners core 1 (when there is one) */
const CHECKER_CPU = 0;
const LISTENER_CPU = cpus > 1 ? 1 : null;

async function startListener(base: number, n: number): Promise<Listener> {
  const p = Bun.spawn(
    taskset(LISTENER_CPU, [process.execPath, import.meta.path, "listen", String(base), String(n)]),
    {
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  let accepts = 0;
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  (async () => {
    let buf = "";
    for await (const chunk of p.stdout) {
      buf += new TextDecoder().decode(chunk);
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const o = JSON.parse(buf.slice(0, nl)) as { ready?: boolean; accepts?: number };
        if (o.ready) ready();
        if (o.accepts !== undefined) accepts = o.accepts;
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
      }
    }
  })();
  await isReady;
  return { accepts: () => accepts, stop: () => p.kill() };
}

interface DriveResult {
  mode: string;
  ok: number;
  failed: number;
  wall: number;
  cpu: Cpu;
  /** accepts the listener counted between the driver's start and end lines */
  listened: number;
}

/**
 * Runs a driver role and counts listener accepts between its "start" line and its result line, so that
 * slow process start-up (e.g. under TCG in the VM) does not shift the listener's window.
 */
async function drive(l: Listener, args: string[]): Promise<DriveResult> {
  const p = Bun.spawn(taskset(CHECKER_CPU, [process.execPath, import.meta.path, ...args]), {
    stdout: "pipe",
    stderr: "inherit",
  });
  let a0 = l.accepts();
  let result: Omit<DriveResult, "listened"> | null = null;
  let buf = "";
  for await (const chunk of p.stdout) {
    buf += new TextDecoder().decode(chunk);
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const o = JSON.parse(buf.slice(0, nl)) as { start?: boolean } & Omit<DriveResult, "listened">;
      if (o.start) a0 = l.accepts();
      else result = o;
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
    }
  }
  await p.exited;
  await Bun.sleep(250); // the listener reports every 100 ms
  if (!result) throw new Error(`driver ${args[0]} printed no result`);
  return { ...result, listened: l.accepts() - a0 };
}

/** Counts listener accepts per second over a window. */
async function window(l: Listener, seconds: number): Promise<number> {
  const a0 = l.accepts();
  await Bun.sleep(seconds * 1000);
  await Bun.sleep(250);
  return (l.accepts() - a0) / seconds;
}

function keepalivedConf(base: number, n: number, delayS: number): string {
  const rs = Array.from(
    { length: n },
    (_, i) =>
      `  real_server ${HOST} ${base + i} {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 2\n      retry 1\n    }\n  }\n`,
  ).join("");
  return (
    "global_defs {\n  router_id vigilbench\n}\n" +
    `virtual_server 127.0.0.1 ${base - 1} {\n  delay_loop ${delayS}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n${rs}}\n`
  );
}

async function runKeepalived(base: number, n: number, delayMs: number, seconds: number, l: Listener) {
  const dir = mkdtempSync(join(tmpdir(), "vigil-kabench-"));
  const conf = join(dir, "keepalived.conf");
  writeFileSync(conf, keepalivedConf(base, n, delayMs / 1000));
  const pidMain = join(dir, "ka.pid");
  const pidCheck = join(dir, "check.pid");
  const ka = Bun.spawn(
    taskset(CHECKER_CPU, ["keepalived", "-C", "-n", "-D", "-f", conf, "-p", pidMain, "-c", pidCheck]),
    { stdout: "ignore", stderr: "pipe" },
  );
  try {
    for (let i = 0; i < 100 && !existsSync(pidCheck); i++) await Bun.sleep(50);
    if (!existsSync(pidCheck))
      throw new Error(`keepalived did not start: ${await new Response(ka.stderr).text()}`);
    const checkerPid = Number(readFileSync(pidCheck, "utf8").trim());
    // keepalived waits BOOTSTRAP_DELAY (1 s) plus a warmup before its first checks
    await Bun.sleep(1000 + delayMs);
    const cpu0 = procCpuSeconds(checkerPid);
    const a0 = l.accepts();
    const rate = await window(l, seconds);
    const cpu = cpuSince(cpu0, procCpuSeconds(checkerPid));
    // the window read the listener 250 ms after its end: count those checks with the CPU they used
    return { rate, checks: l.accepts() - a0, cpu, cpuPerSec: (cpu.user + cpu.sys) / (seconds + 0.25) };
  } finally {
    ka.kill("SIGTERM");
    await ka.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const seconds = arg("seconds", 5);
  const ports = arg("ports", 256);
  const conc = arg("concurrency", 32);
  const delayMs = arg("delay-ms", 10);
  const withKa = process.argv.includes("--keepalived");
  const l = await startListener(BASE_PORT, ports);
  const results: Record<string, unknown> = { bench: "checks", cpus, ports, seconds };
  try {
    // 1. closed loop
    const c = await drive(l, [
      "drive-closed",
      String(BASE_PORT),
      String(ports),
      String(conc),
      String(seconds),
    ]);
    const lr = c.listened / c.wall;
    const closedRate = c.ok / c.wall;
    results.closed = {
      checksPerSec: Math.round(closedRate),
      listenerAcceptsPerSec: Math.round(lr),
      failed: c.failed,
      cpuUtil: +((c.cpu.user + c.cpu.sys) / c.wall).toFixed(2),
      ...perCheck(c.cpu, c.ok + c.failed),
      concurrency: conc,
    };

    // 2. scheduler: `ports` real servers, delay_loop delayMs
    const s = await drive(l, [
      "drive-sched",
      String(BASE_PORT),
      String(ports),
      String(delayMs),
      String(seconds),
    ]);
    const sr = s.listened / s.wall;
    results.scheduler = {
      realServers: ports,
      delayLoopMs: delayMs,
      checksPerSec: Math.round((s.ok + s.failed) / s.wall),
      listenerAcceptsPerSec: Math.round(sr),
      failed: s.failed,
      cpuUtil: +((s.cpu.user + s.cpu.sys) / s.wall).toFixed(2),
      ...perCheck(s.cpu, s.ok + s.failed),
    };

    // 3. keepalived side by side
    if (withKa) {
      const k = await runKeepalived(BASE_PORT, ports, delayMs, seconds, l);
      results.keepalived = {
        realServers: ports,
        delayLoopMs: delayMs,
        listenerAcceptsPerSec: Math.round(k.rate),
        cpuUtil: +k.cpuPerSec.toFixed(2),
        ...perCheck(k.cpu, k.checks),
      };
      const vs = results.scheduler as { listenerAcceptsPerSec: number; cpuUsPerCheck: number };
      const ka = results.keepalived as { cpuUsPerCheck: number };
      results.ratio = {
        checksPerSec: +(vs.listenerAcceptsPerSec / Math.max(1, k.rate)).toFixed(2),
        cpuPerCheck: +(vs.cpuUsPerCheck / Math.max(0.001, ka.cpuUsPerCheck)).toFixed(2),
      };
    }
  } finally {
    l.stop();
  }
  console.log(JSON.stringify(results, null, 2));
  emit(results);
  process.exit(0);
}

const [role, ...rest] = process.argv.slice(2);
const nums = rest.map(Number);
if (role === "listen") await listen(nums[0]!, nums[1]!);
else if (role === "drive-closed") await driveClosed(nums[0]!, nums[1]!, nums[2]!, nums[3]!);
else if (role === "drive-sched") await driveSched(nums[0]!, nums[1]!, nums[2]!, nums[3]!);
else await main();
