// IPVS apply time for a large table: 1,000 virtual services x 10 real servers (NAT), programmed from
// cold, then one weight change on the loaded table; vigil (IpvsClient + reconcile) against keepalived
// 2.2.7 (`keepalived -C`, checkers only, same table from a generated keepalived.conf).
//
//   bun bench/ipvs-apply.ts [--runs N] [--skip-keepalived] [--from-source (no compiled vigil)]
//                                                           on the host: boots one fresh VM per
//                                                           contender and run (re-programming after
//                                                           a flush is slower, so never reuse a VM)
//   bun bench/ipvs-apply.ts --guest vigil|keepalived        inside the VM (test/vm/run.sh)
//   bun bench/ipvs-apply.ts --native                        on this host, against the unit tests'
//                                                           fake kernel: vigil's own CPU per phase
//
// Prints one JSON line per measurement ("BENCH {...}") and a summary table. keepalived is timed from
// its spawn until the last service has all its real servers, observed through IpvsClient (one
// GET_DEST every 20 ms: counting /proc/net/ip_vs would starve the guest and inflate the result); vigil
// is timed both in-process (IpvsTableSync: read + diff + batched apply, then single changes) and from
// the spawn of a fresh process until the same observation, which compares with keepalived's figure.
// The VM has 2 vCPUs so polling does not steal the contender's CPU. VIGIL_BENCH_ACK=each|errors
// picks the batch acknowledgement mode (default: the socket's).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Config } from "../agent/config/model.ts";
import { IpvsClient, IpvsTableSync, openIpvs, readTable } from "../agent/lvs/ipvs-client.ts";
import type { DesiredService } from "../agent/lvs/reconcile.ts";
import type { ServiceKey } from "../agent/wire/ipvs.ts";
import { drivenRuntime } from "../test/unit/lvs-driven.ts";

const SERVICES = 1000;
const REALS = 10;
const PORTS = [80, 443, 8080, 8443];

/** 1000 services on 192.0.2.1-250 x 4 ports, each with 198.51.100.1-10:80 (documentation addresses). */
function table(): DesiredService[] {
  const out: DesiredService[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const key: ServiceKey = {
      af: 4,
      protocol: "tcp",
      addr: `192.0.2.${1 + Math.floor(i / PORTS.length)}`,
      port: PORTS[i % PORTS.length]!,
    };
    const dests = [];
    for (let r = 1; r <= REALS; r++)
      dests.push({ addr: `198.51.100.${r}`, port: 80, fwd: "masq" as const, weight: 1 });
    out.push({ key, sched: "wlc", dests });
  }
  return out;
}
const lastKey = (): ServiceKey => table()[SERVICES - 1]!.key;

function emit(o: Record<string, unknown>): void {
  console.log(`BENCH ${JSON.stringify(o)}`);
}

function keepalivedConf(): string {
  const lines = ["global_defs {", "  router_id vigil_bench", "}"];
  for (const s of table()) {
    if ("fwmark" in s.key) continue;
    lines.push(
      `virtual_server ${s.key.addr} ${s.key.port} {`,
      "  lb_algo wlc",
      "  lb_kind NAT",
      "  protocol TCP",
    );
    for (const d of s.dests) lines.push(`  real_server ${d.addr} ${d.port} {`, "    weight 1", "  }");
    lines.push("}");
  }
  return `${lines.join("\n")}\n`;
}

/** CPU time (user + system) of this process so far, ms */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * In-process, through IpvsTableSync (the agent's reconcile path): cold apply (read the empty table,
 * diff, batched apply); one weight change on the loaded table (incremental: no read, one op); the
 * same kind of change after resync() (what a reload or the periodic resync costs: full read + diff).
 */
