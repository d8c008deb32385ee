#!/usr/bin/env bun
// Footprint benchmark: vigil (dist/vigil) and keepalived 2.2.7 on the same config (10 VRRPv2 instances,
// advert_int 1, one VIP each) in a namespace pair, in one run.
//
//   bun bench/footprint.ts [--seconds 60] [--starts 5] [--settle 8] [--binary PATH] [--env K=V ...]
//                          [--label TEXT] [--keepalived-checker]
//
// Measured:
//   - binary size (dist/vigil; keepalived's executable and the shared libraries it links);
//   - start to ready: spawn to READY=1 on a NOTIFY_SOCKET this bench binds (keepalived 2.2.7 notifies
//     only under a systemd parent: its "Startup complete" log line, logged where it would notify,
//     stands in), and spawn to all 10 instances in BACKUP; median of --starts runs;
//   - idle CPU over --seconds (utime + stime of every process of the agent, as % of one core)
//     and memory at the end of that window: PSS (smaps_rollup), USS (private pages) and RSS summed
//     over the agent's processes, per process as well.
// Each implementation is measured twice: as master and as backup. To keep PSS honest the peer is always
// the *other* implementation (two vigil agents on one host would split the binary's shared pages
// between them and each would look smaller): run 1 = vigil master + keepalived backup, run 2 =
// keepalived master + vigil backup. keepalived runs VRRP only (-P: 2 processes) unless
// --keepalived-checker, which adds its checker process (3, like vigil).
//
// --binary and --env are for experiments (another build, BUN_JSC_* / MIMALLOC_* variables); env reaches
// vigil's children, which inherit the watchdog's environment. Needs root (network namespaces).
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { cpus, release, tmpdir } from "node:os";
import { join } from "node:path";
import { UnixDgramSocket } from "../ffi/unix-dgram.ts";
import { Agent, childPids, cleanupDir, tempDir, writeFile } from "../test/lab/agents.ts";
import { keepalivedConf } from "../test/lab/confgen.ts";
import { isRoot, Lab, run, sleep, sweepStale, waitFor } from "../test/lab/netns.ts";

type Impl = "vigil" | "keepalived";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}
function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    if (a === name && process.argv[i + 1]) out.push(process.argv[i + 1]!);
  });
  return out;
}

const SECONDS = Number(arg("--seconds", "60"));
const STARTS = Number(arg("--starts", "5"));
/** seconds between the election and the idle window: the last GARP burst is 5 s after takeover; a
 * longer settle leaves out the JIT's warm-up (JavaScriptCore tiers code up for the first minutes) */
const SETTLE = Number(arg("--settle", "8"));
const BINARY = arg("--binary", join(import.meta.dir, "..", "dist", "vigil"));
const LABEL = arg("--label", "");
const KA_CHECKER = process.argv.includes("--keepalived-checker");
const EXTRA_ENV: Record<string, string> = Object.fromEntries(
  args("--env").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const INSTANCES = 10;

/** The config both implementations run: 10 VRRPv2 instances at advert_int 1 on eth0. */
export function footprintConf(priority: number): string {
  return keepalivedConf({
    instances: Array.from({ length: INSTANCES }, (_, i) => ({
      name: `VI_${i + 1}`,
      vrid: 51 + i,
      priority,
      version: 2 as const,
      advertInt: 1,
      authPass: "s3cr3t",
      vips: [`192.0.2.${100 + i}/24`],
    })),
  });
}

// ---- processes ------------------------------------------------------------------------------------

/** pid and every descendant (the agent's process tree). */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childPids(out[i]!));
  return out;
}

/**
 * CPU time of a process in ns: utime + stime of /proc/PID/stat, which include the threads that have
 * already exited. Summing /proc/PID/task/TID/schedstat instead is exact to the nanosecond but loses
 * every thread that ends inside the window (JavaScriptCore starts and retires JIT and GC helper
 * threads all the time), which made idle processes come out at negative CPU. The price is the tick:
 * 10 ms of CPU, i.e. 0.017 % of one core over a 60 s window.
 */
function cpuNs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command (which may contain spaces): state is field 3, utime 14, stime 15
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * (1e9 / CLK_TCK);
  } catch {
    return 0;
  }
}

/** USER_HZ: the unit of utime/stime in /proc (100 on every Linux architecture vigil runs on) */
const CLK_TCK = 100;

interface Mem {
  pss: number;
  /** PSS of anonymous memory (heaps, JIT code, stacks) and of file mappings (the executable, libraries) */
  pssAnon: number;
  pssFile: number;
  uss: number;
  rss: number;
}
const NO_MEM: Mem = { pss: 0, pssAnon: 0, pssFile: 0, uss: 0, rss: 0 };

