// Host-side helper for VM tests: boots the IPVS test VM (test/vm/run.sh) around one command.
// Every process start inside the TCG guest costs 35-100 ms and JS runs ~6.5x slower, so a test boots
// the VM once and runs a single process inside (bun test on a guest file) rather than many commands.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const repoRoot = join(import.meta.dir, "..", "..");
const runSh = join(import.meta.dir, "run.sh");

export interface VmOptions {
  /** kill the VM after this many seconds (default 600) */
  timeoutS?: number;
  /** host directory shared read-write at the same path (the only place guest writes survive) */
  rw?: string;
  /** environment for the command (only PATH, the cwd and VIGILVM=1 are carried in otherwise) */
  env?: Record<string, string>;
  /** kernel modules not to load (e.g. ["ip_vs_ovf"]: a scheduler the kernel then lacks) */
  skipModules?: string[];
  smp?: number;
  memMb?: number;
  /** working directory inside the guest (default: the repo root, the same path as on the host) */
  cwd?: string;
  /** copy the serial console to this process's stderr as it arrives */
  echo?: boolean;
}

export interface VmResult {
  /** the command's exit status; 124 timeout, 125 the VM died without reporting */
  code: number;
  /** serial console (kernel noise included) plus run.sh's own stderr */
  output: string;
  /** wall time from launch to poweroff */
  ms: number;
}

/**
 * Why the VM cannot run here (null when it can). Tests use it to FAIL with an actionable message
 * instead of skipping: a silently skipped kernel test looks like a passing one.
 */
export function vmUnavailableReason(): string | null {
  const missing: string[] = [];
  const onPath = (bin: string) =>
    (process.env["PATH"] ?? "").split(":").some((d) => d && existsSync(join(d, bin)));
  if (!onPath("qemu-system-x86_64")) missing.push("qemu-system-x86_64 (apt: qemu-system-x86)");
  if (!existsSync("/usr/lib/qemu/virtiofsd")) missing.push("/usr/lib/qemu/virtiofsd (apt: qemu-system-x86)");
  if (!existsSync("/bin/busybox")) missing.push("/bin/busybox (apt: busybox-static)");
  if (!onPath("cpio")) missing.push("cpio");
  const kdir = process.env["VIGIL_VM_KDIR"] ?? "/var/cache/vigil-vm/kernel";
  const mods = join(kdir, "lib", "modules");
  if (!existsSync(mods) || readdirSync(mods).length === 0) missing.push(`the IPVS kernel in ${kdir}`);
  if (missing.length === 0) return null;
  return `IPVS test VM unavailable, missing: ${missing.join(", ")}. Run test/vm/setup.sh (as root) first.`;
}

export async function runInVm(cmd: string[], opts: VmOptions = {}): Promise<VmResult> {
  const args = [runSh, "--timeout", String(opts.timeoutS ?? 600)];
  if (opts.rw) args.push("--rw", opts.rw);
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push("--env", `${k}=${v}`);
  for (const m of opts.skipModules ?? []) args.push("--skipmod", m);
  if (opts.smp) args.push("--smp", String(opts.smp));
  if (opts.memMb) args.push("--mem", String(opts.memMb));
  args.push("--", ...cmd);
  const t0 = performance.now();
  const p = Bun.spawn(["bash", ...args], {
    cwd: opts.cwd ?? repoRoot,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let output = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      const t = dec.decode(chunk, { stream: true });
      output += t;
      if (opts.echo) process.stderr.write(t);
    }
  };
  await Promise.all([pump(p.stdout), pump(p.stderr)]);
  const code = await p.exited;
  return { code, output, ms: Math.round(performance.now() - t0) };
}

export interface GuestResult {
  name: string;
  pass: boolean;
  /** the output between the previous result line and this one (the failure's story) */
  detail: string;
}

/** The `(pass) NAME` / `(fail) NAME` lines of a `bun test` run inside the guest, in order. */
export function parseGuestResults(out: string): GuestResult[] {
  const results: GuestResult[] = [];
  let since: string[] = [];
  for (const line of out.split("\n")) {
    const m = /^\((pass|fail)\) (.*?)(?: \[[\d.]+m?s\])?$/.exec(line);
    if (m) {
      results.push({ name: m[2]!, pass: m[1] === "pass", detail: since.join("\n") });
      since = [];
    } else since.push(line);
  }
  return results;
}
