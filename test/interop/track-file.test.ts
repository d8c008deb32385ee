// track_file against keepalived 2.2.7 as the oracle: the same file contents, the same weights, and
// the priority each implementation puts in its adverts must agree (or both must stop advertising,
// for FAULT). keepalived runs on n1 and vigil on n2, each alone in its own VRIDs, so each is master
// of its instances and advertises its effective priority; tcpdump on the bridge reads both.
import { afterEach, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type AdvertCapture,
  type Agent,
  captureAdvertsOn,
  cleanupDir,
  startKeepalived,
  startVigil,
  tempDir,
} from "../lab/agents.ts";
import { keepalivedConf } from "../lab/confgen.ts";
import { isRoot, Lab, sleep, sweepStale } from "../lab/netns.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

let lab: Lab | null = null;
const agents: Agent[] = [];
const dirs: string[] = [];
let cap: AdvertCapture | null = null;

afterEach(async () => {
  cap?.stop();
  cap = null;
  for (const a of agents.splice(0)) {
    await a.stop("SIGKILL", 1000);
    cleanupDir(a);
  }
  lab?.destroySync();
  lab = null;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

// instance name -> the track_file entry it has (the file's own weight is 1)
const TRACKERS: [string, string][] = [
  ["PLAIN", "f"],
  ["TIMES_MINUS_10", "f weight -10"],
  ["REVERSE_3", "f weight 3 reverse"],
  ["ZERO", "f weight 0"],
  ["ZERO_REVERSE", "f weight 0 reverse"],
];

function conf(file: string, vridBase: number): string {
  return keepalivedConf({
    trackFiles: [{ name: "f", file }],
    instances: TRACKERS.map(([name, entry], i) => ({
      name,
      vrid: vridBase + i,
      priority: 100,
      version: 3 as const,
      advertInt: 0.2,
      vips: [`192.0.2.${vridBase + i}/24`],
      extra: ["track_file {", `  ${entry}`, "}"],
    })),
  });
}

/** The priority in the last advert of each VRID within the last `windowS` seconds; "none" if silent. */
function lastPriorities(
  c: AdvertCapture,
  src: string,
  vrids: number[],
  windowS: number,
): (number | "none")[] {
  const since = Date.now() / 1000 - windowS;
  return vrids.map((v) => {
    const own = c.adverts.filter((a) => a.src === src && a.vrid === v && a.t >= since);
    return own.length > 0 ? own[own.length - 1]!.prio : "none";
  });
}

test("keepalived and vigil advertise the same priorities for the same file contents", async () => {
  lab = new Lab("trfka");
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  const dir = tempDir("trfka");
  dirs.push(dir);
  const kaFile = join(dir, "ka", "value");
  const vgFile = join(dir, "vigil", "value");
  mkdirSync(join(dir, "ka"));
  mkdirSync(join(dir, "vigil"));
  const write = (text: string | null) => {
    for (const f of [kaFile, vgFile]) {
      if (text === null) rmSync(f, { force: true });
      else writeFileSync(f, text);
    }
  };
  write("0\n");
  cap = captureAdvertsOn(lab);
  agents.push(startKeepalived(lab, "n1", conf(kaFile, 10)));
  agents.push(startVigil(lab, "n2", conf(vgFile, 20)));
  const kaVrids = TRACKERS.map((_, i) => 10 + i);
  const vgVrids = TRACKERS.map((_, i) => 20 + i);

  // [file contents (null: deleted), what the five instances advertise]
  const steps: [string | null, (number | "none")[]][] = [
    ["0\n", [100, 100, 100, 100, "none"]],
    ["5\n", [105, 50, 85, "none", 100]],
    ["-7", [93, 170, 121, "none", 100]],
    ["0x10 trailing", [116, 1, 52, "none", 100]],
    ["017", [115, 1, 55, "none", 100]],
    ["300", [254, "none", "none", "none", 100]],
    ["-253", [1, 254, 254, "none", 100]],
    ["-254", ["none", 254, 254, "none", 100]],
    ["  +40\n", [140, "none", 1, "none", 100]],
    ["", [100, 100, 100, 100, "none"]],
    ["12", [112, 1, 64, "none", 100]],
    [null, [100, 100, 100, 100, "none"]],
  ];
  // both start from 0: the instances that are up advertise within Master_Down
  await sleep(2500);
  for (const [text, expected] of steps) {
    write(text);
    // leaving FAULT takes Master_Down (about 0.8 s) before adverts resume
    await sleep(1800);
    const ka = lastPriorities(cap, "192.0.2.1", kaVrids, 0.6);
    const vg = lastPriorities(cap, "192.0.2.2", vgVrids, 0.6);
    expect({ text, vigil: vg }).toEqual({ text, vigil: ka });
    expect({ text, keepalived: ka }).toEqual({ text, keepalived: expected });
  }
}, 120_000);
