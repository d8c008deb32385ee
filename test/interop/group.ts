// Shared by the interop tier and bench/failover.ts: one table of VRRP variants, one function that writes
// keepalived.conf text for a group member (vigil reads the same syntax, so both agents get the same
// file), and a small Group class that starts, kills and restarts members of a 2+ node group in a Lab
// and answers questions from the kernel (who holds the VIP, how long a takeover took).
import { readdirSync, readFileSync } from "node:fs";
import { type Agent, holders, startKeepalived, startVigil } from "../lab/agents.ts";
import { type Lab, sleep } from "../lab/netns.ts";

export type Impl = "vigil" | "keepalived";

export interface Variant {
  /** short id used in test names and tables */
  id: string;
  version: 2 | 3;
  family: 4 | 6;
  unicast: boolean;
  /** seconds (v2: whole seconds; v3: may be fractional, centisecond resolution) */
  advertInt: number;
  /** v2 `authentication { auth_type PASS auth_pass ... }` */
  authPass?: string;
  vrid: number;
}

/** The interop matrix: every wire flavour keepalived 2.2.7 and vigil must agree on. */
export const VARIANTS: readonly Variant[] = [
  { id: "v2-pass-mcast4", version: 2, family: 4, unicast: false, advertInt: 1, authPass: "s3cr3t", vrid: 51 },
  { id: "v3-mcast4", version: 3, family: 4, unicast: false, advertInt: 0.2, vrid: 52 },
  { id: "v3-ucast4", version: 3, family: 4, unicast: true, advertInt: 0.2, vrid: 53 },
  { id: "v3-mcast6", version: 3, family: 6, unicast: false, advertInt: 0.2, vrid: 54 },
  { id: "v3-ucast6", version: 3, family: 6, unicast: true, advertInt: 0.2, vrid: 55 },
];

export const VIP4 = "192.0.2.100";
export const VIP6 = "2001:db8::100";

export function vipOf(v: Pick<Variant, "family">): string {
  return v.family === 4 ? VIP4 : VIP6;
}

export interface Member {
  /** lab node name */
  node: string;
  impl: Impl;
  priority: number;
  /** node addresses without prefix (192.0.2.0/24 and 2001:db8::/64 documentation ranges) */
  v4: string;
  v6: string;
}

/** Addresses of the n-th node of a group (1-based): 192.0.2.n and 2001:db8::n. */
export function nodeAddrs(n: number): { v4: string; v6: string } {
  return { v4: `192.0.2.${n}`, v6: `2001:db8::${n.toString(16)}` };
}

export interface ConfOptions {
  /** vrrp_instance name (default VI_1) */
  instance?: string;
  /** initial state keyword; default MASTER for the highest priority of the group, else BACKUP */
  state?: "MASTER" | "BACKUP";
  /** extra lines inside global_defs */
  globalExtra?: string[];
  /** extra lines inside vrrp_instance */
  instanceExtra?: string[];
}

/**
 * keepalived.conf text for one member of a group running variant `v`. `group` lists every member
 * (self included); in unicast mode the others become unicast_peer entries.
 */
export function keepalivedConf(
  v: Variant,
  self: Member,
  group: readonly Member[],
  o: ConfOptions = {},
): string {
  const peers = group.filter((m) => m.node !== self.node);
  const top = Math.max(...group.map((m) => m.priority));
  const state = o.state ?? (self.priority === top ? "MASTER" : "BACKUP");
  const addr = (m: Member) => (v.family === 4 ? m.v4 : m.v6);
  const vip = v.family === 4 ? `${VIP4}/24` : `${VIP6}/64`;
  const lines: string[] = [
    "global_defs {",
    `  router_id ${self.node}`,
    `  vrrp_version ${v.version}`,
    ...(o.globalExtra ?? []).map((l) => `  ${l}`),
    "}",
    "",
    `vrrp_instance ${o.instance ?? "VI_1"} {`,
    `  state ${state}`,
    "  interface eth0",
    `  virtual_router_id ${v.vrid}`,
    `  priority ${self.priority}`,
    `  advert_int ${v.advertInt}`,
  ];
  if (v.authPass !== undefined) {
    lines.push("  authentication {", "    auth_type PASS", `    auth_pass ${v.authPass}`, "  }");
  }
  if (v.unicast) {
    lines.push(`  unicast_src_ip ${addr(self)}`, "  unicast_peer {");
    for (const p of peers) lines.push(`    ${addr(p)}`);
    lines.push("  }");
  }
  lines.push("  virtual_ipaddress {", `    ${vip} dev eth0`, "  }");
  lines.push(...(o.instanceExtra ?? []).map((l) => `  ${l}`));
  lines.push("}", "");
  return lines.join("\n");
}

