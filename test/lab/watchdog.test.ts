// Acceptance tests of the watchdog process model on a real kernel, with the compiled binary: kill -9
// of each process of the tree, SIGHUP reloads (good and broken), SIGTERM handover. Two vigil nodes,
// VRRPv3 at advert_int 0.2 s so that every election takes well under a second.
//
// Kernel truth about VIP holders comes from test/lab/fixtures/addr-watch.ts, running inside each
// node namespace: it reports every add/del of the VIPs as rtnetlink tells it (plus a 5 ms sampler as
// a cross-check), stamped with CLOCK_MONOTONIC, which this process reads too (monotonicNs). Polling
// `ip addr` through `ip netns exec` costs ~10 ms per look and would miss short overlaps.
import { afterEach, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { monotonicNs } from "../../ffi/libc.ts";
import {
  type AdvertCapture,
  type Agent,
  captureAdvertsOn,
  childPids,
  cleanupDir,
  type LogLine,
  startVigil,
} from "./agents.ts";
import { type InstanceConf, keepalivedConf } from "./confgen.ts";
import { Lab, run, sleep, waitFor } from "./netns.ts";

const VIP = "192.0.2.100";
const VIP2 = "192.0.2.101";
const INTERVAL_MS = 200;
const HIGH = 200;
const LOW = 100;

/** RFC 5798 §6.1, v3 in ms */
const skewTime = (prio: number) => ((256 - prio) * INTERVAL_MS) / 256;
const masterDownInterval = (prio: number) => 3 * INTERVAL_MS + skewTime(prio);
/** the shorter of the two nodes' Master_Down_Interval (the high-priority node's): the strictest bound */
const MDI = Math.min(masterDownInterval(HIGH), masterDownInterval(LOW));

const fixture = join(import.meta.dir, "fixtures", "addr-watch.ts");
const nowMs = (): number => Number(monotonicNs()) / 1e6;

let lab: Lab | null = null;
const agents: Agent[] = [];
const watches: AddrWatch[] = [];
const captures: { stop: () => void }[] = [];

afterEach(async () => {
  for (const c of captures.splice(0)) c.stop();
  for (const w of watches.splice(0)) w.kill();
  for (const a of agents.splice(0)) {
    await a.stop("SIGKILL", 1000);
    cleanupDir(a);
  }
  // kills whatever is left in the namespaces (children of a SIGKILLed watchdog included)
  await lab?.destroy();
  lab = null;
});

// ---- helpers ----------------------------------------------------------------------------------

function twoNodes(tag: string): Lab {
  lab = new Lab(tag);
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  return lab;
}

function vi1(priority: number): InstanceConf {
  return { name: "VI_1", vrid: 51, priority, version: 3, advertInt: INTERVAL_MS / 1000, vips: [`${VIP}/24`] };
}

function vi2(priority: number): InstanceConf {
  return {
    name: "VI_2",
    vrid: 52,
    priority,
    version: 3,
    advertInt: INTERVAL_MS / 1000,
    vips: [`${VIP2}/24`],
  };
}

function vigil(l: Lab, node: string, conf: string): Agent {
  const a = startVigil(l, node, conf);
  agents.push(a);
  return a;
}

/** The config file startVigil wrote for an agent (rewritten before a SIGHUP). */
const confPath = (a: Agent) => join(a.dir, "vigil.conf");

interface WatchEvent {
  ev: "ready" | "add" | "del" | "overrun" | "error";
  src?: "nl" | "sample";
  vip?: string;
  t: number;
  held?: Record<string, boolean>;
  pid?: number;
  message?: string;
}

/** One addr-watch fixture process in a node namespace, and what it reported. */
class AddrWatch {
  readonly events: WatchEvent[] = [];
  readonly stderr: string[] = [];
  private readonly proc: Bun.Subprocess<"pipe", "pipe", "pipe">;

  constructor(
    l: Lab,
    readonly node: string,
    readonly vips: string[],
  ) {
    // stdin stays open: if this test process dies, the fixture sees EOF and exits by itself
    this.proc = Bun.spawn(["ip", "netns", "exec", l.node(node).ns, process.execPath, fixture, ...vips], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    void this.pump(this.proc.stdout, (line) => {
      if (line.startsWith("{")) this.events.push(JSON.parse(line) as WatchEvent);
    });
    void this.pump(this.proc.stderr, (line) => this.stderr.push(line));
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async pump(s: ReadableStream<Uint8Array>, onLine: (l: string) => void): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      for (const p of parts) onLine(p);
    }
  }

  async ready(timeoutMs = 5000): Promise<void> {
    const ok = await waitFor(() => this.events.some((e) => e.ev === "ready"), timeoutMs, 10);
    if (!ok) throw new Error(`addr-watch on ${this.node} not ready: ${this.stderr.join("\n")}`);
  }

  /** Current holding of a VIP according to the netlink notifications. */
  held(vip = VIP): boolean {
    let h = false;
    for (const e of this.events) {
      if (e.ev === "ready" || e.ev === "overrun") h = e.held?.[vip] ?? false;
      else if (e.src === "nl" && e.vip === vip) h = e.ev === "add";
    }
    return h;
  }

  /** Changes of a VIP reported by one source after monotonic time `since`. */
  changes(vip: string, src: "nl" | "sample", since = 0): WatchEvent[] {
    return this.events.filter((e) => e.src === src && e.vip === vip && e.t >= since);
  }

  /** Holding periods [start, end) of a VIP per one source; a period still open ends at `end`. */
  intervals(vip: string, src: "nl" | "sample", end: number): [number, number][] {
    const out: [number, number][] = [];
    let since: number | null = null;
    for (const e of this.events) {
      if (e.ev === "ready" || e.ev === "overrun") {
        const h = e.held?.[vip] ?? false;
        if (h && since === null) since = e.t;
        if (!h && since !== null) {
          out.push([since, e.t]);
          since = null;
        }
      } else if (e.src === src && e.vip === vip) {
        if (e.ev === "add" && since === null) since = e.t;
        if (e.ev === "del" && since !== null) {
          out.push([since, e.t]);
          since = null;
        }
      }
    }
    if (since !== null) out.push([since, end]);
    return out;
  }

  overruns(): number {
    return this.events.filter((e) => e.ev === "overrun" || e.ev === "error").length;
  }

  kill(): void {
    try {
      this.proc.kill("SIGKILL");
    } catch {
      // gone
    }
  }
}

async function addrWatch(l: Lab, node: string, vips: string[] = [VIP]): Promise<AddrWatch> {
  const w = new AddrWatch(l, node, vips);
  watches.push(w);
  await w.ready();
  return w;
}

/** Periods during which both nodes held the VIP at once. */
function overlaps(a: [number, number][], b: [number, number][]): { start: number; ms: number }[] {
  const out: { start: number; ms: number }[] = [];
  for (const [s1, e1] of a) {
    for (const [s2, e2] of b) {
      const s = Math.max(s1, s2);
      const e = Math.min(e1, e2);
      if (e > s) out.push({ start: s, ms: e - s });
    }
  }
  return out;
}

function readProc(pid: number, file: string): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

/** Alive and not a zombie. */
function alive(pid: number): boolean {
  const stat = readProc(pid, "stat");
  if (stat === null) return false;
  const state = stat.charAt(stat.lastIndexOf(")") + 2);
  return state !== "Z" && state !== "X" && state !== "x";
}

function cmdline(pid: number): string[] {
  return (readProc(pid, "cmdline") ?? "").split("\0").filter(Boolean);
}

/** The watchdog's child of a role: its argv reads `... child ROLE ...`. */
function roleChildren(watchdogPid: number, role: "vrrp" | "check"): number[] {
  return childPids(watchdogPid).filter((p) => {
    const argv = cmdline(p);
    const i = argv.indexOf("child");
    return i >= 0 && argv[i + 1] === role && alive(p);
  });
}

/** Processes in a namespace (ip netns pids), without the given ones (the test's fixtures). */
function nsPids(ns: string, except: number[] = []): { pid: number; argv: string }[] {
  return run(["ip", "netns", "pids", ns], { check: false })
    .stdout.split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((p) => !except.includes(p) && alive(p))
    .map((pid) => ({ pid, argv: cmdline(pid).join(" ") }));
}

function parse(line: string | null): LogLine | null {
  if (line === null || !line.startsWith("{")) return null;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return null;
  }
}

