// The notify FIFO against keepalived 2.2.7 as the oracle: the same config (instances, a sync group,
// a tracked file, priority-change lines) and the same events must produce the same
// lines, phase by phase: start-up, a priority change, a lower-priority advert heard as master, and
// the graceful stop. keepalived runs on n1 and vigil on n2, each master of its own VRIDs.
import { afterEach, expect, test } from "bun:test";
import {
  closeSync,
  constants,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { type Agent, cleanupDir, startKeepalived, startVigil, tempDir } from "../lab/agents.ts";
import { keepalivedConf } from "../lab/confgen.ts";
import { isRoot, Lab, sleep, sweepStale, waitFor } from "../lab/netns.ts";
import { advertFrame, GROUP_V4, inject, macOf } from "./inject.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

let lab: Lab | null = null;
const agents: Agent[] = [];
const dirs: string[] = [];

const readers: Side[] = [];

afterEach(async () => {
  for (const r of readers.splice(0)) if (r.fd >= 0) closeSync(r.fd);
  for (const a of agents.splice(0)) {
    await a.stop("SIGKILL", 1000);
    cleanupDir(a);
  }
  lab?.destroySync();
  lab = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

interface Side {
  fifo: string;
  flag: string;
  conf: string;
  /** the same without VI_1, for the reload that deletes it */
  confWithout: string;
  /** the test reads the FIFO itself (a FIFO script would be stopped before the STOP lines) */
  fd: number;
  /** inode of the FIFO the fd reads: keepalived makes a new one on reload */
  ino: number;
  text: string;
}

function side(root: string, name: string, vridBase: number): Side {
  const dir = join(root, name);
  mkdirSync(dir);
  const fifo = join(dir, "vrrp.fifo");
  const flag = join(dir, "flag");
  writeFileSync(flag, "0\n");
  const inst = (n: number, extra: string[] = []) => ({
    name: `VI_${n}`,
    vrid: vridBase + n,
    priority: 100,
    version: 3 as const,
    advertInt: 0.2,
    vips: [`192.0.2.${vridBase + n}/24`],
    extra,
  });
  const conf = (withVi1: boolean) =>
    keepalivedConf({
      globals: ["enable_script_security", "script_user root", `vrrp_notify_fifo ${fifo}`],
      trackFiles: [{ name: "flag", file: flag }],
      syncGroups: [{ name: "G", group: ["VI_2", "VI_3"] }],
      instances: [
        ...(withVi1 ? [inst(1, ["notify_priority_changes", "track_file {", "  flag", "}"])] : []),
        inst(2),
        inst(3),
      ],
    });
  return { fifo, flag, conf: conf(true), confWithout: conf(false), fd: -1, ino: -1, text: "" };
}

/** Reads what is waiting in the FIFO (non-blocking), following it to a new FIFO at the same path. */
function pump(s: Side): void {
  if (s.fd >= 0) drain(s);
  if (!existsSync(s.fifo)) return;
  const ino = statSync(s.fifo).ino;
  if (ino !== s.ino) {
    if (s.fd >= 0) closeSync(s.fd);
    s.fd = openSync(s.fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    s.ino = ino;
    drain(s);
  }
}

function drain(s: Side): void {
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n = 0;
    try {
      n = readSync(s.fd, buf, 0, buf.length, null);
    } catch {
      return; // EAGAIN
    }
    if (n <= 0) return;
    s.text += buf.subarray(0, n).toString();
  }
}

const linesOf = (s: Side): string[] => {
  pump(s);
  return s.text.split("\n").filter((l) => l.length > 0);
};

test("vigil writes the same notify FIFO lines as keepalived for the same events", async () => {
  lab = new Lab("nfifo");
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  lab.addNode({ name: "n3", addrs: ["192.0.2.3/24"] });
  const l = lab;
  const root = tempDir("nfifo");
  dirs.push(root);
  const ka = side(root, "keepalived", 10);
  const vg = side(root, "vigil", 20);
  readers.push(ka, vg);
  const kaAgent = startKeepalived(l, "n1", ka.conf);
  const vgAgent = startVigil(l, "n2", vg.conf);
  agents.push(kaAgent, vgAgent);
  const sides: [string, Side, number][] = [
    ["keepalived", ka, 10],
    ["vigil", vg, 20],
  ];
  const phases: Record<string, Record<string, string[]>> = { keepalived: {}, vigil: {} };
  const mark: Record<string, number> = { keepalived: 0, vigil: 0 };
  /** The lines each side wrote since the last phase, sorted (instances race each other). */
  const phase = (name: string) => {
    for (const [who, s] of sides) {
      const all = linesOf(s);
      phases[who]![name] = all.slice(mark[who]).sort();
      mark[who] = all.length;
    }
  };

  // the FIFOs appear when the agents start; reading them from then on loses nothing (the writers
  // hold them open, so lines wait in the pipe)
  const opened = (s: Side): boolean => {
    pump(s);
    return s.fd >= 0;
  };
  expect(await waitFor(() => sides.every(([, s]) => opened(s)), 10_000)).toBe(true);

  // 1. start-up: every instance and the group become master
  const masters = (s: Side) => linesOf(s).filter((x) => x.includes(" MASTER ")).length;
  expect(await waitFor(() => masters(ka) >= 4 && masters(vg) >= 4, 15_000)).toBe(true);
  await sleep(500);
  phase("start");

  // 2. the tracked file changes VI_1's priority
  for (const s of [ka, vg]) writeFileSync(s.flag, "5\n");
  expect(
    await waitFor(
      () => linesOf(ka).length > mark["keepalived"]! && linesOf(vg).length > mark["vigil"]!,
      5000,
    ),
  ).toBe(true);
  await sleep(300);
  phase("priority");

  // 3. a lower-priority advert for VI_1 reaches each master
  const mac = macOf(l, "n3");
  await inject(
    l,
    "n3",
    sides.map(([, , base]) =>
      advertFrame({
        advert: {
          version: 3,
          vrid: base + 1,
          priority: 50,
          addresses: [`192.0.2.${base + 1}`],
          advertInterval: 20,
        },
        ip: { src: "192.0.2.250", dst: GROUP_V4 },
        srcMac: mac,
      }),
    ),
  );
  await sleep(500);
  phase("lower");

  // 4. a reload deletes VI_1: keepalived notifies FAULT for it (DELETED only with notify_deleted)
  writeFileSync(join(kaAgent.dir, "keepalived.conf"), ka.confWithout);
  writeFileSync(join(vgAgent.dir, "vigil.conf"), vg.confWithout);
  kaAgent.signal("SIGHUP");
  vgAgent.signal("SIGHUP");
  expect(
    await waitFor(() => sides.every(([, s]) => linesOf(s).some((x) => x.includes('"VI_1" FAULT'))), 8000),
  ).toBe(true);
  await sleep(1000);
  phase("reload");

  // 5. graceful stop
  await Promise.all([kaAgent.stop("SIGTERM", 5000), vgAgent.stop("SIGTERM", 5000)]);
  await sleep(300);
  phase("stop");

  expect(phases["vigil"]).toEqual(phases["keepalived"]!);
  // and what they agree on is what keepalived documents
  expect(phases["keepalived"]!["priority"]).toEqual(['INSTANCE "VI_1" MASTER_PRIORITY 105']);
  expect(phases["keepalived"]!["lower"]).toEqual(['INSTANCE "VI_1" MASTER_RX_LOWER_PRI 105']);
  expect(phases["keepalived"]!["start"]).toContain('GROUP "G" MASTER 0');
  expect(phases["keepalived"]!["reload"]).toEqual(['INSTANCE "VI_1" FAULT 105']);
  expect(phases["keepalived"]!["stop"]).toContain('INSTANCE "VI_2" STOP 100');
}, 120_000);
