#!/usr/bin/env bun
// Failover benchmark: a vigil pair and a keepalived 2.2.7 pair on the same namespace topology, in one run.
//
//   bun bench/failover.ts [--reps N] [--impl vigil|keepalived|both] [--modes v2,v3] [--pcap]
//
// --pcap keeps a capture of ARP and VRRP on the client's and both nodes' bridge ports (path on stderr).
//
// Topology (per implementation and mode): nodes a (priority 150, master) and b (100, backup) on a bridge,
// a client c probing the VIP 192.0.2.100 with a UDP datagram every millisecond (test/lab/fixtures/udp-probe.ts; the
// echo server runs on a and b). Faults, each repeated N times:
//   - link cut: a's bridge port goes down right after an advert from a crossed the wire (a is isolated;
//     b must notice the missing adverts: the full Master_Down_Interval, every repetition);
//   - graceful stop: SIGTERM to the agent on a (priority-0 advert, b takes over after Skew_Time).
// Measured per fault:
//   - VIP move: from the fault to the VIP present on b, from the kernel's own address notification
//     (`ip -ts monitor address` in b's namespace);
//   - outage: the longest gap between two echo replies seen by the client across the fault.
// Prints a markdown table (medians, vigil/keepalived ratios, the bound 3*advert_int + skew + 20 ms).
import { cpus, release } from "node:os";
import { join } from "node:path";
import {
  Group,
  masterDownMs,
  nodeAddrs,
  skewMs,
  type Variant,
  waitSoleHolder,
} from "../test/interop/group.ts";
import { type Capture, startCapture } from "../test/interop/inject.ts";
import { type Agent, cleanupDir, vigilCommand } from "../test/lab/agents.ts";
import { isRoot, Lab, run, sleep, sweepStale } from "../test/lab/netns.ts";

type Impl = "vigil" | "keepalived";
type Fault = "link cut" | "SIGTERM";

const PORT = 9999;
const PROBE = join(import.meta.dir, "..", "test", "lab", "fixtures", "udp-probe.ts");
const CLIENT = "192.0.2.10";

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : def;
}

const REPS = Number(arg("--reps", "5"));
const IMPLS: Impl[] =
  arg("--impl", "both") === "both" ? ["vigil", "keepalived"] : [arg("--impl", "vigil") as Impl];
const ALL_MODES: { key: string; label: string; v: Variant }[] = [
  {
    key: "v2",
    label: "v2, advert_int 1",
    v: { id: "v2", version: 2, family: 4, unicast: false, advertInt: 1, authPass: "s3cr3t", vrid: 51 },
  },
  {
    key: "v3",
    label: "v3, advert_int 0.1",
    v: { id: "v3", version: 3, family: 4, unicast: false, advertInt: 0.1, vrid: 52 },
  },
];
const MODES = ALL_MODES.filter((m) => arg("--modes", "v2,v3").split(",").includes(m.key));
const FAULTS: Fault[] = ["link cut", "SIGTERM"];
const PCAP = process.argv.includes("--pcap");

function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

interface Gap {
  gap: number;
  from: number;
  to: number;
}

/** The probe client in namespace c: collects reply gaps and heartbeat counts from its stdout. */
class Prober {
  readonly gaps: Gap[] = [];
  received = 0;
  /** the last heartbeat line, for diagnostics */
  beat = "";
  private proc: Bun.Subprocess<"ignore", "pipe" | "ignore", "pipe"> | null = null;

  constructor(readonly lab: Lab) {}