/** kB figures from /proc/PID/smaps_rollup. */
function memOf(pid: number): Mem {
  let text = "";
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  } catch {
    return NO_MEM;
  }
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return {
    pss: kb("Pss"),
    pssAnon: kb("Pss_Anon"),
    pssFile: kb("Pss_File"),
    uss: kb("Private_Clean") + kb("Private_Dirty"),
    rss: kb("Rss"),
  };
}

function procName(pid: number): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const base = (argv[0] ?? "?").split("/").pop();
    if (argv[1] === "child") return `${base} child ${argv[2] ?? ""}`;
    if (argv[1] === "run") return `${base} run (watchdog)`;
    return base ?? "?";
  } catch {
    return "?";
  }
}

interface Footprint {
  impl: Impl;
  role: "master" | "backup";
  cpuPct: number;
  mem: Mem;
  procs: { pid: number; name: string; mem: Mem; cpuPct: number }[];
}

/** Idle CPU of several agents over the same window, then their memory. */
async function measureIdle(
  agents: { impl: Impl; role: "master" | "backup"; pid: number }[],
  seconds: number,
): Promise<Footprint[]> {
  const pids = agents.map((a) => tree(a.pid));
  const t0 = pids.map((ps) => ps.map(cpuNs));
  const start = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - start) / 1000;
  return agents.map((a, k) => {
    // a child that respawned during the window would hide CPU: the tree must be the same
    const now = tree(a.pid);
    if (now.join() !== pids[k]!.join()) throw new Error(`${a.impl}: process tree changed while idle`);
    const procs = pids[k]!.map((pid, j) => {
      const ns = cpuNs(pid) - t0[k]![j]!;
      return { pid, name: procName(pid), mem: memOf(pid), cpuPct: (100 * ns) / 1e9 / elapsed };
    });
    const mem = procs.reduce(
      (s, p) => ({
        pss: s.pss + p.mem.pss,
        pssAnon: s.pssAnon + p.mem.pssAnon,
        pssFile: s.pssFile + p.mem.pssFile,
        uss: s.uss + p.mem.uss,
        rss: s.rss + p.mem.rss,
      }),
      NO_MEM,
    );
    return { impl: a.impl, role: a.role, cpuPct: procs.reduce((s, p) => s + p.cpuPct, 0), mem, procs };
  });
}

// ---- starting agents ------------------------------------------------------------------------------

function vigilEnv(notifySocket?: string): Record<string, string> {
  return { ...EXTRA_ENV, ...(notifySocket ? { NOTIFY_SOCKET: notifySocket } : {}) };
}

/** vigil like test/lab/agents.ts startVigil, with the --binary under test. */
function startVigilAgent(lab: Lab, node: string, priority: number, notifySocket?: string): Agent {
  const dir = tempDir(`${lab.id}-${node}`);
  const conf = join(dir, "vigil.conf");
  writeFile(conf, footprintConf(priority));
  const state = join(dir, "state");
  mkdirSync(state, { recursive: true });
  const cmd = [BINARY, "run", "-f", conf, "--state-dir", state];
  return new Agent(lab, node, "vigil", dir, cmd, vigilEnv(notifySocket)).start();
}

/** keepalived like test/lab/agents.ts startKeepalived, with an environment (NOTIFY_SOCKET). */
function startKa(lab: Lab, node: string, priority: number, notifySocket?: string): Agent {
  const dir = tempDir(`${lab.id}-${node}-ka`);
  const conf = join(dir, "keepalived.conf");
  writeFile(conf, footprintConf(priority));
  const pid = (n: string) => join(dir, `${n}.pid`);
  const cmd = ["keepalived", "-f", conf, "-n", "-l", "-D"];
  if (!KA_CHECKER) cmd.push("-P");
  cmd.push("-p", pid("main"), "-r", pid("vrrp"), "-c", pid("checkers"), "-i", `${lab.id}-${node}`);
  return new Agent(
    lab,
    node,
    "keepalived",
    dir,
    cmd,
    notifySocket ? { NOTIFY_SOCKET: notifySocket } : {},
  ).start();
}

function start(impl: Impl, lab: Lab, node: string, priority: number, notifySocket?: string): Agent {
  return impl === "vigil"
    ? startVigilAgent(lab, node, priority, notifySocket)
    : startKa(lab, node, priority, notifySocket);
}

function backupLines(a: Agent): number {
  if (a.kind === "vigil") return a.transitions().filter((t) => t.to === "BACKUP").length;
  return a.lines.filter((l) => /Entering BACKUP STATE/.test(l)).length;
}