/** Master_Down_Interval of a backup (RFC 5798 / RFC 3768): 3 * interval + skew, in milliseconds. */
export function masterDownMs(v: Pick<Variant, "advertInt">, backupPriority: number): number {
  const skew = ((256 - backupPriority) * v.advertInt) / 256;
  return Math.round((3 * v.advertInt + skew) * 1000);
}

/** Skew_Time of a backup in milliseconds: what a takeover after a priority-0 advert costs. */
export function skewMs(v: Pick<Variant, "advertInt">, backupPriority: number): number {
  return Math.round(((256 - backupPriority) * v.advertInt * 1000) / 256);
}

/** Child processes (recursively) of pid, from /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      // pid (comm) state ppid ...: comm may contain spaces, so split after the last ')'
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      // process exited while listing
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/**
 * SIGKILL an agent and every process it started, all at once: a host crash as far as VRRP can tell.
 * Returns as soon as the signals are sent (timing starts before the call); `a.exited()` follows.
 */
export function crash(a: Agent): void {
  const pid = a.pid;
  if (pid === undefined || !a.running) return;
  // Freeze everything first: keepalived's and vigil's children die with their parent by
  // PR_SET_PDEATHSIG, and a SIGTERM delivered that way would let them send priority-0 adverts (a
  // graceful handover, not a crash). A stopped process cannot run a handler; SIGKILL still ends it.
  const all = [pid, ...descendants(pid)];
  for (const sig of ["SIGSTOP", "SIGKILL"] as const) {
    for (const p of all) {
      try {
        process.kill(p, sig);
      } catch {
        // gone already
      }
    }
  }
}

/** Whether an agent's log says it entered MASTER (vigil JSON transitions or keepalived's text). */
export function enteredMaster(a: Agent, from = 0): boolean {
  return stateEntries(a, from).includes("MASTER");
}

/** States an agent reported entering, in order, from log line index `from`. */
export function stateEntries(a: Agent, from = 0): string[] {
  const out: string[] = [];
  for (let i = from; i < a.lines.length; i++) {
    const line = a.lines[i]!;
    if (a.kind === "vigil") {
      if (!line.startsWith("{")) continue;
      try {
        const j = JSON.parse(line) as { event?: string; to?: string };
        if (j.event === "transition" && typeof j.to === "string") out.push(j.to.toUpperCase());
      } catch {
        // not JSON
      }
    } else {
      const m = /Entering (\w+) STATE/.exec(line);
      if (m?.[1]) out.push(m[1]);
    }
  }
  return out;
}

/** A VRRP group in a lab: one agent per member, all from the same config generator. */
export class Group {
  readonly agents = new Map<string, Agent>();
  readonly members: Member[];
  /** kernel address events of every member, started by addNodes() */
  watch: VipWatch | null = null;

  constructor(
    readonly lab: Lab,
    readonly v: Variant,
    members: Member[],
    readonly opts: (m: Member) => ConfOptions = () => ({}),
  ) {
    this.members = members;
  }

  /** Adds the members' nodes to the lab and starts watching the VIP on them (call once). */
  async addNodes(): Promise<void> {
    for (const m of this.members) {
      this.lab.addNode({ name: m.node, addrs: [`${m.v4}/24`, `${m.v6}/64`] });
    }
    this.watch = await VipWatch.start(this.lab, this.nodes(), this.vip);
  }

