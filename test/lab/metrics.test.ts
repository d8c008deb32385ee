// `vigil run --metrics-listen` on a real kernel: two vigil nodes in namespaces, scraped from inside each
// namespace before and after a failover (link cut, then return with preemption) and after a VRRP child
// is killed. The text is checked by promtool (Debian package prometheus) and its values must move with
// what the kernel shows: VIP holder, instance state, transitions, adverts, child restarts.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { type Agent, childPids, holders, startVigil } from "./agents.ts";
import { keepalivedConf } from "./confgen.ts";
import { Lab, waitFor } from "./netns.ts";

const VIP = "192.0.2.100";
const LISTEN = "127.0.0.1:9650";
let lab: Lab | null = null;
const agents: Agent[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop("SIGKILL", 1000);
  await lab?.destroy();
  lab = null;
});

/** GET /metrics from inside a node's namespace (the listener is on the namespace's loopback). */
async function scrape(l: Lab, node: string): Promise<{ status: number; text: string }> {
  const p = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      l.node(node).ns,
      process.execPath,
      "-e",
      "const r = await fetch(process.env.U); process.stdout.write(r.status + '\\n' + (await r.text()));",
    ],
    { stdout: "pipe", stderr: "pipe", env: { ...process.env, U: `http://${LISTEN}/metrics` } },
  );
  const out = await new Response(p.stdout).text();
  await p.exited;
  const nl = out.indexOf("\n");
  if (nl < 0) return { status: -1, text: "" };
  return { status: Number(out.slice(0, nl)), text: out.slice(nl + 1) };
}

function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function promtool(text: string): { code: number; out: string } {
  const bin = Bun.which("promtool");
  if (!bin) throw new Error("promtool not found: install Debian's prometheus package (.ci/run does)");
  const p = Bun.spawnSync([bin, "check", "metrics"], {
    stdin: Buffer.from(text),
    stdout: "pipe",
    stderr: "pipe",
  });
  return { code: p.exitCode ?? -1, out: (p.stdout.toString() + p.stderr.toString()).trim() };
}

const state = (m: Map<string, number>, s: string) =>
  m.get(`vigil_vrrp_instance_state{vrrp_instance="VI_1",state="${s}"}`);
const counter = (m: Map<string, number>, name: string) => m.get(`${name}{vrrp_instance="VI_1"}`) ?? -1;

/** Scrapes until `pred` holds on the parsed samples (state messages reach the watchdog asynchronously). */
async function scrapeUntil(
  l: Lab,
  node: string,
  pred: (m: Map<string, number>) => boolean,
  timeoutMs: number,
): Promise<Map<string, number>> {
  const end = Date.now() + timeoutMs;
  let m = new Map<string, number>();
  while (Date.now() < end) {
    const r = await scrape(l, node);
    if (r.status === 200) {
      m = samples(r.text);
      if (pred(m)) return m;
    }
    await Bun.sleep(100);
  }
  return m;
}

