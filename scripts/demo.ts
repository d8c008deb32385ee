// `npm run demo`: a live lab in network namespaces. Two vigil nodes share a VIP, a client probes it
// every 10 ms over UDP, and the demo kills the master (kill -9 of the whole agent and its link cut,
// as when a host dies), lets the backup take over, then brings the master back so that it preempts.
// Where the kernel has IPVS, the two nodes are also the load balancers: the VIP is a UDP virtual
// server (direct routing, rr, UDP_CHECK) in front of two backends, and the client's flows are spread
// over them before and after the failover. It shows who is master and the client's success rate as it
// happens, and ends with the outage it measured.
// `npm run demo -- --once`: the same script without live redraw; prints the figures and exits 0 when
// the failover worked. `--slow` stretches every deadline for an emulated machine (the VM test).
import { join } from "node:path";
import { type Agent, startVigil } from "../test/lab/agents.ts";
import { keepalivedConf } from "../test/lab/confgen.ts";
import { isRoot, Lab, run, sleep } from "../test/lab/netns.ts";

const once = process.argv.includes("--once");
const slow = process.argv.includes("--slow");
const live = !once && process.stdout.isTTY === true;
const VIP = "192.0.2.100";
const PORT = 7000;
const ADVERT_INT = 0.5;
const BACKENDS = [
  { name: "b1", addr: "192.0.2.11" },
  { name: "b2", addr: "192.0.2.12" },
];
/** deadlines scale on an emulated machine, where everything runs several times slower */
const T = (ms: number) => (slow ? ms * 10 : ms);
const agentArgs = slow ? ["--child-timeout", "60000"] : [];
const root = join(import.meta.dir, "..");
const fixture = (f: string) => join(root, "test", "lab", "fixtures", f);

function refuse(msg: string): never {
  process.stderr.write(`demo: ${msg}\n`);
  process.exit(2);
}

if (!isRoot()) refuse("needs root (it creates network namespaces); run it as root or with sudo");
if (run(["ip", "netns", "list"], { check: false }).code !== 0) refuse("`ip netns` is unavailable (iproute2)");

/** IPVS present, or loadable as keepalived would load it */
function ipvsAvailable(): boolean {
  run(["sh", "-c", "command -v modprobe >/dev/null && modprobe -q ip_vs"], { check: false });
  return run(["sh", "-c", "test -e /proc/net/ip_vs"], { check: false }).code === 0;
}
const lvs = ipvsAvailable();

const lab = new Lab("demo");
const agents: Agent[] = [];
const helpers: Bun.Subprocess[] = [];
let probe: Bun.Subprocess<"ignore", "pipe", "pipe"> | null = null;

async function cleanup(): Promise<void> {
  probe?.kill();
  for (const h of helpers) h.kill();
  for (const a of agents) await a.stop("SIGKILL", 500);
  await lab.destroy();
}
process.on("SIGINT", () => {
  void cleanup().then(() => {
    process.stdout.write("\ndemo: interrupted, lab removed\n");
    process.exit(130);
  });
});

/** the load-balancing half: the VIP's UDP port spread over the backends, which answer directly */
const virtualServer = [
  `virtual_server ${VIP} ${PORT} {`,
  "  delay_loop 1",
  "  lb_algo rr",
  "  lb_kind DR",
  "  protocol UDP",
  ...BACKENDS.flatMap((b) => [
    `  real_server ${b.addr} ${PORT} {`,
    "    UDP_CHECK {",
    // an emulated machine can be busy for longer than a second at a time
    `      connect_timeout ${slow ? 5 : 1}`,
    `      retry ${slow ? 3 : 1}`,
    "      payload 68656c6c6f",
    "      require_reply",
    "    }",
    "  }",
  ]),
  "}",
  "",
].join("\n");

const conf = (priority: number) =>
  keepalivedConf({
    routerId: `demo${priority}`,
    instances: [{ name: "VI_DEMO", priority, version: 3, advertInt: ADVERT_INT, vips: [`${VIP}/24`] }],
  }) + (lvs ? virtualServer : "");

const say = (s: string) => process.stdout.write(`${live ? "\r\x1b[K" : ""}${s}\n`);

