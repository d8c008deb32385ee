// Starting real agents inside lab namespaces: vigil (the compiled binary, or from source when
// VIGIL_FROM_SOURCE=1) and keepalived 2.2.7, with helpers to follow their state from the logs and
// the kernel. Used by the lab, interop and bench tiers alike.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Lab, sleep } from "./netns.ts";

const root = join(import.meta.dir, "..", "..");

/** Command prefix that runs vigil: dist/vigil if built, else bun on the sources. */
export function vigilCommand(): string[] {
  const bin = join(root, "dist", "vigil");
  if (process.env["VIGIL_FROM_SOURCE"] !== "1" && existsSync(bin)) return [bin];
  return [process.execPath, join(root, "agent", "main.ts")];
}

export interface LogLine {
  level?: string;
  msg?: string;
  event?: string;
  instance?: string;
  from?: string;
  to?: string;
  reason?: string;
  [k: string]: unknown;
}

/** A process in a namespace whose stdout/stderr are collected line by line. */
export class Agent {
  readonly lines: string[] = [];
  readonly json: LogLine[] = [];
  private proc: Bun.Subprocess<"ignore", "pipe", "pipe"> | null = null;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly lab: Lab,
    readonly node: string,
    readonly kind: "vigil" | "keepalived",
    readonly dir: string,
    private readonly cmd: string[],
    private readonly env: Record<string, string> = {},
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): this {
    const ns = this.lab.node(this.node).ns;
    const p = Bun.spawn(["ip", "netns", "exec", ns, ...this.cmd], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...this.env },
    });
    this.proc = p;
    void this.pump(p.stdout);
    void this.pump(p.stderr);
    return this;
  }

  private async pump(s: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of s) {
      buf += dec.decode(chunk, { stream: true });
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.lines.push(line);
        if (process.env["VIGIL_TEST_VERBOSE"]) console.log(`[${this.node}] ${line}`);
        if (line.startsWith("{")) {
          try {
            this.json.push(JSON.parse(line) as LogLine);
          } catch {
            // not a JSON log line
          }
        }
        for (const w of this.waiters) w();
        i = buf.indexOf("\n");
      }
    }
  }

  /** Waits until a log line matches; returns it or null on timeout. */
  async waitLine(pred: (line: string) => boolean, timeoutMs: number, fromIndex = 0): Promise<string | null> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      for (let i = fromIndex; i < this.lines.length; i++) {
        const l = this.lines[i]!;
        if (pred(l)) return l;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.max(1, end - Date.now()));
        const w = () => done();
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.waiters.add(w);
        setTimeout(() => this.waiters.delete(w), Math.max(1, end - Date.now()) + 5);
      });
    }
    return null;
  }

  /** Transitions vigil logged (event "transition"), in order. */
  transitions(instance?: string): LogLine[] {
    return this.json.filter((j) => j.event === "transition" && (!instance || j.instance === instance));
  }

  signal(sig: NodeJS.Signals | number): void {
    if (this.proc && this.running) this.proc.kill(sig);
  }

  async stop(sig: NodeJS.Signals | number = "SIGTERM", timeoutMs = 5000): Promise<number | null> {
    if (!this.proc) return null;
    const p = this.proc;
    if (this.running) p.kill(sig);
    const t = setTimeout(() => {
      try {
        p.kill("SIGKILL");
      } catch {
        // gone
      }
    }, timeoutMs);
    const code = await p.exited;
    clearTimeout(t);
    return code;
  }

  /**
   * Simulates the host's agent dying at once: every process of this agent (the watchdog and its
   * children) gets SIGKILL, so nothing runs a graceful shutdown. The watchdog is frozen first so it
   * cannot respawn a child, and children die before it so their parent-death signal never fires.
   */
  async crash(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined || !this.running) return;
    process.kill(pid, "SIGSTOP");
    for (const child of childPids(pid)) {
      try {
        process.kill(child, "SIGKILL");
      } catch {
        // already gone
      }
    }
    process.kill(pid, "SIGKILL");
    await this.proc?.exited;
  }

  async exited(): Promise<number> {
    return this.proc ? await this.proc.exited : -1;
  }

  output(): string {
    return this.lines.join("\n");
  }
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `vigil-${prefix}-`));
}

