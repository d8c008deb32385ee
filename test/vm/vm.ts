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

/** A `bun test` guest file run in one VM boot, its tests reported on the host one by one. */
export interface GuestSuite {
  /** what the suite covers, in the failing test's name when the VM cannot boot */
  what: string;
  /** the summary line's tag and the guest's "TAG timings (s): {...}" line, when it prints one */
  tag: string;
  /** the host test that checks the guest run completed */
  completion: string;
  guestFile: string;
  /** how many guest tests a complete run reports */
  expected: number;
  /** per guest test, ms */
  guestTimeoutMs: number;
  /** run in a fresh network namespace "lvsdir" (the director: ipvsadm there sees vigil's table) */
  director?: boolean;
  /**
   * build dist/vigil first and hand it to the guest as VIGIL_BIN: vigil runs compiled, as in
   * production (from source each of its processes would transpile under TCG), and the guest sees this
   * tree's build through the host's / shared read-only
   */
  binary?: boolean;
  vm: VmOptions;
}

/** Boots the VM once for a guest suite and registers the host's tests for it. */
export async function runGuestSuite(s: GuestSuite): Promise<void> {
  const { expect, test } = await import("bun:test");
  const unavailable = vmUnavailableReason();
  if (unavailable) {
    test(`IPVS test VM boots (${s.what})`, () => {
      throw new Error(unavailable);
    });
    return;
  }
  const env: Record<string, string> = { NO_COLOR: "1", FORCE_COLOR: "0", ...s.vm.env };
  if (s.binary) {
    const { buildBinary } = await import("../../scripts/build.ts");
    const { outfile } = await buildBinary({
      entry: "agent/main.ts",
      outfile: join(repoRoot, "dist", "vigil"),
    });
    env["VIGIL_BIN"] = outfile;
  }
  const bunTest = `${process.execPath} test --timeout ${s.guestTimeoutMs} ${s.guestFile}`;
  const cmd = s.director
    ? ["sh", "-c", `ip netns add lvsdir && exec ip netns exec lvsdir ${bunTest}`]
    : bunTest.split(" ");
  const r = await runInVm(cmd, { ...s.vm, env });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips ANSI colour codes
  const out = r.output.replace(/\x1b\[[0-9;]*m/g, "");
  const results = parseGuestResults(out);
  const timings = new RegExp(`${s.tag} timings \\(s\\): (.*)`).exec(out)?.[1];
  console.log(
    `vm: ${s.tag} ${results.filter((x) => x.pass).length}/${results.length} pass, exit ${r.code}, ${r.ms} ms launch to poweroff${timings ? `, steps ${timings}` : ""}`,
  );
  test(s.completion, () => {
    if (r.code !== 0 || results.length !== s.expected) console.log(out);
    expect({ exit: r.code, guestTests: results.length }).toEqual({ exit: 0, guestTests: s.expected });
  });
  for (const g of results) {
    test(`in VM: ${g.name}`, () => {
      if (!g.pass) throw new Error(`failed inside the VM:\n${g.detail}`);
    });
  }
}