/** Spawn to READY=1 and to all instances in BACKUP, for one agent alone on a node (no peer: no master). */
async function startTimes(impl: Impl): Promise<{ readyMs: number; backupMs: number }> {
  const lab = new Lab("fps");
  lab.addNode({ name: "a", addrs: ["192.0.2.1/24"] });
  const sockPath = join(tmpdir(), `vigil-fp-${process.pid}-${impl}.sock`);
  rmSync(sockPath, { force: true });
  const sock = UnixDgramSocket.bind(sockPath);
  let agent: Agent | null = null;
  try {
    const t0 = performance.now();
    agent = start(impl, lab, "a", 100, sockPath);
    let readyMs = -1;
    let backupMs = -1;
    const end = t0 + 15_000;
    while (performance.now() < end && (readyMs < 0 || backupMs < 0)) {
      for (let d = sock.recv(); d; d = sock.recv()) {
        if (readyMs < 0 && /^READY=1$/m.test(new TextDecoder().decode(d))) readyMs = performance.now() - t0;
      }
      // keepalived 2.2.7 notifies only when its parent is systemd: its own "Startup complete" line
      // (logged where it would send READY=1) stands in
      if (readyMs < 0 && impl === "keepalived" && agent.lines.some((l) => l.includes("Startup complete"))) {
        readyMs = performance.now() - t0;
      }
      if (backupMs < 0 && backupLines(agent) >= INSTANCES) backupMs = performance.now() - t0;
      await sleep(1);
    }
    if (readyMs < 0) throw new Error(`${impl}: no READY=1 within 15 s\n${agent.output()}`);
    if (backupMs < 0) throw new Error(`${impl}: not all instances BACKUP within 15 s\n${agent.output()}`);
    return { readyMs, backupMs };
  } finally {
    await agent?.stop("SIGTERM", 3000);
    if (agent) cleanupDir(agent);
    sock.close();
    rmSync(sockPath, { force: true });
    lab.destroySync();
  }
}

/** One pair: `masterImpl` on a (priority 150), the other on b (100); measures both after they settle. */
async function pairRun(masterImpl: Impl): Promise<Footprint[]> {
  const backupImpl: Impl = masterImpl === "vigil" ? "keepalived" : "vigil";
  const lab = new Lab("fpp");
  lab.addNode({ name: "a", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "b", addrs: ["192.0.2.2/24"] });
  const agents: Agent[] = [];
  try {
    const a = start(masterImpl, lab, "a", 150);
    const b = start(backupImpl, lab, "b", 100);
    agents.push(a, b);
    const vips = Array.from({ length: INSTANCES }, (_, i) => `192.0.2.${100 + i}`);
    const ok = await waitFor(() => {
      const onA = lab.addresses("a");
      const onB = lab.addresses("b");
      return vips.every((v) => onA.includes(v) && !onB.includes(v));
    }, 20_000);
    if (!ok)
      throw new Error(`${masterImpl} did not become master of all ${INSTANCES} instances\n${a.output()}`);
    // the second gratuitous ARP burst comes 5 s after takeover; then nothing but adverts
    await sleep(SETTLE * 1000);
    return await measureIdle(
      [
        { impl: masterImpl, role: "master", pid: a.pid! },
        { impl: backupImpl, role: "backup", pid: b.pid! },
      ],
      SECONDS,
    );
  } finally {
    for (const x of agents) {
      await x.stop("SIGTERM", 3000);
      cleanupDir(x);
    }
    lab.destroySync();
  }
}

// ---- report ---------------------------------------------------------------------------------------

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const mb = (kb: number) => (kb / 1024).toFixed(1);
const mbBytes = (b: number) => (b / 1024 / 1024).toFixed(1);
const ratio = (v: number, k: number) => (k > 0 ? `${(v / k).toFixed(1)}x` : "n/a");

function keepalivedSizes(): { exe: number; libs: number } {
  const exe = statSync("/usr/sbin/keepalived").size;
  let libs = 0;
  const ldd = run(["ldd", "/usr/sbin/keepalived"], { check: false }).stdout;
  for (const m of ldd.matchAll(/=> (\/\S+)/g)) {
    try {
      libs += statSync(m[1]!).size;
    } catch {
      // vdso and friends
    }
  }
  return { exe, libs };
}

