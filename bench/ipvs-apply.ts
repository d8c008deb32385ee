// IPVS apply time for a large table: 1,000 virtual services x 10 real servers (NAT), programmed from
// cold, then one weight change on the loaded table; vigil (IpvsClient + reconcile) against keepalived
// 2.2.7 (`keepalived -C`, checkers only, same table from a generated keepalived.conf).
//
//   bun bench/ipvs-apply.ts [--runs N] [--skip-keepalived]   on the host: boots one fresh VM per
//                                                           contender and run (re-programming after
//                                                           a flush is slower, so never reuse a VM)
//   bun bench/ipvs-apply.ts --guest vigil|keepalived        inside the VM (test/vm/run.sh)
//
// Prints one JSON line per measurement ("BENCH {...}") and a summary table. keepalived is timed from
// its spawn until the last service has all its real servers, observed through IpvsClient (one
// GET_DEST every 20 ms: counting /proc/net/ip_vs would starve the guest and inflate the result); vigil
// is timed both in-process (read + diff + apply) and spawn-to-exit of a fresh process, which compares
// with keepalived's figure. The VM has 2 vCPUs so polling does not steal the contender's CPU.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyOps, openIpvs, readTable } from "../agent/lvs/ipvs-client.ts";
import { type DesiredService, reconcile, toIpvsDest, toIpvsService } from "../agent/lvs/reconcile.ts";
import type { ServiceKey } from "../agent/wire/ipvs.ts";

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

/** In-process apply: read + diff + apply, from cold; then one change on the loaded table. */
function applyHere(): void {
  const desired = table();
  const ack = process.env["VIGIL_BENCH_ACK"];
  const { client, socket } = openIpvs(ack === "each" || ack === "errors" ? { ackMode: ack } : {});
  let t = performance.now();
  const before = readTable(client);
  const tRead = performance.now() - t;
  const ops = reconcile(desired, before);
  const tDiff = performance.now() - t - tRead;
  const res = applyOps(client, ops);
  const tCold = performance.now() - t;
  if (res.errors.length) throw new Error(`apply failed: ${res.errors[0]}`);

  const changed = desired.map((s, i) =>
    i === 500 ? { ...s, dests: s.dests.map((d, j) => (j === 3 ? { ...d, weight: 5 } : d)) } : s,
  );
  t = performance.now();
  const loaded = readTable(client);
  const tReadLoaded = performance.now() - t;
  const ops2 = reconcile(changed, loaded);
  const res2 = applyOps(client, ops2);
  const tChange = performance.now() - t;
  if (res2.errors.length || ops2.length !== 1)
    throw new Error(`change: ${ops2.length} ops, ${res2.errors[0]}`);

  // the same kind of change diffed against what this process last applied (its in-memory view of
  // the kernel after a successful apply) instead of a full re-read: what a reload costs in steady state
  const applied = changed.map((s) => ({
    service: toIpvsService(s),
    dests: s.dests.map((d) => toIpvsDest(d, s.key.af)),
  }));
  const changed2 = changed.map((s, i) =>
    i === 700 ? { ...s, dests: s.dests.map((d, j) => (j === 6 ? { ...d, weight: 9 } : d)) } : s,
  );
  t = performance.now();
  const ops3 = reconcile(changed2, applied);
  const tDiffKnown = performance.now() - t;
  const res3 = applyOps(client, ops3);
  const tChangeKnown = performance.now() - t;
  if (res3.errors.length || ops3.length !== 1)
    throw new Error(`change 2: ${ops3.length} ops, ${res3.errors[0]}`);
  socket.close();
  emit({
    contender: "vigil",
    what: "in-process",
    coldMs: Math.round(tCold),
    coldReadMs: Math.round(tRead),
    coldDiffMs: Math.round(tDiff),
    ops: ops.length,
    changeMs: Math.round(tChange),
    changeReadLoadedMs: Math.round(tReadLoaded),
    changeOps: ops2.length,
    changeKnownStateMs: Math.round(tChangeKnown),
    changeKnownStateDiffMs: Math.round(tDiffKnown),
  });
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
  // a fresh process, as the agent's check child would be: spawn to exit
  const t0 = performance.now();
  const p = Bun.spawn([process.execPath, import.meta.path, "--apply-here"], {
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
    what: "spawn-to-full, spawn-to-exit (cold + 2 changes)",
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
  const argv = process.argv;
  const runs = Number(argv[argv.indexOf("--runs") + 1] ?? 1) || 1;
  const contenders = argv.includes("--skip-keepalived") ? ["vigil"] : ["vigil", "keepalived"];
  const rows: Record<string, unknown>[] = [];
  for (let i = 0; i < runs; i++) {
    for (const c of contenders) {
      const ack = process.env["VIGIL_BENCH_ACK"];
      const r = await runInVm([process.execPath, "bench/ipvs-apply.ts", "--guest", c], {
        env: ack ? { VIGIL_BENCH_ACK: ack } : {},
        smp: 2,
        memMb: 2048,
        timeoutS: 900,
      });
      const lines = r.output.split("\n").filter((l) => l.startsWith("BENCH "));
      if (r.code !== 0 || lines.length === 0) {
        console.log(r.output);
        throw new Error(`${c}: VM exited ${r.code}`);
      }
      for (const l of lines) {
        const o = JSON.parse(l.slice(6)) as Record<string, unknown>;
        rows.push({ run: i + 1, vmMs: r.ms, ...o });
        console.log(JSON.stringify({ run: i + 1, vmMs: r.ms, ...o }));
      }
    }
  }
}

const mode = process.argv[2];
if (mode === "--apply-here") applyHere();
else if (mode === "--guest") {
  if (process.env["VIGILVM"] !== "1") throw new Error("--guest runs inside the test VM only");
  if (process.argv[3] === "keepalived") await guestKeepalived();
  else await guestVigil();
} else await host();