async function applyHere(native: boolean): Promise<void> {
  const desired = table();
  const ack = process.env["VIGIL_BENCH_ACK"];
  let client: IpvsClient;
  let socket: { close(): void };
  if (native) {
    // no IPVS on this host: the fake kernel of the unit tests stands in (it decodes and answers
    // every request), so the figures are vigil's own work plus that decoding, without the kernel's
    const { FakeIpvsKernel } = await import("../test/unit/ipvs-fake-kernel.ts");
    client = IpvsClient.open(new FakeIpvsKernel());
    socket = { close() {} };
  } else ({ client, socket } = openIpvs(ack === "each" || ack === "errors" ? { ackMode: ack } : {}));
  const sync = new IpvsTableSync(client);
  const none = new Set<string>();
  let c = cpuMs();
  let t = performance.now();
  const cold = sync.sync(desired, none);
  const tCold = performance.now() - t;
  const cCold = cpuMs() - c;
  if (cold.result.errors.length) throw new Error(`apply failed: ${cold.result.errors[0]}`);

  const reweigh = (base: DesiredService[], svc: number, dest: number, weight: number) =>
    base.map((s, i) =>
      i === svc ? { ...s, dests: s.dests.map((d, j) => (j === dest ? { ...d, weight } : d)) } : s,
    );
  // a few changes, each one weight on another service: the first ones warm the JIT up
  const changes: number[] = [];
  const changeCpu: number[] = [];
  let cur = desired;
  for (let k = 0; k < 5; k++) {
    cur = reweigh(cur, 100 + k * 150, k % 10, 2 + k);
    c = cpuMs();
    t = performance.now();
    const r = sync.sync(cur, none);
    changes.push(performance.now() - t);
    changeCpu.push(cpuMs() - c);
    if (r.dumped || r.ops.length !== 1 || r.result.errors.length)
      throw new Error(`change: dumped ${r.dumped}, ${r.ops.length} ops, ${r.result.errors[0]}`);
  }
  cur = reweigh(cur, 500, 3, 9);
  sync.resync();
  c = cpuMs();
  t = performance.now();
  const full = sync.sync(cur, none);
  const tResync = performance.now() - t;
  const cResync = cpuMs() - c;
  if (!full.dumped || full.ops.length !== 1 || full.result.errors.length)
    throw new Error(`resync change: ${full.ops.length} ops, ${full.result.errors[0]}`);
  // (after the phases above: its adoption puts their six weights back to the config's)
  const agent = agentPath(client);
  socket.close();
  const r = (x: number) => Math.round(x * 10) / 10;
  emit({
    contender: "vigil",
    what: "in-process",
    ackMode: ack ?? "errors",
    coldMs: Math.round(tCold),
    coldCpuMs: Math.round(cCold),
    ops: cold.ops.length,
    coldUsPerOp: Math.round((tCold * 1000) / cold.ops.length),
    changeMs: changes.map(r),
    changeCpuMs: changeCpu.map(r),
    changeAfterResyncMs: Math.round(tResync),
    changeAfterResyncCpuMs: Math.round(cResync),
    ...agent,
  });
}

/**
 * The check child's whole path for one health change, on the loaded table: the LVS runtime (the
 * same 1,000 x 10 as a config, checkers replaced by a scheduler this bench drives) gets a health
 * event and recomputes, diffs and programs; timed from the event until the kernel has answered.
 * It starts by adopting the table the phases above left (a restart of the child).
 */
function agentPath(client: IpvsClient): Record<string, unknown> {
  const cfg = Config.parse({
    virtualServers: table().map((s) => ({
      address: "addr" in s.key ? s.key.addr : "",
      port: "port" in s.key ? s.key.port : 0,
      protocol: "TCP",
      lbAlgo: "wlc",
      lbKind: "NAT",
      realServers: s.dests.map((d) => ({
        address: d.addr,
        port: d.port,
        weight: 1,
        checkers: [{ type: "TCP_CHECK" }],
      })),
    })),
  });
  const { rt, ids, fire } = drivenRuntime(() => client, "warn");
  let t = performance.now();
  rt.apply(cfg, 1);
  const adoptMs = performance.now() - t;
  const adoptOps = rt.status().lastReconcile?.ops ?? -1;
  const changes: number[] = [];
  const cpu: number[] = [];
  // one real server down, then up again, on services spread over the table
  for (let k = 0; k < 10; k++) {
    const rs = ids[(k >> 1) * 1999 + 7]!;
    const c = cpuMs();
    t = performance.now();
    fire({ rs, up: k % 2 === 1, reason: "bench", latencyMs: 0 });
    changes.push(performance.now() - t);
    cpu.push(cpuMs() - c);
    const last = rt.status().lastReconcile;
    if (last?.ops !== 1 || last.errors !== 0) throw new Error(`agent change ${k}: ${JSON.stringify(last)}`);
  }
  rt.stop();
  const r = (x: number) => Math.round(x * 10) / 10;
  return {
    agentAdoptMs: Math.round(adoptMs),
    agentAdoptOps: adoptOps,
    agentChangeMs: changes.map(r),
    agentChangeCpuMs: cpu.map(r),
  };
}

async function waitFull(startMs: number, timeoutMs: number): Promise<number> {
  const { client, socket } = openIpvs();
  const key = lastKey();
  try {
    for (;;) {
      let n = 0;
      try {
        n = client.dests(key).length;
      } catch {
        // ESRCH until keepalived reaches the last service
      }
      if (n === REALS) return performance.now() - startMs;
      if (performance.now() - startMs > timeoutMs)
        throw new Error(`timed out with ${n} dests on the last service`);
      await Bun.sleep(20);
    }
  } finally {
    socket.close();
  }
}

function countAll(): { services: number; dests: number } {
  const { client, socket } = openIpvs();
  const t = readTable(client);
  socket.close();
  return { services: t.length, dests: t.reduce((n, s) => n + s.dests.length, 0) };
}