/** Starts vigil in a node's namespace with the given config text. */
export function startVigil(
  lab: Lab,
  node: string,
  config: string,
  opts: { ext?: string; args?: string[]; env?: Record<string, string> } = {},
): Agent {
  const dir = tempDir(`${lab.id}-${node}`);
  const conf = join(dir, `vigil${opts.ext ?? ".conf"}`);
  writeFileSync(conf, config);
  const state = join(dir, "state");
  mkdirSync(state, { recursive: true });
  const a = new Agent(
    lab,
    node,
    "vigil",
    dir,
    [...vigilCommand(), "run", "-f", conf, "--state-dir", state, ...(opts.args ?? [])],
    opts.env,
  );
  return a.start();
}

/** Starts keepalived 2.2.7 (VRRP only) in a node's namespace, foreground, logging to the console. */
export function startKeepalived(lab: Lab, node: string, config: string): Agent {
  const dir = tempDir(`${lab.id}-${node}-ka`);
  const conf = join(dir, "keepalived.conf");
  writeFileSync(conf, config);
  const pid = (n: string) => join(dir, `${n}.pid`);
  const a = new Agent(lab, node, "keepalived", dir, [
    "keepalived",
    "-f",
    conf,
    "-n", // foreground
    "-l", // log to console
    "-D", // detailed log
    "-P", // VRRP only
    "-p",
    pid("main"),
    "-r",
    pid("vrrp"),
    "-c",
    pid("checkers"),
    "-i",
    `${lab.id}-${node}`,
  ]);
  return a.start();
}

export function cleanupDir(a: Agent): void {
  rmSync(a.dir, { recursive: true, force: true });
}

/** Which nodes hold `vip` on eth0 right now, from the kernel. */
export function holders(lab: Lab, nodes: string[], vip: string): string[] {
  return nodes.filter((n) => lab.hasAddress(n, vip));
}

/**
 * Samples VIP holders every `everyMs` for `durationMs`; returns the samples where the number of
 * holders was not exactly one (each sample: time offset and holders).
 */
export async function sampleHolders(
  lab: Lab,
  nodes: string[],
  vip: string,
  durationMs: number,
  everyMs = 50,
): Promise<{ at: number; holders: string[] }[]> {
  const bad: { at: number; holders: string[] }[] = [];
  const start = Date.now();
  while (Date.now() - start < durationMs) {
    const h = holders(lab, nodes, vip);
    if (h.length !== 1) bad.push({ at: Date.now() - start, holders: h });
    await sleep(everyMs);
  }
  return bad;
}

export function writeFile(path: string, text: string): void {
  writeFileSync(path, text);
}

/** Direct children of a process, from /proc. */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // the command name may contain spaces: fields after the last ')' are fixed
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === pid) out.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

export interface AdvertCapture {
  adverts: { t: number; src: string; vrid: number; prio: number }[];
  stop: () => void;
}

/** tcpdump on the lab's bridge: VRRPv3 IPv4 adverts with their kernel receive time (epoch seconds). */
export function captureAdvertsOn(l: Lab): AdvertCapture {
  const p = Bun.spawn(
    ["ip", "netns", "exec", l.switchNs, "tcpdump", "-i", "br0", "-nn", "-l", "-tt", "ip", "proto", "112"],
    { stdin: "ignore", stdout: "pipe", stderr: "ignore" },
  );
  const adverts: AdvertCapture["adverts"] = [];
  const re = /^(\d+\.\d+) IP (\S+) > \S+: VRRPv3, Advertisement, vrid (\d+), prio (\d+)/;
  void (async () => {
    const dec = new TextDecoder();
    let buf = "";
    for await (const c of p.stdout) {
      buf += dec.decode(c, { stream: true });
      const parts = buf.split("\n");
      buf = parts.pop() ?? "";
      for (const line of parts) {
        const m = re.exec(line);
        if (m) adverts.push({ t: Number(m[1]), src: m[2]!, vrid: Number(m[3]), prio: Number(m[4]) });
      }
    }
  })();
  return { adverts, stop: () => p.kill("SIGKILL") };
}
