// vigil-only groups on a real kernel: election, failover on kill -9 and link cut, preempt,
// nopreempt, preempt_delay, graceful stop. Truth comes from the kernel (`ip addr`) and from packets.
import { afterEach, describe, expect, test } from "bun:test";
import { type Agent, captureAdvertsOn, holders, sampleHolders, startVigil } from "./agents.ts";
import { keepalivedConf } from "./confgen.ts";
import { Lab, sleep, waitFor } from "./netns.ts";

const VIP = "192.0.2.100";
let lab: Lab | null = null;
const agents: Agent[] = [];

afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop("SIGKILL", 1000);
  await lab?.destroy();
  lab = null;
});

function nodes(n: number, tag: string): Lab {
  lab = new Lab(tag);
  for (let i = 1; i <= n; i++)
    lab.addNode({ name: `n${i}`, addrs: [`192.0.2.${i}/24`, `2001:db8::${i}/64`] });
  return lab;
}

function vigil(l: Lab, node: string, conf: string): Agent {
  const a = startVigil(l, node, conf);
  agents.push(a);
  return a;
}

/** Waits until exactly `node` holds the VIP among `all`; returns ms waited or -1. */
async function waitHolder(
  l: Lab,
  all: string[],
  node: string,
  timeoutMs: number,
  vip = VIP,
): Promise<number> {
  const t0 = performance.now();
  const ok = await waitFor(() => {
    const h = holders(l, all, vip);
    return h.length === 1 && h[0] === node;
  }, timeoutMs);
  return ok ? performance.now() - t0 : -1;
}

/** tcpdump on the bridge, collecting ARP lines (GARP evidence) with link-level headers. */
function captureArp(l: Lab): { lines: string[]; stop: () => void } {
  const p = Bun.spawn(["ip", "netns", "exec", l.switchNs, "tcpdump", "-i", "br0", "-nn", "-e", "-l", "arp"], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const lines: string[] = [];
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const c of p.stdout) {
      buf += dec.decode(c, { stream: true });
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      lines.push(...parts);
    }
  })();
  return { lines, stop: () => p.kill() };
}

function macOf(l: Lab, node: string): string {
  const out = l.exec(l.node(node).ns, ["cat", "/sys/class/net/eth0/address"]).stdout.trim();
  return out;
}

const v3 = (priority: number, extra: Partial<Parameters<typeof keepalivedConf>[0]["instances"][0]> = {}) =>
  keepalivedConf({
    instances: [{ priority, version: 3, advertInt: 0.2, vips: [`${VIP}/24`], ...extra }],
  });

