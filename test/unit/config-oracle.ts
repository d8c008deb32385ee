// keepalived 2.2.7 as an oracle for config tests: `keepalived --config-test -f FILE` inside a network
// namespace that has exactly the interfaces the tests' fake machine has, so both tools see the same
// world. keepalived prints its findings on stderr as `(FILE: Line N) message` (or `(Line N) ...`
// on its first pass, or without a location for checks done after reading); its exit status is
// non-zero when it reported anything (6: only script security).
//
// Namespace names start with `vc<pid>` and are removed on destroy(), at exit and on signals; ones
// left by a dead test process are swept on start.
import { existsSync } from "node:fs";

export const KEEPALIVED = "/usr/sbin/keepalived";

/** Interfaces of the fake machine (veth pairs in the namespace; `lo` is the loopback). */
export const IFACES = [
  "eth0",
  "eth1",
  "eth2",
  "eth3",
  "eth0.1",
  "eth4",
  "bond0",
  "eth5",
  "bond0.999",
  "bond0.101",
];
const PAIRS: [string, string][] = [
  ["eth0", "eth1"],
  ["eth2", "eth3"],
  ["eth0.1", "eth4"],
  ["bond0", "eth5"],
  ["bond0.999", "bond0.101"],
];

/** The same machine for vigil's checks. */
export const FAKE_ENV = {
  interfaceExists: (n: string) => n === "lo" || IFACES.includes(n),
  isLoopback: (n: string) => n === "lo",
};

export interface KaMessage {
  file?: string;
  line?: number;
  message: string;
}

export interface KaResult {
  code: number;
  messages: KaMessage[];
  output: string;
}

function sh(cmd: string[]): { code: number; out: string } {
  const p = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode ?? -1, out: p.stdout.toString() + p.stderr.toString() };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Parses keepalived's config-test output into located messages. */
export function parseKeepalivedOutput(output: string): KaMessage[] {
  const out: KaMessage[] = [];
  for (const raw of output.split("\n")) {
    const line = raw.trimEnd();
    if (line === "") continue;
    const m = /^\((?:(.+): )?Line (\d+)\) (.*)$/.exec(line);
    if (m) out.push({ file: m[1], line: Number(m[2]), message: m[3]! });
    else out.push({ message: line });
  }
  return out;
}

let counter = 0;
const live = new Set<KeepalivedOracle>();
let hooks = false;

export class KeepalivedOracle {
  readonly ns: string;
  private gone = false;

  /** keepalived runs only as root with network namespaces; tests skip the comparison otherwise. */
  static available(): boolean {
    if (process.getuid?.() !== 0 || !existsSync(KEEPALIVED)) return false;
    return sh(["ip", "netns", "list"]).code === 0;
  }

  constructor() {
    if (!hooks) {
      hooks = true;
      process.on("exit", () => {
        for (const o of live) o.destroy();
      });
      for (const sig of ["SIGINT", "SIGTERM"] as const) {
        process.on(sig, () => {
          for (const o of live) o.destroy();
          process.exit(130);
        });
      }
    }
    KeepalivedOracle.sweep();
    counter++;
    this.ns = `vc${process.pid}o${counter}`;
    const add = sh(["ip", "netns", "add", this.ns]);
    if (add.code !== 0) throw new Error(`ip netns add ${this.ns}: ${add.out}`);
    live.add(this);
    try {
      for (const [a, b] of PAIRS)
        this.must(["ip", "-n", this.ns, "link", "add", a, "type", "veth", "peer", "name", b]);
      for (const i of [...IFACES, "lo"]) this.must(["ip", "-n", this.ns, "link", "set", i, "up"]);
      this.must(["ip", "-n", this.ns, "addr", "add", "192.0.2.1/24", "dev", "eth0"]);
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private must(cmd: string[]): void {
    const r = sh(cmd);
    if (r.code !== 0) throw new Error(`${cmd.join(" ")}: ${r.out}`);
  }

  /** Namespaces of this helper whose test process is gone. */
  static sweep(): void {
    for (const l of sh(["ip", "netns", "list"]).out.split("\n")) {
      const name = l.split(" ")[0] ?? "";
      const m = /^vc(\d+)o\d+$/.exec(name);
      if (m && !pidAlive(Number(m[1]))) sh(["ip", "netns", "del", name]);
    }
  }

  check(path: string): KaResult {
    const p = Bun.spawnSync(["ip", "netns", "exec", this.ns, KEEPALIVED, "--config-test", "-f", path], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const output = p.stdout.toString() + p.stderr.toString();
    return { code: p.exitCode ?? -1, messages: parseKeepalivedOutput(output), output };
  }

  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    live.delete(this);
    sh(["ip", "netns", "del", this.ns]);
  }
}