let lastTick = { rate: 0, server: "", silentMs: 0 };
/** gaps between the client's replies (longer than 3 probe intervals), as the probe reports them */
const outages: { ms: number; from: string; to: string }[] = [];
let probeEnded = false;

/** nodes whose host is "dead" (agent killed, link cut): whatever their kernel holds is unreachable */
const down = new Set<string>();

function masterOf(): string {
  const h = ["n1", "n2"].filter((n) => !down.has(n) && lab.hasAddress(n, VIP));
  return h.length === 0 ? "none" : h.join("+");
}

let statusTimer: ReturnType<typeof setInterval> | null = null;
function startStatus(): void {
  if (!live) return;
  statusTimer = setInterval(() => {
    const bar = "#".repeat(Math.round(lastTick.rate * 20)).padEnd(20, ".");
    const dead = down.size ? ` (${[...down].join(",")} down)` : "";
    process.stdout.write(
      `\r\x1b[K  VIP ${VIP} on: ${(masterOf() + dead).padEnd(14)} client [${bar}] ${(lastTick.rate * 100).toFixed(0).padStart(3)}%  served by ${lastTick.server || "-"}`,
    );
  }, 200);
}

async function waitMaster(node: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  while (performance.now() - t0 < timeoutMs) {
    if (masterOf() === node) return performance.now() - t0;
    await sleep(10);
  }
  return -1;
}

/**
 * Ten new client flows through the VIP, and which backend answered each: rr over healthy backends.
 * The directors check the backends every second, so the first flows may arrive before both passed.
 */
async function showBalance(director: string): Promise<void> {
  let last = "";
  const end = performance.now() + T(10_000);
  while (performance.now() < end) {
    const p = lab.spawn("client", [process.execPath, fixture("udp-flows.ts"), VIP, String(PORT), "10"]);
    const out = await new Response(p.stdout as ReadableStream<Uint8Array>).text();
    await p.exited;
    const j = JSON.parse(out.trim().split("\n").pop() ?? "{}") as {
      tally?: Record<string, number>;
      lost?: number;
    };
    const tally = j.tally ?? {};
    last = BACKENDS.map((b) => `${b.name} ${tally[b.name] ?? 0}`).join(", ");
    if (BACKENDS.every((b) => (tally[b.name] ?? 0) > 0)) {
      say(`load balancing through ${director}: 10 new client flows answered by ${last}`);
      return;
    }
    await sleep(500);
  }
  throw new Error(`flows through ${director} did not reach every backend (last: ${last})`);
}