async function guestVigil(): Promise<void> {
  // a fresh process, as the agent's check child would be: the compiled binary (as shipped) when the
  // host built one, otherwise from source
  const bin = process.env["VIGIL_BENCH_BIN"];
  const cmd = bin ? [bin, "--apply-here"] : [process.execPath, import.meta.path, "--apply-here"];
  const t0 = performance.now();
  const p = Bun.spawn(cmd, {
    stdout: "inherit",
    stderr: "inherit",
  });
  // observed the same way as keepalived's: the last service has all its real servers
  const full = await waitFull(t0, 300_000);
  const code = await p.exited;
  const wall = performance.now() - t0;
  if (code !== 0) throw new Error(`apply child exited ${code}`);
  emit({
    contender: "vigil",
    what: "spawn-to-full, spawn-to-exit (cold + 6 changes)",
    coldMs: Math.round(full),
    wallMs: Math.round(wall),
    ...countAll(),
  });
}

async function guestKeepalived(): Promise<void> {
  const dir = "/tmp/kabench";
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, "keepalived.conf");
  writeFileSync(conf, keepalivedConf());
  const t0 = performance.now();
  const p = Bun.spawn(
    [
      "keepalived",
      "-C",
      "-n",
      "-D",
      "-f",
      conf,
      "-p",
      join(dir, "k.pid"),
      "-c",
      join(dir, "c.pid"),
      "-r",
      join(dir, "v.pid"),
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  const cold = await waitFull(t0, 300_000);
  // one change: weight of one real server, through a config reload (what a keepalived operator does)
  const changed = keepalivedConf().replace(
    /(virtual_server 192\.0\.2\.126 80 \{[\s\S]*?real_server 198\.51\.100\.4 80 \{\n {4}weight )1/,
    "$15",
  );
  writeFileSync(conf, changed);
  const { client, socket } = openIpvs();
  const key: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.126", port: 80 };
  const t1 = performance.now();
  p.kill("SIGHUP");
  let change = -1;
  while (performance.now() - t1 < 120_000) {
    if (client.dests(key).some((d) => d.addr === "198.51.100.4" && d.weight === 5)) {
      change = performance.now() - t1;
      break;
    }
    await Bun.sleep(20);
  }
  socket.close();
  const counts = countAll();
  p.kill("SIGTERM");
  await p.exited;
  emit({
    contender: "keepalived",
    what: "spawn-to-full, SIGHUP-to-change",
    coldMs: Math.round(cold),
    changeMs: Math.round(change),
    ...counts,
  });
}

async function host(): Promise<void> {
  const { runInVm } = await import("../test/vm/vm.ts");
  const { buildBinary } = await import("../scripts/build.ts");
  // vigil runs two ways: compiled like dist/vigil (bytecode, minified), which is what starts on a
  // director, and from source (`bun file.ts`, as the earlier figures were taken)
  const argv = process.argv;
  const { outfile } = await buildBinary({ entry: "bench/ipvs-apply.ts", outfile: "dist/ipvs-apply-bench" });
  const runs = Number(argv[argv.indexOf("--runs") + 1] ?? 1) || 1;
  const vigils = argv.includes("--from-source") ? ["vigil-src"] : ["vigil", "vigil-src"];
  const contenders = argv.includes("--skip-keepalived") ? vigils : [...vigils, "keepalived"];
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < runs; i++) {
    for (const c of contenders) {
      const ack = process.env["VIGIL_BENCH_ACK"];
      const env: Record<string, string> = ack ? { VIGIL_BENCH_ACK: ack } : {};
      if (c === "vigil") env["VIGIL_BENCH_BIN"] = outfile;
      const guestArg = c === "keepalived" ? "keepalived" : "vigil";
      // one retry: on a loaded host a VM occasionally dies before reporting (nothing to measure then)
      let r = { code: -1, output: "", ms: 0 };
      let lines: string[] = [];
      for (let attempt = 0; attempt < 2 && lines.length === 0; attempt++) {
        r = await runInVm([process.execPath, "bench/ipvs-apply.ts", "--guest", guestArg], {
          env,
          smp: 2,
          memMb: 2048,
          timeoutS: 900,
        });
        lines = r.code === 0 ? r.output.split("\n").filter((l) => l.startsWith("BENCH ")) : [];
      }
      if (lines.length === 0) {
        console.log(r.output);
        throw new Error(`${c}: VM exited ${r.code}`);
      }
      for (const l of lines) {
        const o = JSON.parse(l.slice(6)) as Record<string, unknown>;
        const row = { run: i + 1, vmMs: r.ms, ...o, contender: c };
        rows.push(row);
        console.log(JSON.stringify(row));
      }
    }
  }
}

// argv[2] in both forms: `bun file.ts --x` and a compiled binary (argv[1] is its embedded entry)
const mode = process.argv[2];
if (mode === "--apply-here") await applyHere(false);
else if (mode === "--native") await applyHere(true);
else if (mode === "--guest") {
  if (process.env["VIGILVM"] !== "1") throw new Error("--guest runs inside the test VM only");
  if (process.argv[3] === "keepalived") await guestKeepalived();
  else await guestVigil();
} else await host();