  member(node: string): Member {
    const m = this.members.find((x) => x.node === node);
    if (!m) throw new Error(`no member ${node}`);
    return m;
  }

  conf(node: string): string {
    const m = this.member(node);
    return keepalivedConf(this.v, m, this.members, this.opts(m));
  }

  start(node: string): Agent {
    const m = this.member(node);
    const text = this.conf(node);
    const a = m.impl === "vigil" ? startVigil(this.lab, node, text) : startKeepalived(this.lab, node, text);
    this.agents.set(node, a);
    return a;
  }

  startAll(): void {
    for (const m of this.members) this.start(m.node);
  }

  agent(node: string): Agent {
    const a = this.agents.get(node);
    if (!a) throw new Error(`no agent on ${node}`);
    return a;
  }

  get vip(): string {
    return vipOf(this.v);
  }

  nodes(): string[] {
    return this.members.map((m) => m.node);
  }

  holders(nodes = this.nodes()): string[] {
    return holders(this.lab, nodes, this.vip);
  }

  /** Highest-priority member: the one that must be master when everyone is up. */
  top(): Member {
    return [...this.members].sort((a, b) => b.priority - a.priority)[0]!;
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.stop("SIGTERM", 3000)));
    this.watch?.stop();
  }

  /** Log text of every agent, for failure messages. */
  dump(maxLines = 60): string {
    const parts: string[] = [];
    for (const [node, a] of this.agents) {
      parts.push(`--- ${node} (${a.kind}) ---`, ...a.lines.slice(-maxLines));
    }
    return parts.join("\n");
  }
}

/**
 * Polls the kernel until exactly `want` holds the VIP among `nodes` (nobody else); returns the elapsed
 * milliseconds from `since` (a performance.now() value), or null on timeout.
 */
export async function waitSoleHolder(
  g: Group,
  want: string,
  timeoutMs: number,
  since = performance.now(),
  nodes = g.nodes(),
  everyMs = 10,
): Promise<number | null> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    const h = g.holders(nodes);
    if (h.length === 1 && h[0] === want) return performance.now() - since;
    await sleep(everyMs);
  }
  return null;
}

/**
 * Checks for `durationMs` that the VIP is held by exactly `want` among `nodes`, two ways: polling the
 * kernel (`ip addr`, every `everyMs`) and, when the group has a VipWatch, every address event the
 * kernel reported in the window (so a flap shorter than the polling period is caught as well).
 * Returns the offending samples/moments (empty = all good).
 */
export async function sampleSole(
  g: Group,
  want: string,
  durationMs: number,
  nodes = g.nodes(),
  everyMs = 25,
): Promise<{ at: number; holders: string[] }[]> {
  const bad: { at: number; holders: string[] }[] = [];
  const start = performance.now();
  const wallStart = Date.now();
  let samples = 0;
  while (performance.now() - start < durationMs) {
    const h = g.holders(nodes);
    samples++;
    if (h.length !== 1 || h[0] !== want) bad.push({ at: Math.round(performance.now() - start), holders: h });
    await sleep(everyMs);
  }
  if (g.watch) {
    // events are timestamped by `ip monitor` when the kernel announced them; give the last ones time to
    // arrive before judging the window
    await sleep(30);
    for (const v of g.watch.violations(wallStart, wallStart + durationMs, want, nodes)) {
      bad.push({ at: v.at - wallStart, holders: v.holders });
    }
  } else if (samples < durationMs / (everyMs * 4)) {
    throw new Error(`only ${samples} kernel samples in ${durationMs} ms`);
  }
  return bad.sort((x, y) => x.at - y.at);
}

/**
 * Follows a VIP on a set of lab nodes through the kernel's own address notifications (`ip -ts monitor
 * address` in each namespace): a complete, timestamped history of who held the VIP, without polling.
 */