/** Transitions logged from line index `from` on (optionally of one instance). */
function transitionsSince(a: Agent, from: number, instance?: string): LogLine[] {
  return a.lines
    .slice(from)
    .map(parse)
    .filter((j): j is LogLine => j?.event === "transition" && (!instance || j.instance === instance));
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const r1 = (x: number) => Math.round(x * 10) / 10;

/** Starts the pair (n1 high, n2 low) and waits until n1 alone holds the VIP. */
/**
 * A virtual server for configs that need the check child (vigil starts it only when there is one).
 * The lab kernel has no IPVS: the check child says so and keeps running its (absent) checks.
 */
const VIRTUAL_SERVER = `
virtual_server 192.0.2.200 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 192.0.2.10 80 {
    weight 1
  }
}
`;

async function electedPair(
  l: Lab,
  watched = [VIP],
  extra = "",
): Promise<{ a1: Agent; a2: Agent; w1: AddrWatch; w2: AddrWatch }> {
  const w1 = await addrWatch(l, "n1", watched);
  const w2 = await addrWatch(l, "n2", watched);
  const a1 = vigil(l, "n1", keepalivedConf({ instances: [vi1(HIGH)] }) + extra);
  const a2 = vigil(l, "n2", keepalivedConf({ instances: [vi1(LOW)] }) + extra);
  const ok = await waitFor(() => w1.held(VIP) && !w2.held(VIP), 8000, 10);
  if (!ok) throw new Error(`no election:\n${a1.output()}\n${a2.output()}`);
  return { a1, a2, w1, w2 };
}

/** captureAdverts, stopped after the test */
function captureAdverts(l: Lab): AdvertCapture {
  const c = captureAdvertsOn(l);
  captures.push(c);
  return c;
}

/** Gaps (ms) between consecutive adverts of one sender and VRID within [fromS, toS] (epoch seconds). */
function advertGaps(
  adverts: { t: number; src: string; vrid: number }[],
  src: string,
  vrid: number,
  fromS: number,
  toS: number,
): number[] {
  const ts = adverts
    .filter((a) => a.src === src && a.vrid === vrid && a.t >= fromS && a.t <= toS)
    .map((a) => a.t);
  const gaps: number[] = [];
  for (let i = 1; i < ts.length; i++) gaps.push((ts[i]! - ts[i - 1]!) * 1000);
  return gaps;
}

// ---- tests ------------------------------------------------------------------------------------

describe("watchdog on a real kernel (dist/vigil)", () => {
  test("kill -9 of the VRRP child on the master, 20 times: respawned, never two VIP holders past Master_Down_Interval, converges", async () => {
    const l = twoNodes("wdk");
    const { a1, a2, w1, w2 } = await electedPair(l);
    const wdPid = a1.pid!;
    const respawnMs: number[] = [];
    const spawnToHello: number[] = [];
    const backoff: number[] = [];
    const convergeMs: number[] = [];

    for (let i = 0; i < 20; i++) {
      const [old] = roleChildren(wdPid, "vrrp");
      expect(old).toBeDefined();
      const from = a1.lines.length;
      const t0 = performance.now();
      process.kill(old!, "SIGKILL");
      const upLine = await a1.waitLine(
        (x) => {
          const j = parse(x);
          return j?.msg === "child up" && j.role === "vrrp" && j["childPid"] !== old;
        },
        8000,
        from,
      );
      respawnMs.push(performance.now() - t0);
      const up = parse(upLine);
      expect(up).not.toBeNull();
      const fresh = Number(up!["childPid"]);
      spawnToHello.push(Number(up!["spawnToHelloMs"]));
      const exited = a1.lines
        .slice(from)
        .map(parse)
        .find((j) => j?.msg === "child exited; restarting" && j.role === "vrrp");
      backoff.push(Number(exited?.["delayMs"]));
      // a new process, the watchdog's child, with its role on its command line
      expect(fresh).not.toBe(old);
      expect(alive(old!)).toBe(false);
      expect(roleChildren(wdPid, "vrrp")).toEqual([fresh]);
      expect(cmdline(fresh)).toContain("vrrp");
      // the group converges: the new child becomes master and n1 alone holds the VIP again
      const converged = await waitFor(
        () =>
          w1.held() &&
          !w2.held() &&
          a1.lines
            .slice(from)
            .map(parse)
            .some((j) => j?.pid === fresh && j.event === "transition" && j.to === "MASTER"),
        8000,
        10,
      );
      if (!converged) throw new Error(`kill ${i + 1}: no convergence\n${a1.output()}\n${a2.output()}`);
      convergeMs.push(performance.now() - t0);
    }
    // the backup saw each loss and each return: 20 promotions, 20 demotions
    expect(a2.transitions("VI_1").filter((t) => t.to === "MASTER").length).toBeGreaterThanOrEqual(20);

    const end = nowMs();
    const nl = overlaps(w1.intervals(VIP, "nl", end), w2.intervals(VIP, "nl", end));
    const sampled = overlaps(w1.intervals(VIP, "sample", end), w2.intervals(VIP, "sample", end));
    // cross-check: the sampler saw every change the notifications reported that lasted beyond a few
    // samples, at most a sampling period (plus scheduling) later
    for (const w of [w1, w2]) {
      expect(w.overruns()).toBe(0);
      for (const s of w.changes(VIP, "sample")) {
        const match = w.changes(VIP, "nl").some((n) => n.ev === s.ev && n.t <= s.t + 100 && s.t - n.t < 100);
        expect(match).toBe(true);
      }
    }
    const maxNl = Math.max(0, ...nl.map((o) => o.ms));
    const maxSampled = Math.max(0, ...sampled.map((o) => o.ms));
    console.log(
      `[watchdog] VRRP child respawn over 20 kill -9: kill->hello median ${r1(median(respawnMs))} ms ` +
        `(min ${r1(Math.min(...respawnMs))}, max ${r1(Math.max(...respawnMs))}); ` +
        `spawn->hello median ${r1(median(spawnToHello))} ms; backoff delays ${backoff.join(",")} ms; ` +
        `kill->converged median ${r1(median(convergeMs))} ms`,
    );
    console.log(
      `[watchdog] two VIP holders: ${nl.length} overlaps (netlink), max ${r1(maxNl)} ms, ` +
        `median ${r1(nl.length ? median(nl.map((o) => o.ms)) : 0)} ms; sampler saw ${sampled.length}, ` +
        `max ${r1(maxSampled)} ms; bound Master_Down_Interval ${r1(MDI)} ms`,
    );
    for (const o of [...nl, ...sampled]) expect(o.ms).toBeLessThan(MDI);
  }, 150_000);

  test("kill -9 of the check child: respawned; VRRP unaffected", async () => {
    const l = twoNodes("obswdc");
    const { a1, a2, w1, w2 } = await electedPair(l, [VIP], VIRTUAL_SERVER);
    await sleep(300);
    const wdPid = a1.pid!;
    const [check] = roleChildren(wdPid, "check");
    const [vrrp] = roleChildren(wdPid, "vrrp");
    expect(check).toBeDefined();
    const from1 = a1.lines.length;
    const from2 = a2.lines.length;
    const t0 = nowMs();
    process.kill(check!, "SIGKILL");
    const up = parse(
      await a1.waitLine(
        (x) => {
          const j = parse(x);
          return j?.msg === "child up" && j.role === "check" && j["childPid"] !== check;
        },
        5000,
        from1,
      ),
    );
    expect(up).not.toBeNull();
    const fresh = Number(up!["childPid"]);
    expect(fresh).not.toBe(check);
    expect(roleChildren(wdPid, "check")).toEqual([fresh]);
    expect(cmdline(fresh)).toContain("check");
    await sleep(3000);
    // VRRP untouched: same child, no transition on either node, the VIP never moved
    expect(roleChildren(wdPid, "vrrp")).toEqual([vrrp!]);
    expect(transitionsSince(a1, from1)).toEqual([]);
    expect(transitionsSince(a2, from2)).toEqual([]);
    expect(w1.changes(VIP, "nl", t0)).toEqual([]);
    expect(w2.changes(VIP, "nl", t0)).toEqual([]);
    expect(w1.held() && !w2.held()).toBe(true);
    // no VIP release either (that is for VRRP child deaths only)
    expect(a1.lines.slice(from1).some((x) => x.includes("VIP released"))).toBe(false);
  });

  test("the check child runs only while the config has virtual servers: SIGHUP starts and stops it", async () => {
    const l = twoNodes("obswdv");
    const { a1, a2, w1, w2 } = await electedPair(l);
    const wdPid = a1.pid!;
    // keepalived starts no checker process without LVS config; neither does vigil
    expect(roleChildren(wdPid, "check")).toEqual([]);
    const [vrrp] = roleChildren(wdPid, "vrrp");
    expect(vrrp).toBeDefined();
    const t0 = nowMs();

    // 1. a virtual server appears: the check child starts and takes the config
    writeFileSync(confPath(a1), keepalivedConf({ instances: [vi1(HIGH)] }) + VIRTUAL_SERVER);
    const from = a1.lines.length;
    a1.signal("SIGHUP");
    const up = parse(
      await a1.waitLine((x) => parse(x)?.msg === "child up" && parse(x)?.role === "check", 8000, from),
    );
    expect(up).not.toBeNull();
    const check = Number(up!["childPid"]);
    expect(roleChildren(wdPid, "check")).toEqual([check]);
    const applied = await a1.waitLine(
      (x) => parse(x)?.msg === "load balancing config applied" && parse(x)?.["virtualServers"] === 1,
      5000,
      from,
    );
    expect(applied).not.toBeNull();

    // 2. the last virtual server goes: the check child gets that config, then is stopped, not respawned
    writeFileSync(confPath(a1), keepalivedConf({ instances: [vi1(HIGH)] }));
    const from2 = a1.lines.length;
    a1.signal("SIGHUP");
    const stopped = await a1.waitLine((x) => parse(x)?.msg === "child stopped (role removed)", 8000, from2);
    expect(stopped).not.toBeNull();
    const seen = a1.lines.slice(from2).map(parse);
    const lastApply = seen.findIndex(
      (j) => j?.msg === "load balancing config applied" && j["virtualServers"] === 0,
    );
    const removed = seen.findIndex((j) => j?.msg === "role removed; stopping its child");
    expect(lastApply).toBeGreaterThanOrEqual(0);
    expect(removed).toBeGreaterThan(lastApply);
    await sleep(1500);
    expect(roleChildren(wdPid, "check")).toEqual([]);
    expect(alive(check)).toBe(false);
    expect(a1.lines.slice(from2).some((x) => parse(x)?.msg === "child exited; restarting")).toBe(false);
    // VRRP untouched throughout
    expect(roleChildren(wdPid, "vrrp")).toEqual([vrrp!]);
    expect(transitionsSince(a1, from)).toEqual([]);
    expect(w1.changes(VIP, "nl", t0)).toEqual([]);
    expect(w2.changes(VIP, "nl", t0)).toEqual([]);
    expect(w1.held(VIP) && !w2.held(VIP)).toBe(true);
    expect(a2.running).toBe(true);
  });

  test("a backup whose VRRP child was stopped past Master_Down handles the adverts that arrived before it takes over", async () => {
    // SIGSTOP freezes the backup's VRRP child (both threads) while the master keeps advertising into its
    // socket; on SIGCONT its Master_Down timer has long expired, and the adverts wait unread. Taking
    // over then would put the VIP on two nodes; the backup must read them first and stay backup.
    const l = twoNodes("obswdstall");
    const { a2, w1, w2 } = await electedPair(l);
    const [vrrp2] = roleChildren(a2.pid!, "vrrp");
    expect(vrrp2).toBeDefined();
    for (let round = 0; round < 5; round++) {
      const t0 = nowMs();
      const from = a2.lines.length;
      process.kill(vrrp2!, "SIGSTOP");
      await sleep(3 * INTERVAL_MS + 600); // past Master_Down_Interval (3 x 200 ms + skew 122 ms)
      process.kill(vrrp2!, "SIGCONT");
      await sleep(3 * INTERVAL_MS);
      expect(transitionsSince(a2, from)).toEqual([]);
      expect(w2.changes(VIP, "nl", t0)).toEqual([]);
      expect(w1.held(VIP) && !w2.held(VIP)).toBe(true);
    }
  });

  test("kill -9 of the watchdog: its children exit within 1 s and nothing of vigil remains", async () => {
    const l = twoNodes("obswdw");
    // with a virtual server, so that both children (vrrp and check) are orphaned
    const { a1, w1, w2 } = await electedPair(l, [VIP], VIRTUAL_SERVER);
    await sleep(300);
    const wdPid = a1.pid!;
    const children = childPids(wdPid);
    expect(children.length).toBe(2);
    const t0 = performance.now();
    process.kill(wdPid, "SIGKILL");
    const gone = await waitFor(() => children.every((p) => !alive(p)), 3000, 5);
    const took = performance.now() - t0;
    console.log(`[watchdog] kill -9 of the watchdog: children gone after ${r1(took)} ms`);
    expect(gone).toBe(true);
    expect(took).toBeLessThan(1000);
    expect(await a1.exited()).not.toBe(0);
    // nothing left in n1's namespace but the test's own fixture
    expect(nsPids(l.node("n1").ns, [w1.pid])).toEqual([]);
    // the orphaned VRRP child shut down gracefully: VIP released, the backup took over
    expect(w1.held()).toBe(false);
    expect(await waitFor(() => w2.held(), 2000, 10)).toBe(true);
  });

  test("SIGHUP: an unchanged instance keeps its state and adverts, an added one comes up; a broken file is refused", async () => {
    const l = twoNodes("wdh");
    const cap = captureAdverts(l);
    const { a1, a2, w1, w2 } = await electedPair(l, [VIP, VIP2]);
    // steady adverts from the master on the wire before the reload
    expect(await waitFor(() => cap.adverts.filter((a) => a.vrid === 51).length >= 5, 3000, 10)).toBe(true);
    await sleep(600);
    const pids1 = childPids(a1.pid!).sort();
    const pids2 = childPids(a2.pid!).sort();

    // 1. valid reload: VI_1 unchanged, VI_2 added, on both nodes
    writeFileSync(confPath(a1), keepalivedConf({ instances: [vi1(HIGH), vi2(HIGH)] }));
    writeFileSync(confPath(a2), keepalivedConf({ instances: [vi1(LOW), vi2(LOW)] }));
    const from1 = a1.lines.length;
    const from2 = a2.lines.length;
    const hupS = Date.now() / 1000;
    const hupMono = nowMs();
    a1.signal("SIGHUP");
    a2.signal("SIGHUP");
    for (const [a, from] of [
      [a1, from1],
      [a2, from2],
    ] as const) {
      const j = parse(await a.waitLine((x) => parse(x)?.msg === "config reloaded", 3000, from));
      expect(j).not.toBeNull();
      expect(j!["kept"]).toEqual(["VI_1"]);
      expect(j!["added"]).toEqual(["VI_2"]);
      expect(j!["changed"]).toEqual([]);
    }
    // the new instance comes up: its VIP on the master, and only there
    expect(await waitFor(() => w1.held(VIP2) && !w2.held(VIP2), 4000, 10)).toBe(true);
    // the VIP reaches the kernel before the transition's log line reaches us
    expect(await waitFor(() => a1.transitions("VI_2").at(-1)?.to === "MASTER", 2000, 10)).toBe(true);
    await sleep(1200);
    const afterS = Date.now() / 1000;
    // the unchanged instance: no transition on either node, its VIP untouched, adverts without a gap
    expect(transitionsSince(a1, from1, "VI_1")).toEqual([]);
    expect(transitionsSince(a2, from2, "VI_1")).toEqual([]);
    expect(w1.changes(VIP, "nl", hupMono)).toEqual([]);
    expect(w2.changes(VIP, "nl", hupMono)).toEqual([]);
    const gaps = advertGaps(cap.adverts, "192.0.2.1", 51, hupS - 1, afterS);
    expect(gaps.length).toBeGreaterThanOrEqual(8);
    // n2 (backup) sends nothing for VI_1
    expect(cap.adverts.some((a) => a.src === "192.0.2.2" && a.vrid === 51 && a.t >= hupS - 1)).toBe(false);
    const maxGap = Math.max(...gaps);
    console.log(
      `[watchdog] SIGHUP: VI_1 advert gaps around the reload: max ${r1(maxGap)} ms over ${gaps.length} gaps ` +
        `(interval ${INTERVAL_MS} ms)`,
    );
    // one interval plus scheduling slack; a missed advert would show as ~2 intervals
    expect(maxGap).toBeLessThan(INTERVAL_MS * 1.5);
    // the added instance's election: never two holders of its VIP past Master_Down_Interval
    const end = nowMs();
    for (const o of overlaps(w1.intervals(VIP2, "nl", end), w2.intervals(VIP2, "nl", end)))
      expect(o.ms).toBeLessThan(MDI);
    // no child was restarted for a reload
    expect(childPids(a1.pid!).sort()).toEqual(pids1);
    expect(childPids(a2.pid!).sort()).toEqual(pids2);

    // 2. broken file: refused, the running config stays
    const good1 = readFileSync(confPath(a1), "utf8");
    writeFileSync(confPath(a1), `${good1}\nvrrp_instance VI_3 {\n  priority nonsense\n`);
    writeFileSync(confPath(a2), "this is not a keepalived.conf {\n");
    const b1 = a1.lines.length;
    const b2 = a2.lines.length;
    const badS = Date.now() / 1000;
    const badMono = nowMs();
    a1.signal("SIGHUP");
    a2.signal("SIGHUP");
    expect(await a1.waitLine((x) => x.includes("reload refused"), 3000, b1)).not.toBeNull();
    expect(await a2.waitLine((x) => x.includes("reload refused"), 3000, b2)).not.toBeNull();
    await sleep(1000);
    const badEndS = Date.now() / 1000;
    expect(a1.running && a2.running).toBe(true);
    expect(childPids(a1.pid!).sort()).toEqual(pids1);
    expect(childPids(a2.pid!).sort()).toEqual(pids2);
    expect(a1.lines.slice(b1).some((x) => parse(x)?.msg === "config reloaded")).toBe(false);
    expect(transitionsSince(a1, b1)).toEqual([]);
    expect(transitionsSince(a2, b2)).toEqual([]);
    for (const v of [VIP, VIP2]) {
      expect(w1.held(v)).toBe(true);
      expect(w2.held(v)).toBe(false);
      expect(w1.changes(v, "nl", badMono)).toEqual([]);
      expect(w2.changes(v, "nl", badMono)).toEqual([]);
    }
    for (const vrid of [51, 52]) {
      const g = advertGaps(cap.adverts, "192.0.2.1", vrid, badS - 0.5, badEndS);
      expect(g.length).toBeGreaterThanOrEqual(5);
      expect(Math.max(...g)).toBeLessThan(INTERVAL_MS * 1.5);
    }
  });

  test("SIGTERM on the master: the backup holds the VIP within Skew_Time + 50 ms; exit 0; nothing remains", async () => {
    const l = twoNodes("wdt");
    const { a1, w1, w2 } = await electedPair(l);
    await sleep(500);
    const t0 = nowMs();
    a1.signal("SIGTERM");
    expect(await waitFor(() => w2.held(), 3000, 5)).toBe(true);
    const add = w2.changes(VIP, "nl", t0).find((e) => e.ev === "add");
    expect(add).toBeDefined();
    const takeover = add!.t - t0;
    const bound = skewTime(LOW) + 50;
    const release = w1.changes(VIP, "nl", t0).find((e) => e.ev === "del");
    console.log(
      `[watchdog] SIGTERM handover: VIP on the backup ${r1(takeover)} ms after the signal ` +
        `(released by the master after ${release ? r1(release.t - t0) : "?"} ms; bound ${r1(bound)} ms)`,
    );
    expect(takeover).toBeLessThan(bound);
    expect(await a1.exited()).toBe(0);
    expect(w1.held()).toBe(false);
    expect(nsPids(l.node("n1").ns, [w1.pid])).toEqual([]);
    // and the VIP was never on both nodes during the handover
    const end = nowMs();
    expect(
      overlaps(w1.intervals(VIP, "nl", end), w2.intervals(VIP, "nl", end)).filter((o) => o.start >= t0),
    ).toEqual([]);
  });
});