describe("vigil --metrics-listen", () => {
  test("scrapes before and after a failover: state, transitions, adverts and child restarts move", async () => {
    const l = new Lab("met");
    lab = l;
    l.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
    l.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
    const conf = (priority: number) =>
      keepalivedConf({ instances: [{ priority, version: 3, advertInt: 0.2, vips: [`${VIP}/24`] }] });
    const a1 = startVigil(l, "n1", conf(150), { args: ["--metrics-listen", LISTEN] });
    const a2 = startVigil(l, "n2", conf(100), { args: ["--metrics-listen", LISTEN] });
    agents.push(a1, a2);
    const both = ["n1", "n2"];

    // steady state: n1 master, n2 backup
    expect(await waitFor(() => holders(l, both, VIP).join() === "n1", 10_000)).toBe(true);
    const m1 = await scrapeUntil(l, "n1", (m) => state(m, "MASTER") === 1, 5000);
    const b2 = await scrapeUntil(l, "n2", (m) => state(m, "BACKUP") === 1, 5000);
    expect(state(m1, "MASTER")).toBe(1);
    expect(state(b2, "BACKUP")).toBe(1);
    expect(state(b2, "MASTER")).toBe(0);
    expect(b2.get('vigil_vrrp_effective_priority{vrrp_instance="VI_1"}')).toBe(100);
    expect(m1.get('vigil_vrrp_vips_held{vrrp_instance="VI_1"}')).toBe(1);
    expect(b2.get('vigil_vrrp_vips_held{vrrp_instance="VI_1"}')).toBe(0);
    expect(m1.get('vigil_child_up{role="vrrp"}')).toBe(1);
    expect(m1.get('vigil_child_restarts_total{role="vrrp"}')).toBe(0);
    const t2 = counter(b2, "vigil_vrrp_transitions_total");
    expect(t2).toBeGreaterThanOrEqual(1);
    // the exposition a real agent serves passes Prometheus's parser and linter
    const raw = await scrape(l, "n2");
    expect(promtool(raw.text)).toEqual({ code: 0, out: "" });

    // failover: n1's link is cut; n2 takes over
    l.setPort("n1", false);
    expect(await waitFor(() => l.hasAddress("n2", VIP), 5000)).toBe(true);
    const m2 = await scrapeUntil(l, "n2", (m) => state(m, "MASTER") === 1, 5000);
    expect(state(m2, "MASTER")).toBe(1);
    expect(state(m2, "BACKUP")).toBe(0);
    expect(counter(m2, "vigil_vrrp_transitions_total")).toBe(t2 + 1);
    expect(counter(m2, "vigil_vrrp_adverts_received_total")).toBeGreaterThan(0);
    expect(m2.get('vigil_vrrp_vips_held{vrrp_instance="VI_1"}')).toBe(1);
    const sent = counter(m2, "vigil_vrrp_adverts_sent_total");

    // n1 comes back with the higher priority and preempts: n2 is backup again, having sent adverts
    l.setPort("n1", true);
    expect(await waitFor(() => holders(l, both, VIP).join() === "n1", 5000)).toBe(true);
    const b3 = await scrapeUntil(l, "n2", (m) => state(m, "BACKUP") === 1, 5000);
    expect(state(b3, "BACKUP")).toBe(1);
    expect(counter(b3, "vigil_vrrp_transitions_total")).toBe(t2 + 2);
    expect(counter(b3, "vigil_vrrp_adverts_sent_total")).toBeGreaterThan(sent);
    expect(b3.get('vigil_vrrp_vips_held{vrrp_instance="VI_1"}')).toBe(0);

    // the VRRP child on n1 is killed: the watchdog respawns it and counts the restart
    const vrrpChild = childPids(a1.pid!).find((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0").includes("vrrp");
      } catch {
        return false;
      }
    });
    expect(vrrpChild).toBeDefined();
    process.kill(vrrpChild!, "SIGKILL");
    const r1 = await scrapeUntil(
      l,
      "n1",
      (m) => m.get('vigil_child_restarts_total{role="vrrp"}') === 1 && state(m, "MASTER") === 1,
      10_000,
    );
    expect(r1.get('vigil_child_restarts_total{role="vrrp"}')).toBe(1);
    expect(r1.get('vigil_child_up{role="vrrp"}')).toBe(1);
    expect(state(r1, "MASTER")).toBe(1);
  }, 60_000);

  test("an unusable --metrics-listen address stops vigil at start with a message", async () => {
    const l = new Lab("metbad");
    lab = l;
    l.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
    const a = startVigil(
      l,
      "n1",
      keepalivedConf({ instances: [{ priority: 100, version: 3, vips: [`${VIP}/24`] }] }),
      { args: ["--metrics-listen", "not-an-address"] },
    );
    agents.push(a);
    const code = await Promise.race([a.exited(), Bun.sleep(10_000).then(() => "timeout")]);
    expect(code).not.toBe(0);
    expect(code).not.toBe("timeout");
    expect(a.output()).toContain("metrics-listen");
    expect(holders(l, ["n1"], VIP)).toEqual([]);
  }, 20_000);
});