  start(): void {
    const p = this.lab.spawn("c", [process.execPath, PROBE, "client", "192.0.2.100", `${PORT}`]);
    this.proc = p;
    this.received = 0;
    drain("probe client", p.stderr);
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of p.stdout as ReadableStream<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let i = buf.indexOf("\n");
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          let j: Partial<Gap> & { rx?: number };
          try {
            j = JSON.parse(line);
          } catch {
            helperErrors.push(`probe client stdout: ${line}`);
            continue;
          }
          if (typeof j.gap === "number") this.gaps.push(j as Gap);
          if (typeof j.rx === "number") {
            this.received = j.rx;
            this.beat = line;
          }
          i = buf.indexOf("\n");
        }
      }
    })();
  }

  /**
   * Waits until replies have flowed for `quietMs` with no gap over 30 ms (scheduling hiccups on a
   * loaded 2-core box make shorter ones) and the heartbeat counting up.
   */
  async waitFlowing(quietMs: number, timeoutMs: number): Promise<boolean> {
    const end = nowMs() + timeoutMs;
    const big = () => this.gaps.filter((g) => g.gap > 30).length;
    while (nowMs() < end) {
      const gaps = big();
      const rx = this.received;
      await sleep(quietMs);
      // at one probe per millisecond, at least half the window must have been answered
      if (big() === gaps && this.received - rx >= quietMs / 2) return true;
    }
    return false;
  }

  describe(): string {
    const errs = helperErrors.slice(-5).join(" / ");
    return `last heartbeat ${this.beat}; last gaps ${JSON.stringify(this.gaps.slice(-3))}; helper stderr: ${errs || "none"}`;
  }

  /**
   * Longest gap between replies that overlaps [t0, now], once replies have flowed again for 200 ms
   * after `settled` (the moment the new master holds the VIP): a gap is reported only when it ends, so
   * this waits for every gap that spans the handover to close. 0 when no gap over 5 ms was seen.
   */
  async outage(t0: number, settled: number, timeoutMs: number): Promise<number | null> {
    const wait = Math.max(0, settled - nowMs());
    if (wait) await sleep(wait);
    if (!(await this.waitFlowing(200, timeoutMs))) return null;
    const hits = this.gaps.filter((g) => g.to > t0);
    return hits.length ? Math.max(...hits.map((g) => g.gap)) : 0;
  }

  stop(): void {
    this.proc?.kill("SIGTERM");
  }
}

/**
 * Live tcpdump on a's bridge port: resolves when the next advert from a crosses the wire, so a link cut
 * can be aligned to the advert phase (cut right after an advert = the full Master_Down_Interval to wait,
 * every time, instead of a random fraction of one interval less).
 */
class AdvertTap {
  private waiters: ((t: number) => void)[] = [];
  private proc: Bun.Subprocess<"ignore", "pipe", "pipe"> | null = null;

  async start(lab: Lab, src: string): Promise<void> {
    const port = lab.node("a").port;
    const p = Bun.spawn(
      [
        "ip",
        "netns",
        "exec",
        lab.switchNs,
        "tcpdump",
        "-i",
        port,
        "-l",
        "-n",
        "-tt",
        "--immediate-mode",
      ].concat([`ip proto 112 and src host ${src}`]),
      { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
    );
    this.proc = p;
    void (async () => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of p.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let i = buf.indexOf("\n");
        while (i >= 0) {
          const t = Number(buf.slice(0, buf.indexOf(" "))) * 1000;
          buf = buf.slice(i + 1);
          for (const w of this.waiters.splice(0)) w(t);
          i = buf.indexOf("\n");
        }
      }
    })();
    // tcpdump reports "listening on" on stderr once the capture is open
    const reader = p.stderr.getReader();
    let err = "";
    const end = nowMs() + 5000;
    while (!err.includes("listening on") && nowMs() < end) {
      const r = await reader.read();
      if (r.done) break;
      err += new TextDecoder().decode(r.value);
    }
    void (async () => {
      for (;;) if ((await reader.read()).done) break;
    })();
  }

  /** Epoch ms (tcpdump's timestamp) of the next advert seen. */
  next(timeoutMs: number): Promise<number | null> {
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), timeoutMs);
      this.waiters.push((at) => {
        clearTimeout(t);
        resolve(at);
      });
    });
  }

  stop(): void {
    this.proc?.kill("SIGKILL");
  }
}

/** Last stderr lines of the helper processes (probe client and echo servers), for diagnostics. */
const helperErrors: string[] = [];

/** Reads a helper's stderr so it can never fill the pipe and block the helper. */
function drain(who: string, s: ReadableStream<Uint8Array> | undefined): void {
  if (!s) return;
  void (async () => {
    const dec = new TextDecoder();
    for await (const chunk of s) {
      for (const l of dec.decode(chunk).split("\n").filter(Boolean)) {
        helperErrors.push(`${who}: ${l}`);
        if (helperErrors.length > 50) helperErrors.shift();
      }
    }
  })();
}