async function main(): Promise<number> {
  say(
    lvs
      ? "vigil demo: two vigil nodes (n1 priority 150, n2 priority 100) share 192.0.2.100 and balance its UDP port over backends b1 and b2; a client probes it"
      : "vigil demo: two VRRP nodes (n1 priority 150, n2 priority 100) share 192.0.2.100; a client probes it",
  );
  if (!lvs) say("note: this kernel has no IPVS, so the demo shows VRRP failover alone (no load balancing)");
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  lab.addNode({ name: "client", addrs: ["192.0.2.50/24"] });
  // without IPVS the nodes answer the probe themselves; with it, the backends do (direct routing:
  // each holds the VIP on lo, and never answers ARP for it, the master does)
  const servers = lvs ? BACKENDS.map((b) => b.name) : ["n1", "n2"];
  if (lvs) {
    for (const b of BACKENDS) {
      const node = lab.addNode({ name: b.name, addrs: [`${b.addr}/24`] });
      lab.exec(node.ns, [
        "sysctl",
        "-qw",
        "net.ipv4.conf.all.arp_ignore=1",
        "net.ipv4.conf.all.arp_announce=2",
      ]);
      lab.exec(node.ns, ["ip", "addr", "add", `${VIP}/32`, "dev", "lo"]);
    }
  }
  for (const n of servers) {
    helpers.push(
      lab.spawn(n, [process.execPath, fixture("udp-probe.ts"), "serve", String(PORT), n], {
        stdout: "ignore",
      }),
    );
  }
  agents.push(
    startVigil(lab, "n1", conf(150), { args: agentArgs }),
    startVigil(lab, "n2", conf(100), { args: agentArgs }),
  );
  const elected = await waitMaster("n1", T(10_000));
  if (elected < 0) throw new Error(`no master elected within ${T(10_000) / 1000} s`);
  say(`election: n1 is master (${(elected / 1000).toFixed(1)} s after start)`);
  if (lvs) await showBalance("n1");

  probe = lab.spawn("client", [
    process.execPath,
    fixture("udp-probe.ts"),
    "client",
    VIP,
    String(PORT),
    "--interval",
    "10",
    "--report",
    "200",
  ]) as Bun.Subprocess<"ignore", "pipe", "pipe">;
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    let prev = { rx: 0, tx: 0 };
    for await (const chunk of probe!.stdout) {
      buf += dec.decode(chunk, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        const j = JSON.parse(l) as {
          gap?: number;
          fromServer?: string;
          toServer?: string;
          rx?: number;
          tx?: number;
          server?: string;
          lastRx?: number;
          at?: number;
          sent?: number;
        };
        if (j.gap !== undefined) {
          outages.push({ ms: Math.round(j.gap), from: j.fromServer ?? "?", to: j.toServer ?? "?" });
        } else if (j.rx !== undefined && j.tx !== undefined) {
          const sent = j.tx - prev.tx;
          lastTick = {
            rate: sent > 0 ? Math.min(1, (j.rx - prev.rx) / sent) : 0,
            server: j.server ?? "",
            silentMs: j.lastRx ? Math.round((j.at ?? 0) - j.lastRx) : 0,
          };
          prev = { rx: j.rx, tx: j.tx };
        } else if (j.sent !== undefined) probeEnded = true;
      }
    }
  })();
  startStatus();
  await sleep(3000);

  say("failover: n1 dies (its agent gets SIGKILL, no goodbye advert, and its link goes down)");
  const tKill = performance.now();
  await agents[0]!.crash();
  lab.setPort("n1", false);
  down.add("n1");
  let moved = -1;
  while (performance.now() - tKill < T(10_000)) {
    if (lab.hasAddress("n2", VIP)) {
      moved = performance.now() - tKill;
      break;
    }
    await sleep(5);
  }
  if (moved < 0) throw new Error(`n2 did not take over within ${T(10_000) / 1000} s`);
  const masterDownMs = (3 * ADVERT_INT + ((256 - 100) * ADVERT_INT) / 256) * 1000;
  say(
    `n2 took the VIP ${moved.toFixed(0)} ms after the kill (its Master_Down_Interval: ${masterDownMs.toFixed(0)} ms)`,
  );
  await sleep(3000);
  if (lvs) await showBalance("n2");

  say("recovery: n1 comes back (link up, agent restarted); it releases its stale VIP and preempts");
  agents[0] = startVigil(lab, "n1", conf(150), { args: agentArgs });
  // as after a reboot, n1 must not answer for the VIP before its agent decided: wait for the release
  const t0 = performance.now();
  while (lab.hasAddress("n1", VIP) && performance.now() - t0 < T(5000)) await sleep(10);
  lab.setPort("n1", true);
  down.delete("n1");
  const back = await waitMaster("n1", T(10_000));
  if (back < 0) throw new Error(`n1 did not preempt within ${T(10_000) / 1000} s`);
  say(`n1 is master again (${(back / 1000).toFixed(1)} s after restart)`);
  await sleep(2000);

  if (statusTimer) clearInterval(statusTimer);
  probe.kill("SIGTERM");
  await probe.exited;
  await sleep(50);
  if (!probeEnded) await sleep(200);
  say("");
  say("summary");
  say(`  VIP move time on master crash: ${moved.toFixed(0)} ms`);
  for (const o of outages) say(`  client outage: ${o.ms} ms (served by ${o.from} before, ${o.to} after)`);
  say(`  longest client outage: ${outages.reduce((m, o) => Math.max(m, o.ms), 0)} ms`);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  say(`demo failed: ${(e as Error).message}`);
  // without a terminal nobody watched it happen: leave what the agents said
  if (once) {
    for (const a of agents) process.stderr.write(`--- ${a.node}\n${a.output().slice(-6000)}\n`);
    if (lvs) {
      for (const n of ["n1", "n2"]) {
        const t = run(["ip", "netns", "exec", lab.node(n).ns, "ipvsadm", "-Ln"], { check: false });
        process.stderr.write(`--- ${n} ipvsadm -Ln\n${t.stdout}${t.stderr}\n`);
      }
    }
  }
}
await cleanup();
process.exit(code);
