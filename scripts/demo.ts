// `npm run demo`: a live lab in network namespaces. Two vigil nodes share a VIP, a client probes it
// every 10 ms over UDP, and the demo kills the master (kill -9 of the whole agent and its link cut,
// as when a host dies), lets the backup take over, then brings the master back so that it preempts. It shows who is master and the client's
// success rate as it happens, and ends with the outage it measured.
// `npm run demo -- --once`: the same script without live redraw; prints the figures and exits 0 when
// the failover worked.
import { join } from "node:path";
import { type Agent, startVigil } from "../test/lab/agents.ts";
import { keepalivedConf } from "../test/lab/confgen.ts";
import { isRoot, Lab, run, sleep } from "../test/lab/netns.ts";

const once = process.argv.includes("--once");
const live = !once && process.stdout.isTTY === true;
const VIP = "192.0.2.100";
const PORT = 7000;
const ADVERT_INT = 0.5;
const root = join(import.meta.dir, "..");
const fixture = (f: string) => join(root, "test", "lab", "fixtures", f);

function refuse(msg: string): never {
  process.stderr.write(`demo: ${msg}\n`);
  process.exit(2);
}

if (!isRoot()) refuse("needs root (it creates network namespaces); run it as root or with sudo");
if (run(["ip", "netns", "list"], { check: false }).code !== 0) refuse("`ip netns` is unavailable (iproute2)");

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

const conf = (priority: number) =>
  keepalivedConf({
    routerId: `demo${priority}`,
    instances: [{ name: "VI_DEMO", priority, version: 3, advertInt: ADVERT_INT, vips: [`${VIP}/24`] }],
  });

const say = (s: string) => process.stdout.write(`${live ? "\r\x1b[K" : ""}${s}\n`);

let lastTick = { rate: 0, server: "", silentMs: 0 };
let summary: {
  maxGapMs: number;
  outages: { startMs: number; ms: number; from: string; to: string }[];
} | null = null;

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

async function main(): Promise<number> {
  say("vigil demo: two VRRP nodes (n1 priority 150, n2 priority 100) share 192.0.2.100; a client probes it");
  const ipvs = run(["sh", "-c", "test -d /proc/net/ip_vs || grep -qw ip_vs /proc/modules"], { check: false });
  if (ipvs.code !== 0) say("note: this kernel has no IPVS, so the demo shows VRRP failover alone (no LVS)");
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  lab.addNode({ name: "client", addrs: ["192.0.2.50/24"] });
  for (const n of ["n1", "n2"]) {
    helpers.push(
      lab.spawn(n, [process.execPath, fixture("udp-echo.ts"), String(PORT), n], { stdout: "ignore" }),
    );
  }
  agents.push(startVigil(lab, "n1", conf(150)), startVigil(lab, "n2", conf(100)));
  const elected = await waitMaster("n1", 10_000);
  if (elected < 0) throw new Error("no master elected within 10 s");
  say(`election: n1 is master (${(elected / 1000).toFixed(1)} s after start)`);

  probe = lab.spawn("client", [
    process.execPath,
    fixture("udp-probe.ts"),
    VIP,
    String(PORT),
    "10",
    "200",
  ]) as Bun.Subprocess<"ignore", "pipe", "pipe">;
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of probe!.stdout) {
      buf += dec.decode(chunk, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const l of lines) {
        const j = JSON.parse(l) as { type: string; windowRate?: number; server?: string; silentMs?: number };
        if (j.type === "tick")
          lastTick = { rate: j.windowRate ?? 0, server: j.server ?? "", silentMs: j.silentMs ?? 0 };
        else if (j.type === "summary") summary = j as unknown as typeof summary;
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
  while (performance.now() - tKill < 10_000) {
    if (lab.hasAddress("n2", VIP)) {
      moved = performance.now() - tKill;
      break;
    }
    await sleep(5);
  }
  if (moved < 0) throw new Error("n2 did not take over within 10 s");
  const masterDownMs = (3 * ADVERT_INT + ((256 - 100) * ADVERT_INT) / 256) * 1000;
  say(
    `n2 took the VIP ${moved.toFixed(0)} ms after the kill (its Master_Down_Interval: ${masterDownMs.toFixed(0)} ms)`,
  );
  await sleep(3000);

  say("recovery: n1 comes back (link up, agent restarted); it releases its stale VIP and preempts");
  agents[0] = startVigil(lab, "n1", conf(150));
  // as after a reboot, n1 must not answer for the VIP before its agent decided: wait for the release
  const t0 = performance.now();
  while (lab.hasAddress("n1", VIP) && performance.now() - t0 < 5000) await sleep(10);
  lab.setPort("n1", true);
  down.delete("n1");
  const back = await waitMaster("n1", 10_000);
  if (back < 0) throw new Error("n1 did not preempt within 10 s");
  say(`n1 is master again (${(back / 1000).toFixed(1)} s after restart)`);
  await sleep(2000);

  if (statusTimer) clearInterval(statusTimer);
  probe.kill("SIGTERM");
  await probe.exited;
  await sleep(50);
  const s = summary as { maxGapMs: number; outages: { ms: number; from: string; to: string }[] } | null;
  say("");
  say("summary");
  say(`  VIP move time on master crash: ${moved.toFixed(0)} ms`);
  for (const o of s?.outages ?? [])
    say(`  client outage: ${o.ms} ms (served by ${o.from} before, ${o.to} after)`);
  say(`  longest client outage: ${s?.maxGapMs ?? "?"} ms`);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (e) {
  say(`demo failed: ${(e as Error).message}`);
}
await cleanup();
process.exit(code);