/** One second of probe traffic on the client's and a's bridge ports, summarised by tshark. */
async function snapshot(lab: Lab): Promise<string> {
  const caps = await Promise.all(
    ["c", "a", "b"].map((n) =>
      startCapture(lab, lab.switchNs, lab.node(n).port, "udp port 9999 or arp or icmp"),
    ),
  );
  await sleep(1000);
  const parts: string[] = [];
  for (const [i, c] of caps.entries()) {
    const file = await c.stop();
    const p = run(
      ["tshark", "-r", file, "-n", "-T", "fields", "-e", "eth.src", "-e", "eth.dst", "-e", "_ws.col.Info"],
      {
        check: false,
      },
    );
    const counts = new Map<string, number>();
    for (const l of p.stdout.split("\n").filter(Boolean)) {
      const key = l.replace(/\d+ → \d+ Len=\d+/, "udp").replace(/\s+/g, " ");
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    parts.push(
      `${["c", "a", "b"][i]}'s port: ${[...counts].map(([k, n]) => `${n}× ${k}`).join("; ") || "nothing"} (${file})`,
    );
  }
  return parts.join(" | ");
}

/** Client-visible problems outside the measured failovers (e.g. after a preempt), for the report. */
const incidents: string[] = [];

interface Samples {
  move: number[];
  outage: number[];
}

async function runSet(impl: Impl, v: Variant, reps: number): Promise<Record<Fault, Samples>> {
  const lab = new Lab("bf");
  const started: Agent[] = [];
  const g = new Group(lab, v, [
    { node: "a", impl, priority: 150, ...nodeAddrs(1) },
    { node: "b", impl, priority: 100, ...nodeAddrs(2) },
  ]);
  const out: Record<Fault, Samples> = {
    "link cut": { move: [], outage: [] },
    SIGTERM: { move: [], outage: [] },
  };
  const probe = new Prober(lab);
  const tap = new AdvertTap();
  const captures: Capture[] = [];
  try {
    await g.addNodes();
    lab.addNode({ name: "c", addrs: [`${CLIENT}/24`] });
    for (const n of ["a", "b"]) {
      const p = lab.spawn(n, [process.execPath, PROBE, "serve", `${PORT}`], {
        stdout: "ignore",
      });
      drain(`echo server on ${n}`, p.stderr);
    }
    const startA = () => started.push(g.start("a"));
    startA();
    if ((await waitSoleHolder(g, "a", 15_000)) === null)
      throw new Error(`${impl}: a not master\n${g.dump()}`);
    started.push(g.start("b"));
    await sleep(masterDownMs(v, 100) + 500);
    await tap.start(lab, nodeAddrs(1).v4);
    if (PCAP) {
      for (const n of ["a", "b", "c"]) {
        captures.push(await startCapture(lab, lab.switchNs, lab.node(n).port, "arp or ip proto 112"));
      }
    }
    probe.start();
    if (!(await probe.waitFlowing(500, 10_000)))
      throw new Error(`${impl}: no probe replies: ${probe.describe()}`);
    const downB = masterDownMs(v, 100);
    for (const fault of FAULTS) {
      for (let i = 0; i < reps; i++) {
        if (fault === "link cut" && (await tap.next(v.advertInt * 3000 + 1000)) === null) {
          throw new Error(`${impl}: no advert from a seen`);
        }
        const t0 = nowMs();
        if (fault === "link cut") lab.setPort("a", false);
        else g.agent("a").signal("SIGTERM");
        const end = nowMs() + downB + 5000;
        let gained: number | null = null;
        while (gained === null && nowMs() < end) {
          gained = g.watch!.gained("b", t0);
          if (gained === null) await sleep(5);
        }
        if (gained === null) throw new Error(`${impl} ${fault}: b never took the VIP\n${g.dump()}`);
        const move = gained - t0;
        const outage = await probe.outage(t0, gained, 15_000);
        if (outage === null) throw new Error(`${impl} ${fault}: replies did not resume: ${probe.describe()}`);
        out[fault].move.push(move);
        out[fault].outage.push(outage);
        process.stderr.write(
          `${impl} ${v.id} ${fault} #${i + 1}: VIP move ${move.toFixed(1)} ms, outage ${outage.toFixed(1)} ms\n`,
        );
        // back to the initial state: a master again, replies flowing
        if (fault === "link cut") lab.setPort("a", true);
        else {
          await g.agent("a").exited();
          startA();
        }
        if ((await waitSoleHolder(g, "a", 15_000)) === null)
          throw new Error(`${impl}: a did not come back\n${g.dump()}`);
        if (!(await probe.waitFlowing(300 + 2 * v.advertInt * 1000, 10_000))) {
          // not part of the measured failover, but a client-visible problem: record it, then recover by
          // flushing the client's neighbour entry so the run can go on
          const holder = g.holders().join(",");
          const snap = await snapshot(lab);
          const neigh = lab
            .exec(lab.node("c").ns, ["ip", "neigh", "show", "192.0.2.100"], { check: false })
            .stdout.trim();
          incidents.push(
            `${impl} ${v.id} after ${fault} #${i + 1}: client got no replies for 10 s after a preempted ` +
              `(VIP on [${holder}], client neighbour entry: ${neigh || "none"}; ${probe.describe()}; ` +
              `1 s of traffic: ${snap})`,
          );
          process.stderr.write(`${incidents.at(-1)}\n`);
          lab.exec(lab.node("c").ns, ["ip", "neigh", "flush", "192.0.2.100"], { check: false });
          if (!(await probe.waitFlowing(500, 5_000))) {
            probe.stop();
            probe.start();
            const ok = await probe.waitFlowing(500, 10_000);
            incidents.push(
              `  (flushing the client's neighbour entry did not help; a new probe process ${ok ? "did" : "did not"})`,
            );
            process.stderr.write(`${incidents.at(-1)}\n`);
            if (!ok) throw new Error(`${impl}: probe did not recover`);
          }
        }
      }
    }
    return out;
  } finally {
    tap.stop();
    for (const [i, c] of captures.entries()) {
      process.stderr.write(`pcap of ${["a", "b", "c"][i]}'s port: ${await c.stop()}\n`);
    }
    probe.stop();
    await g.stopAll();
    for (const a of started) cleanupDir(a);
    lab.destroySync();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return Number.NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : "-");

if (import.meta.main) {
  if (!isRoot()) throw new Error("bench/failover.ts needs root (network namespaces)");
  sweepStale();
  const results: Record<string, Record<string, Record<Fault, Samples>>> = {};
  const t = nowMs();
  for (const m of MODES) {
    for (const impl of IMPLS) {
      results[m.key] ??= {};
      results[m.key]![impl] = await runSet(impl, m.v, REPS);
    }
  }
  const ka = run(["keepalived", "--version"], { check: false });
  const kaVersion = (ka.stdout + ka.stderr).split("\n")[0] ?? "?";
  const vigilVersion = run([...vigilCommand(), "version"], { check: false }).stdout.trim();
  const lines: string[] = [];
  lines.push(`## Failover: vigil vs keepalived (${REPS} repetitions per cell, medians)`);
  lines.push("");
  lines.push(`- command: \`bun bench/failover.ts ${process.argv.slice(2).join(" ")}\``.replace(/ `$/, "`"));
  lines.push(`- machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Linux ${release()}`);
  lines.push(`- vigil: ${vigilVersion} (${vigilCommand().join(" ")}); ${kaVersion}`);
  lines.push(`- run time: ${((nowMs() - t) / 1000).toFixed(0)} s`);
  lines.push("");
  lines.push(
    "| fault | mode | metric | vigil median | keepalived median | vigil/keepalived | vigil max | keepalived max | bound 3·adv+skew+20 | vigil ≤ keepalived | vigil ≤ bound |",
  );
  lines.push("|---|---|---|---:|---:|---:|---:|---:|---:|:---:|:---:|");
  const yn = (x: boolean | null) => (x === null ? "-" : x ? "yes" : "**no**");
  for (const fault of FAULTS) {
    for (const m of MODES) {
      const bound = masterDownMs(m.v, 100) + 20;
      for (const metric of ["move", "outage"] as const) {
        const vs = results[m.key]?.["vigil"]?.[fault][metric] ?? [];
        const ks = results[m.key]?.["keepalived"]?.[fault][metric] ?? [];
        const vg = median(vs);
        const kd = median(ks);
        const ratio = vg / kd;
        const both = Number.isFinite(vg) && Number.isFinite(kd);
        const name = metric === "move" ? "VIP move" : "client outage";
        const cells = [
          fault,
          m.label,
          name,
          f1(vg),
          f1(kd),
          both ? ratio.toFixed(2) : "-",
          vs.length ? f1(Math.max(...vs)) : "-",
          ks.length ? f1(Math.max(...ks)) : "-",
          String(bound),
          yn(both ? vg <= kd : null),
          yn(Number.isFinite(vg) ? vg <= bound : null),
        ];
        lines.push(`| ${cells.join(" | ")} |`);
      }
    }
  }
  lines.push("");
  lines.push("All times in milliseconds.");
  lines.push("");
  lines.push("Skew_Time of the backup (priority 100), what a graceful handover should cost: ");
  lines.push(MODES.map((m) => `${m.label}: ${skewMs(m.v, 100)} ms`).join("; "));
  lines.push("");
  if (incidents.length) {
    lines.push("Incidents (outside the measured failovers):");
    lines.push("");
    for (const x of incidents) lines.push(`- ${x}`);
    lines.push("");
  }
  lines.push("<details><summary>all samples (ms)</summary>");
  lines.push("");
  for (const m of MODES) {
    for (const impl of IMPLS) {
      for (const fault of FAULTS) {
        const s = results[m.key]?.[impl]?.[fault];
        if (!s) continue;
        lines.push(
          `- ${impl}, ${m.label}, ${fault}: move [${s.move.map(f1).join(", ")}], outage [${s.outage.map(f1).join(", ")}]`,
        );
      }
    }
  }
  lines.push("");
  lines.push("</details>");
  console.log(lines.join("\n"));
}
