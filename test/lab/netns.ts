// Network-namespace lab harness: a "switch" namespace holding a bridge, and one namespace per node
// connected to it by a veth pair (eth0 in the node, a port on the bridge). Names are unique per run
// (pid + counter) and everything is removed on destroy(), on process exit and on SIGINT/SIGTERM,
// so a failing test never leaves namespaces behind.

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface NodeSpec {
  /** short name used by the test ("a", "kad", "client") */
  name: string;
  /** addresses with prefix, e.g. "192.0.2.1/24", "2001:db8::1/64" */
  addrs?: string[];
}

export interface LabNode {
  name: string;
  ns: string;
  /** bridge port in the switch namespace that carries this node's traffic */
  port: string;
  addrs: string[];
}

const live = new Set<Lab>();
let counter = 0;
let hooksInstalled = false;

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanAll = () => {
    for (const lab of live) lab.destroySync();
  };
  process.on("exit", cleanAll);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      cleanAll();
      process.exit(130);
    });
  }
}

export function run(cmd: string[], opts: { check?: boolean; input?: string } = {}): ExecResult {
  const p = Bun.spawnSync(cmd, {
    stdout: "pipe",
    stderr: "pipe",
    stdin: opts.input === undefined ? "ignore" : Buffer.from(opts.input),
  });
  const res = { code: p.exitCode ?? -1, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  if (opts.check !== false && res.code !== 0) {
    throw new Error(`command failed (${res.code}): ${cmd.join(" ")}\n${res.stderr}`);
  }
  return res;
}

/** Removes namespaces left by earlier runs of this harness whose owning process is gone. */
export function sweepStale(): void {
  const list = run(["ip", "netns", "list"], { check: false }).stdout;
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const m = /^vt(\d+)x/.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      alive = false;
    }
    if (!alive) killAndDelete(name);
  }
}

function killAndDelete(ns: string): void {
  const pids = run(["ip", "netns", "pids", ns], { check: false }).stdout.split("\n").filter(Boolean);
  for (const pid of pids) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  run(["ip", "netns", "del", ns], { check: false });
}

export class Lab {
  readonly id: string;
  readonly switchNs: string;
  readonly nodes = new Map<string, LabNode>();
  private destroyed = false;

  /** tag: a few lowercase letters naming the test file, so leftover names tell where they came from */
  constructor(tag: string) {
    installHooks();
    counter += 1;
    this.id = `vt${process.pid}x${counter}${tag.replace(/[^a-z0-9]/g, "").slice(0, 8)}`;
    this.switchNs = `${this.id}-sw`;
    run(["ip", "netns", "add", this.switchNs]);
    live.add(this);
    this.exec(this.switchNs, ["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0"]);
    // multicast snooping would make the bridge drop VRRP multicast until a querier exists
    this.exec(this.switchNs, ["ip", "link", "set", "br0", "type", "bridge", "mcast_snooping", "0"]);
    this.exec(this.switchNs, ["ip", "link", "set", "br0", "up"]);
    this.exec(this.switchNs, ["ip", "link", "set", "lo", "up"]);
  }

  addNode(spec: NodeSpec): LabNode {
    const ns = `${this.id}-${spec.name}`;
    const port = `p${this.nodes.size}`;
    run(["ip", "netns", "add", ns]);
    this.exec(ns, ["sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0"]);
    this.exec(ns, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"]);
    run([
      "ip",
      "link",
      "add",
      "eth0",
      "netns",
      ns,
      "type",
      "veth",
      "peer",
      "name",
      port,
      "netns",
      this.switchNs,
    ]);
    this.exec(this.switchNs, ["ip", "link", "set", port, "master", "br0", "up"]);
    this.exec(ns, ["ip", "link", "set", "lo", "up"]);
    this.exec(ns, ["ip", "link", "set", "eth0", "up"]);
    const addrs = spec.addrs ?? [];
    for (const a of addrs) this.exec(ns, ["ip", "addr", "add", a, "dev", "eth0", "nodad"]);
    const node: LabNode = { name: spec.name, ns, port, addrs };
    this.nodes.set(spec.name, node);
    return node;
  }

  node(name: string): LabNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name} in lab ${this.id}`);
    return n;
  }

  exec(ns: string, cmd: string[], opts: { check?: boolean; input?: string } = {}): ExecResult {
    return run(["ip", "netns", "exec", ns, ...cmd], opts);
  }

  /** Cut (or restore) a node's link on the bridge side: the node still sees its own eth0 up. */
  setPort(name: string, up: boolean): void {
    this.exec(this.switchNs, ["ip", "link", "set", this.node(name).port, up ? "up" : "down"]);
  }

  /** Addresses (without prefix) present on a node's eth0, from the kernel. */
  addresses(name: string, dev = "eth0"): string[] {
    const out = this.exec(this.node(name).ns, ["ip", "-j", "addr", "show", "dev", dev], { check: false });
    if (out.code !== 0) return [];
    const parsed = JSON.parse(out.stdout) as { addr_info?: { local: string }[] }[];
    return parsed.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
  }

  hasAddress(name: string, addr: string, dev = "eth0"): boolean {
    return this.addresses(name, dev).includes(addr);
  }

  /** Spawns a long-running process inside a node namespace. */
  spawn(
    name: string,
    cmd: string[],
    opts: { stdout?: "pipe" | "ignore"; env?: Record<string, string> } = {},
  ): Bun.Subprocess<"ignore", "pipe" | "ignore", "pipe"> {
    const ns = this.nodes.get(name)?.ns ?? name;
    return Bun.spawn(["ip", "netns", "exec", ns, ...cmd], {
      stdin: "ignore",
      stdout: opts.stdout ?? "pipe",
      stderr: "pipe",
      env: { ...process.env, ...(opts.env ?? {}) },
    });
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const n of this.nodes.values()) killAndDelete(n.ns);
    killAndDelete(this.switchNs);
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls cond every `every` ms until it is true or `timeoutMs` passes; returns whether it became true. */
export async function waitFor(cond: () => boolean, timeoutMs: number, every = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(every);
  }
  return cond();
}