export class VipWatch {
  /** epoch ms (from ip's timestamp), node, whether the VIP is now present on its eth0 */
  readonly events: { t: number; node: string; present: boolean }[] = [];
  private readonly initial = new Map<string, boolean>();
  private readonly procs: Bun.Subprocess<"ignore", "pipe" | "ignore", "pipe">[] = [];

  private constructor(
    readonly lab: Lab,
    readonly nodes: string[],
    readonly vip: string,
  ) {}

  static async start(lab: Lab, nodes: string[], vip: string): Promise<VipWatch> {
    const w = new VipWatch(lab, nodes, vip);
    const probe = "198.51.100.254";
    const seen = new Set<string>();
    for (const node of nodes) {
      // real-time priority: ip stamps each event when it reads it, so a starved monitor would report
      // an address change late (the measuring instrument must not queue behind the agents it measures)
      const rt = Bun.which("chrt") ? ["chrt", "-f", "50"] : [];
      const p = lab.spawn(node, [...rt, "ip", "-ts", "-o", "monitor", "address"]);
      w.procs.push(p);
      void w.pump(node, p.stdout as ReadableStream<Uint8Array>, (line) => {
        if (line.includes(` ${probe}/32 `) && line.includes("Deleted")) seen.add(node);
      });
    }
    // the monitors are subscribed once they report a probe address added to and removed from lo
    const end = Date.now() + 5000;
    while (seen.size < nodes.length && Date.now() < end) {
      for (const node of nodes) {
        if (seen.has(node)) continue;
        const ns = lab.node(node).ns;
        lab.exec(ns, ["ip", "addr", "add", `${probe}/32`, "dev", "lo"], { check: false });
        lab.exec(ns, ["ip", "addr", "del", `${probe}/32`, "dev", "lo"], { check: false });
      }
      await sleep(50);
    }
    if (seen.size < nodes.length) throw new Error("ip monitor did not start");
    for (const node of nodes) w.initial.set(node, lab.hasAddress(node, vip));
    return w;
  }

  private async pump(
    node: string,
    s: ReadableStream<Uint8Array>,
    also: (line: string) => void,
  ): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    const vipRe = new RegExp(` inet6? ${this.vip.replace(/[.:]/g, "\\$&")}/\\d+ `);
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        also(line);
        const m = /^\[([^\]]+)\] (Deleted )?\d+: (\S+)/.exec(line);
        if (m?.[1] && m[3] === "eth0" && vipRe.test(line)) {
          // ip prints local time without a zone; Date parses that form as local time too
          this.events.push({ t: new Date(m[1].slice(0, 23)).getTime(), node, present: !m[2] });
        }
        i = buf.indexOf("\n");
      }
    }
  }

  /** Holders among `nodes` at epoch ms `t`. */
  holdersAt(t: number, nodes = this.nodes): string[] {
    const state = new Map(this.initial);
    for (const e of this.events) if (e.t <= t) state.set(e.node, e.present);
    return nodes.filter((n) => state.get(n));
  }

  /** Moments in [from, to] (epoch ms) at which the holders among `nodes` were not exactly [want]. */
  violations(
    from: number,
    to: number,
    want: string,
    nodes = this.nodes,
  ): { at: number; holders: string[] }[] {
    const out: { at: number; holders: string[] }[] = [];
    const check = (t: number) => {
      const h = this.holdersAt(t, nodes);
      if (h.length !== 1 || h[0] !== want) out.push({ at: t, holders: h });
    };
    check(from);
    for (const e of this.events) if (e.t > from && e.t <= to && nodes.includes(e.node)) check(e.t);
    return out;
  }

  /** First epoch ms >= since at which `node` gained the VIP, if it did. */
  gained(node: string, since: number): number | null {
    return this.events.find((e) => e.node === node && e.present && e.t >= since)?.t ?? null;
  }

  stop(): void {
    for (const p of this.procs) p.kill("SIGKILL");
  }
}