async function main(): Promise<number> {
  if (!isRoot()) {
    console.error("bench/footprint: needs root (network namespaces)");
    return 2;
  }
  if (!statSync(BINARY, { throwIfNoEntry: false })) {
    console.error(`bench/footprint: ${BINARY} missing: run \`npm run build\` first`);
    return 2;
  }
  sweepStale();
  const vigilSize = statSync(BINARY).size;
  const ka = keepalivedSizes();

  const starts: Record<Impl, { readyMs: number; backupMs: number }[]> = { vigil: [], keepalived: [] };
  for (let i = 0; i < STARTS; i++) {
    for (const impl of ["vigil", "keepalived"] as const) starts[impl].push(await startTimes(impl));
  }
  const runs = [...(await pairRun("vigil")), ...(await pairRun("keepalived"))];
  const get = (impl: Impl, role: "master" | "backup") =>
    runs.find((r) => r.impl === impl && r.role === role)!;

  const vm = get("vigil", "master");
  const vb = get("vigil", "backup");
  const km = get("keepalived", "master");
  const kb = get("keepalived", "backup");
  const vReady = median(starts.vigil.map((s) => s.readyMs));
  const kReady = median(starts.keepalived.map((s) => s.readyMs));
  const vBackup = median(starts.vigil.map((s) => s.backupMs));
  const kBackup = median(starts.keepalived.map((s) => s.backupMs));

  const lines: string[] = [];
  lines.push(
    `### Footprint${LABEL ? ` (${LABEL})` : ""}: ${INSTANCES} VRRPv2 instances, advert_int 1, idle ${SECONDS} s from ${SETTLE} s after the election`,
    "",
    `${cpus()[0]?.model ?? "cpu"} x${cpus().length}, Linux ${release()}, bun ${Bun.version}; keepalived 2.2.7 ${KA_CHECKER ? "(VRRP + checker)" : "(-P, VRRP only)"}` +
      (Object.keys(EXTRA_ENV).length ? `; vigil env ${JSON.stringify(EXTRA_ENV)}` : ""),
    "",
    "| | vigil | keepalived | vigil / keepalived |",
    "|---|---:|---:|---:|",
    `| binary size | ${mbBytes(vigilSize)} MB (self-contained) | ${mbBytes(ka.exe)} MB + ${mbBytes(ka.libs)} MB shared libraries | ${ratio(vigilSize, ka.exe)} (${ratio(vigilSize, ka.exe + ka.libs)} with its libraries) |`,
    `| start to ready (READY=1 / "Startup complete"; median of ${STARTS}) | ${vReady.toFixed(0)} ms | ${kReady.toFixed(0)} ms | ${ratio(vReady, kReady)} |`,
    `| start to all ${INSTANCES} instances BACKUP | ${vBackup.toFixed(0)} ms | ${kBackup.toFixed(0)} ms | ${ratio(vBackup, kBackup)} |`,
    `| processes | ${vm.procs.length} | ${km.procs.length} | |`,
    `| PSS, master | ${mb(vm.mem.pss)} MB | ${mb(km.mem.pss)} MB | ${ratio(vm.mem.pss, km.mem.pss)} |`,
    `| PSS, backup | ${mb(vb.mem.pss)} MB | ${mb(kb.mem.pss)} MB | ${ratio(vb.mem.pss, kb.mem.pss)} |`,
    `| PSS anonymous / file-backed, master | ${mb(vm.mem.pssAnon)} / ${mb(vm.mem.pssFile)} MB | ${mb(km.mem.pssAnon)} / ${mb(km.mem.pssFile)} MB | |`,
    `| USS (private), master | ${mb(vm.mem.uss)} MB | ${mb(km.mem.uss)} MB | ${ratio(vm.mem.uss, km.mem.uss)} |`,
    `| RSS sum, master | ${mb(vm.mem.rss)} MB | ${mb(km.mem.rss)} MB | ${ratio(vm.mem.rss, km.mem.rss)} |`,
    `| idle CPU, master (% of one core) | ${vm.cpuPct.toFixed(2)} % | ${km.cpuPct.toFixed(2)} % | ${ratio(vm.cpuPct, km.cpuPct)} |`,
    `| idle CPU, backup | ${vb.cpuPct.toFixed(2)} % | ${kb.cpuPct.toFixed(2)} % | ${ratio(vb.cpuPct, kb.cpuPct)} |`,
    "",
    `Targets: PSS < 100 MB (${Math.max(vm.mem.pss, vb.mem.pss) / 1024 < 100 ? "met" : "NOT met"}), idle CPU < 0.5 % (${Math.max(vm.cpuPct, vb.cpuPct) < 0.5 ? "met" : "NOT met"}).`,
    "",
    "Per process:",
    "",
    "| role | process | PSS | PSS anon | PSS file | USS | RSS | CPU |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...[vm, vb, km, kb].flatMap((f) =>
      f.procs.map(
        (p) =>
          `| ${f.role} | ${p.name} | ${mb(p.mem.pss)} MB | ${mb(p.mem.pssAnon)} MB | ${mb(p.mem.pssFile)} MB | ${mb(p.mem.uss)} MB | ${mb(p.mem.rss)} MB | ${p.cpuPct.toFixed(2)} % |`,
      ),
    ),
  );
  console.log(lines.join("\n"));
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify({ label: LABEL, env: EXTRA_ENV, vigilSize, ka, starts, runs }));
  }
  return 0;
}

if (import.meta.main) {
  process.exit(await main());
}
