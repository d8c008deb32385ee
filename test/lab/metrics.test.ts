// `vigil run --metrics-listen` on a real kernel: two vigil nodes in namespaces, scraped from inside each
// namespace before and after a failover (link cut, then return with preemption) and after a VRRP child
// is killed. The text is checked by promtool (Debian package prometheus) and its values must move with
// what the kernel shows: VIP holder, instance state, transitions, adverts, child restarts. A second
// test runs a health checker against a listener that goes away, and injects adverts no instance owns.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { advertFrame, GROUP_V4, inject, macOf } from "../interop/inject.ts";
import { type Agent, childPids, holders, startVigil } from "./agents.ts";
import { keepalivedConf } from "./confgen.ts";
import { Lab, sleep, waitFor } from "./netns.ts";

const VIP = "192.0.2.100";
const LISTEN = "127.0.0.1:9650";
let lab: Lab | null = null;
const agents: Agent[] = [];

const helpers: Bun.Subprocess[] = [];

afterEach(async () => {
  for (const h of helpers.splice(0)) h.kill("SIGKILL");
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
    const l = new Lab("obsmet");
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

  test("checker, real server and IPVS families follow a real server failure; drops before an instance is known are counted", async () => {
    const l = new Lab("obsmetlb");
    lab = l;
    l.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
    l.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
    l.addNode({ name: "x", addrs: ["192.0.2.3/24"] });
    // a TCP listener on n1 is the real server; TCP_CHECK from n1's check child connects to it
    const listener = () =>
      l.spawn("n1", [
        "python3",
        "-c",
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('192.0.2.1',8080))\ns.listen(64)\nwhile True: s.accept()[0].close()",
      ]);
    // the first check must find it listening: python's start-up can outlast vigil's warmup on a busy host
    const listening = () =>
      l
        .exec(l.node("n1").ns, ["ss", "-Hltn", "sport", "=", ":8080"], { check: false })
        .stdout.includes("8080");
    let rs = listener();
    helpers.push(rs);
    expect(await waitFor(listening, 10_000)).toBe(true);
    const vs = `
virtual_server 192.0.2.200 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.1 8080 {
    weight 3
    TCP_CHECK {
      connect_timeout 1
      retry 1
      delay_before_retry 1
    }
  }
}
`;
    const conf = (priority: number) =>
      keepalivedConf({ instances: [{ priority, version: 3, advertInt: 0.2, vips: [`${VIP}/24`] }] });
    const a1 = startVigil(l, "n1", conf(150) + vs, { args: ["--metrics-listen", LISTEN] });
    const a2 = startVigil(l, "n2", conf(100), { args: ["--metrics-listen", LISTEN] });
    agents.push(a1, a2);
    expect(await waitFor(() => holders(l, ["n1", "n2"], VIP).join() === "n1", 10_000)).toBe(true);

    const rsL = 'virtual_server="192.0.2.200:80/TCP",real_server="192.0.2.1:8080"';
    const ckL = `${rsL},checker="TCP_CHECK 192.0.2.1:8080"`;
    const ok = (m: Map<string, number>) => m.get(`vigil_checker_checks_total{${ckL},result="ok"}`) ?? -1;
    const failed = (m: Map<string, number>) =>
      m.get(`vigil_checker_checks_total{${ckL},result="failed"}`) ?? -1;
    // the checker has succeeded a few times: the real server is up with its weight
    const up = await scrapeUntil(l, "n1", (m) => ok(m) >= 2, 15_000);
    expect(ok(up)).toBeGreaterThanOrEqual(2);
    expect(failed(up)).toBe(0);
    expect(up.get(`vigil_real_server_up{${rsL}}`)).toBe(1);
    expect(up.get(`vigil_checker_up{${ckL}}`)).toBe(1);
    expect(up.get(`vigil_real_server_weight{${rsL}}`)).toBe(3);
    expect(up.get(`vigil_checker_latency_seconds_count{${ckL}}`)).toBe(ok(up));
    expect(up.get(`vigil_checker_latency_seconds_sum{${ckL}}`)).toBeGreaterThan(0);
    expect(up.get(`vigil_checker_last_latency_seconds{${ckL}}`)).toBeLessThan(1);
    // this kernel has no IPVS: said so, nothing in the kernel, no ops
    expect(up.get('vigil_ipvs_state{state="unavailable"}')).toBe(1);
    expect(up.get(`vigil_real_server_in_kernel{${rsL}}`)).toBe(0);
    expect(up.get('vigil_ipvs_ops_total{result="applied"}')).toBe(0);
    expect(up.get('vigil_child_up{role="check"}')).toBe(1);
    // n2 has no virtual server: no check child, no load-balancing families
    const n2 = await scrapeUntil(l, "n2", (m) => m.has('vigil_child_up{role="vrrp"}'), 5000);
    expect(
      [...n2.keys()].filter((k) => /^vigil_(checker|real_server|ipvs|child_up\{role="check")/.test(k)),
    ).toEqual([]);
    expect(promtool((await scrape(l, "n1")).text)).toEqual({ code: 0, out: "" });

    // the real server goes away: connection refused, down after `retry` more failures
    rs.kill("SIGKILL");
    await rs.exited;
    const down = await scrapeUntil(l, "n1", (m) => m.get(`vigil_real_server_up{${rsL}}`) === 0, 15_000);
    expect(down.get(`vigil_real_server_up{${rsL}}`)).toBe(0);
    expect(down.get(`vigil_checker_up{${ckL}}`)).toBe(0);
    expect(failed(down)).toBeGreaterThanOrEqual(2);
    expect(ok(down)).toBeGreaterThanOrEqual(ok(up));
    expect(down.get('vigil_virtual_server_alive_weight{virtual_server="192.0.2.200:80/TCP"}')).toBe(0);
    // and back
    rs = listener();
    helpers.push(rs);
    const back = await scrapeUntil(l, "n1", (m) => m.get(`vigil_real_server_up{${rsL}}`) === 1, 15_000);
    expect(back.get(`vigil_real_server_up{${rsL}}`)).toBe(1);
    expect(ok(back)).toBeGreaterThan(ok(down));

    // adverts no instance owns (VRID 99) and adverts with a broken checksum, from a third node
    const drop = (m: Map<string, number>, reason: string) =>
      m.get(`vigil_vrrp_packets_dropped_total{reason="${reason}"}`) ?? -1;
    const before1 = await scrapeUntil(l, "n1", (m) => drop(m, "vrid") >= 0, 5000);
    const before2 = await scrapeUntil(l, "n2", (m) => drop(m, "vrid") >= 0, 5000);
    const ip = { src: "192.0.2.3", dst: GROUP_V4 };
    const srcMac = macOf(l, "x");
    const stranger = advertFrame({
      advert: { version: 3, vrid: 99, priority: 100, addresses: ["192.0.2.199"], advertInterval: 20 },
      ip,
      srcMac,
    });
    const corrupt = advertFrame({
      advert: { version: 3, vrid: 51, priority: 100, addresses: [VIP], advertInterval: 20 },
      ip,
      srcMac,
      mutate: (msg) => {
        const m = msg.slice();
        m[6]! ^= 0xff;
        return m;
      },
    });
    const sent = await inject(l, "x", [stranger, corrupt], { pps: 50, total: 20 });
    expect(sent.sent).toBe(20);
    for (const [node, b] of [
      ["n1", before1],
      ["n2", before2],
    ] as const) {
      // counters reach the watchdog with the VRRP child's next state message (every 5 s)
      const after = await scrapeUntil(
        l,
        node,
        (m) =>
          drop(m, "vrid") >= drop(b, "vrid") + 10 && drop(m, "bad_checksum") >= drop(b, "bad_checksum") + 10,
        12_000,
      );
      expect([node, drop(after, "vrid") - drop(b, "vrid")]).toEqual([node, 10]);
      expect([node, drop(after, "bad_checksum") - drop(b, "bad_checksum")]).toEqual([node, 10]);
    }
    // nothing of that disturbed the election
    await sleep(500);
    expect(holders(l, ["n1", "n2"], VIP)).toEqual(["n1"]);
  }, 90_000);

  test("an unusable --metrics-listen address stops vigil at start with a message", async () => {
    const l = new Lab("obsmetbad");
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