describe("vigil VRRP on a real kernel", () => {
  test("three nodes: highest priority wins; kill -9 moves the VIP with GARP; return preempts", async () => {
    const l = nodes(3, "fo3");
    const all = ["n1", "n2", "n3"];
    const arp = captureArp(l);
    const a1 = vigil(l, "n1", v3(200));
    vigil(l, "n2", v3(150));
    vigil(l, "n3", v3(100));
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    expect(await sampleHolders(l, all, VIP, 1000)).toEqual([]);
    expect(a1.transitions("VI_1").at(-1)?.to).toBe("MASTER");

    await a1.crash();
    // a killed agent leaves its VIP in its (still running) kernel: only live nodes count until it restarts
    const t = await waitHolder(l, ["n2", "n3"], "n2", 3000);
    // Master_Down_Interval for priority 150 at 0.2 s: 3*200 + (256-150)*200/256 = 683 ms
    expect(t).toBeGreaterThanOrEqual(0);
    expect(t).toBeLessThan(683 + 400);
    const mac2 = macOf(l, "n2");
    // a gratuitous ARP: request from n2's MAC asking for the VIP on behalf of the VIP
    const garp = new RegExp(
      `^.*${mac2} > ff:ff:ff:ff:ff:ff.*Request who-has ${VIP.replaceAll(".", "\\.")} .*tell ${VIP.replaceAll(".", "\\.")},`,
    );
    expect(await waitFor(() => arp.lines.some((x) => garp.test(x)), 2000)).toBe(true);
    expect(await sampleHolders(l, ["n2", "n3"], VIP, 600)).toEqual([]);

    const back = vigil(l, "n1", v3(200));
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    // the VIP is added before the transition line is written: wait for the line
    expect(await back.waitLine((x) => x.includes('"to":"MASTER"'), 2000)).not.toBeNull();
    expect(await sampleHolders(l, all, VIP, 600)).toEqual([]);
    arp.stop();
  });

  test("link cut on the master: backup takes over; link back: master preempts", async () => {
    const l = nodes(2, "cut");
    const all = ["n1", "n2"];
    vigil(l, "n1", v3(200));
    vigil(l, "n2", v3(100));
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    l.setPort("n1", false);
    // n1 still holds its VIP (it cannot hear n2), so only n2's side is checked here
    expect(await waitFor(() => l.hasAddress("n2", VIP), 3000)).toBe(true);
    l.setPort("n1", true);
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    expect(await sampleHolders(l, all, VIP, 600)).toEqual([]);
  });

  test("nopreempt: the returning higher-priority node stays backup", async () => {
    const l = nodes(2, "nopre");
    const all = ["n1", "n2"];
    // n1 first: with nopreempt both, whoever's Master_Down_Interval ends first keeps the VIP, and on a
    // loaded machine n1's start can lag n2's by more than the 80 ms their intervals differ
    const a1 = vigil(l, "n1", v3(200, { nopreempt: true }));
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    vigil(l, "n2", v3(100, { nopreempt: true }));
    await sleep(1000);
    expect(holders(l, all, VIP)).toEqual(["n1"]);
    await a1.crash();
    expect(await waitHolder(l, ["n2"], "n2", 3000)).toBeGreaterThanOrEqual(0);
    const back = vigil(l, "n1", v3(200, { nopreempt: true }));
    await back.waitLine((x) => x.includes('"to":"BACKUP"'), 3000);
    expect(await sampleHolders(l, all, VIP, 2000)).toEqual([]);
    expect(holders(l, all, VIP)).toEqual(["n2"]);
    expect(back.transitions("VI_1").some((x) => x.to === "MASTER")).toBe(false);
  });

  test("preempt_delay: the returning node preempts only after the delay", async () => {
    const l = nodes(2, "pdelay");
    const all = ["n1", "n2"];
    const a1 = vigil(l, "n1", v3(200, { preemptDelay: 2 }));
    vigil(l, "n2", v3(100));
    expect(await waitHolder(l, all, "n1", 6000)).toBeGreaterThanOrEqual(0);
    await a1.crash();
    expect(await waitHolder(l, ["n2"], "n2", 3000)).toBeGreaterThanOrEqual(0);
    const started = performance.now();
    vigil(l, "n1", v3(200, { preemptDelay: 2 }));
    const t = await waitHolder(l, all, "n1", 6000);
    expect(t).toBeGreaterThanOrEqual(0);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
  });

  test("vrrp_startup_delay: a lone backup takes over only after the delay plus Master_Down", async () => {
    const l = nodes(1, "sdelay");
    const conf = keepalivedConf({
      globals: ["vrrp_startup_delay 2"],
      instances: [{ priority: 100, version: 3, advertInt: 0.2, vips: [`${VIP}/24`] }],
    });
    const a = vigil(l, "n1", conf);
    expect(await a.waitLine((x) => x.includes('"msg":"delaying startup"'), 5000)).not.toBeNull();
    const t0 = performance.now();
    const t = await waitHolder(l, ["n1"], "n1", 6000);
    expect(t).toBeGreaterThanOrEqual(0);
    // Master_Down_Interval at 200 ms and priority 100: 600 + 121.875 ms, counted from the delay's end
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(2000 + 600);
    expect(took).toBeLessThan(2000 + 722 + 1000);
  });

  test("down_timer_adverts: the backup takes over after N intervals plus Skew_Time of silence", async () => {
    const l = nodes(2, "dtadv");
    const cap = captureAdvertsOn(l);
    try {
      // advert_int 0.5, backup priority 100: Skew_Time 304.7 ms; N = 2 gives 1304.7 ms (3 would be 1804.7)
      const a1 = vigil(l, "n1", v3(200, { advertInt: 0.5 }));
      vigil(l, "n2", v3(100, { advertInt: 0.5, extra: ["down_timer_adverts 2"] }));
      expect(await waitHolder(l, ["n1", "n2"], "n1", 6000)).toBeGreaterThanOrEqual(0);
      await sleep(1200);
      await a1.crash();
      expect(await waitHolder(l, ["n2"], "n2", 4000)).toBeGreaterThanOrEqual(0);
      const last = cap.adverts.filter((a) => a.src === "192.0.2.1").at(-1)!;
      // tcpdump's lines arrive a little after the packets
      const next = () => cap.adverts.find((a) => a.src === "192.0.2.2" && a.t > last.t);
      expect(await waitFor(() => next() !== undefined, 2000)).toBe(true);
      const first = next()!;
      const silenceMs = (first.t - last.t) * 1000;
      console.log(
        `[failover] down_timer_adverts 2: backup advertised ${silenceMs.toFixed(1)} ms after the last master advert`,
      );
      expect(silenceMs).toBeGreaterThanOrEqual(1300);
      expect(silenceMs).toBeLessThan(1650);
    } finally {
      cap.stop();
    }
  });

  test("SIGTERM on the master: priority 0 lets the backup take over within Skew_Time", async () => {
    const l = nodes(2, "term");
    const all = ["n1", "n2"];
    const a1 = vigil(l, "n1", v3(200));
    vigil(l, "n2", v3(100));
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    await sleep(300);
    const t0 = performance.now();
    a1.signal("SIGTERM");
    const t = await waitHolder(l, all, "n2", 3000);
    // Skew_Time for priority 100 at 0.2 s = (256-100)*200/256 = 122 ms
    expect(t).toBeGreaterThanOrEqual(0);
    expect(performance.now() - t0).toBeLessThan(122 + 250);
    expect(await a1.exited()).toBe(0);
    expect(l.hasAddress("n1", VIP)).toBe(false);
  });

  test("v2 with PASS auth at advert_int 1, and IPv6 v3: elect and fail over", async () => {
    const l = nodes(2, "v2v6");
    const all = ["n1", "n2"];
    const conf = (p: number) =>
      keepalivedConf({
        instances: [
          {
            name: "V2",
            vrid: 60,
            priority: p,
            version: 2,
            advertInt: 1,
            authPass: "s3cret",
            vips: [`${VIP}/24`],
          },
          { name: "V6", vrid: 61, priority: p, version: 3, advertInt: 0.2, vips: ["2001:db8::100/64"] },
        ],
      });
    const a1 = vigil(l, "n1", conf(200));
    vigil(l, "n2", conf(100));
    expect(await waitHolder(l, all, "n1", 6000)).toBeGreaterThanOrEqual(0);
    expect(await waitHolder(l, all, "n1", 6000, "2001:db8::100")).toBeGreaterThanOrEqual(0);
    await a1.crash();
    expect(await waitHolder(l, ["n2"], "n2", 3000, "2001:db8::100")).toBeGreaterThanOrEqual(0);
    // v2: 3 s + (256-100)/256 s
    expect(await waitHolder(l, ["n2"], "n2", 5000)).toBeGreaterThanOrEqual(0);
  });

  test("unicast peer TTL range (vrrp_check_unicast_src): adverts outside min_ttl..max_ttl are dropped", async () => {
    const l = nodes(2, "uttl");
    const all = ["n1", "n2"];
    // on one link the adverts arrive with TTL 255: a range that excludes it makes n2 deaf to n1
    const conf = (p: number, me: number, peer: number, range: string) =>
      keepalivedConf({
        globals: ["vrrp_check_unicast_src"],
        instances: [
          {
            priority: p,
            version: 3,
            advertInt: 0.2,
            vips: [`${VIP}/24`],
            unicastSrc: `192.0.2.${me}`,
            unicastPeers: [`192.0.2.${peer} ${range}`],
          },
        ],
      });
    vigil(l, "n1", conf(200, 1, 2, "min_ttl 255 max_ttl 255"));
    const deaf = vigil(l, "n2", conf(100, 2, 1, "min_ttl 1 max_ttl 254"));
    // n2 hears nothing valid: it becomes master too
    expect(await waitFor(() => holders(l, all, VIP).length === 2, 5000)).toBe(true);
    await deaf.stop("SIGTERM", 3000);
    agents.splice(agents.indexOf(deaf), 1);
    expect(await waitHolder(l, all, "n1", 3000)).toBeGreaterThanOrEqual(0);
    // the same group with 255 inside the range: one master
    vigil(l, "n2", conf(100, 2, 1, "min_ttl 200 max_ttl 255"));
    await sleep(1500);
    expect(holders(l, all, VIP)).toEqual(["n1"]);
  });

  test("VIP options: brd, scope, label and dev reach the kernel as written", async () => {
    const l = nodes(1, "vipopt");
    l.exec(l.node("n1").ns, ["ip", "link", "add", "ex0", "type", "veth", "peer", "name", "ex1"]);
    l.exec(l.node("n1").ns, ["ip", "link", "set", "ex0", "up"]);
    l.exec(l.node("n1").ns, ["ip", "link", "set", "ex1", "up"]);
    vigil(
      l,
      "n1",
      keepalivedConf({
        instances: [
          {
            priority: 255,
            version: 3,
            advertInt: 0.2,
            vips: [
              `${VIP}/24 brd 192.0.2.127 label eth0:vip`,
              "198.51.100.7/24 dev ex0 scope link",
              "203.0.113.9/32 scope host",
            ],
          },
        ],
      }),
    );
    interface AddrInfo {
      local: string;
      prefixlen: number;
      broadcast?: string;
      scope: string;
      label?: string;
    }
    const addrs = (dev: string): AddrInfo[] => {
      const out = l.exec(l.node("n1").ns, ["ip", "-j", "addr", "show", "dev", dev]).stdout;
      return (JSON.parse(out) as { addr_info: AddrInfo[] }[]).flatMap((x) => x.addr_info);
    };
    expect(await waitFor(() => addrs("eth0").some((a) => a.local === VIP), 5000)).toBe(true);
    expect(addrs("eth0").find((a) => a.local === VIP)).toMatchObject({
      prefixlen: 24,
      broadcast: "192.0.2.127",
      scope: "global",
      label: "eth0:vip",
    });
    expect(addrs("ex0").find((a) => a.local === "198.51.100.7")).toMatchObject({
      prefixlen: 24,
      scope: "link",
    });
    expect(addrs("eth0").find((a) => a.local === "203.0.113.9")).toMatchObject({
      prefixlen: 32,
      scope: "host",
    });
    // and nothing landed on the wrong device
    expect(addrs("eth0").some((a) => a.local === "198.51.100.7")).toBe(false);
  });

  test("unicast peers: elect and fail over without multicast", async () => {
    const l = nodes(2, "ucast");
    const all = ["n1", "n2"];
    const conf = (p: number, me: number, peer: number) =>
      v3(p, { unicastSrc: `192.0.2.${me}`, unicastPeers: [`192.0.2.${peer}`] });
    const a1 = vigil(l, "n1", conf(200, 1, 2));
    vigil(l, "n2", conf(100, 2, 1));
    expect(await waitHolder(l, all, "n1", 5000)).toBeGreaterThanOrEqual(0);
    // no multicast adverts on the wire
    const mc = l.exec(
      l.node("n2").ns,
      ["timeout", "1", "tcpdump", "-i", "eth0", "-nn", "-c", "1", "dst", "224.0.0.18"],
      {
        check: false,
      },
    );
    expect(mc.stdout).not.toContain("VRRP");
    await a1.crash();
    expect(await waitHolder(l, ["n2"], "n2", 3000)).toBeGreaterThanOrEqual(0);
  });
});
