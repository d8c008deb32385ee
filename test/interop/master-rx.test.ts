// What a master does with an advert from another router, against keepalived 2.2.7 as the oracle:
// by default it answers a lower-priority advert at once with its own; with lower_prio_no_advert it
// does not; with higher_prio_send_advert it advertises once more before yielding to a higher one.
// keepalived runs on n1 and vigil on n2, each master of its own VRIDs; n3 injects the adverts and
// tcpdump on the bridge sees everything.
import { afterEach, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
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
import { isRoot, Lab, sleep, sweepStale, waitFor } from "../lab/netns.ts";
import { advertFrame, GROUP_V4, inject, macOf } from "./inject.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

let lab: Lab | null = null;
const agents: Agent[] = [];
let cap: AdvertCapture | null = null;
const dirs: string[] = [];

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

const FAKE = "192.0.2.250";
// [variant, instance lines]
const VARIANTS: [string, string[]][] = [
  ["default", []],
  ["lower_prio_no_advert", ["lower_prio_no_advert"]],
  ["higher_prio_send_advert", ["higher_prio_send_advert"]],
];
const vipOf = (vrid: number) => `192.0.2.${100 + vrid}`;

function conf(vridBase: number, marks: string): string {
  return keepalivedConf({
    globals: ["enable_script_security", "script_user root"],
    instances: VARIANTS.map(([name, extra], i) => ({
      name: name.toUpperCase(),
      vrid: vridBase + i,
      priority: 150,
      version: 3 as const,
      advertInt: 1,
      vips: [vipOf(vridBase + i)],
      // keepalived's notify_master_rx_lower_pri: a marker per VRID shows the script ran
      extra: [...extra, `notify_master_rx_lower_pri "/usr/bin/touch ${marks}/${vridBase + i}"`],
    })),
  });
}

test("a master's answer to lower- and higher-priority adverts matches keepalived's", async () => {
  lab = new Lab("mrx");
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  lab.addNode({ name: "n3", addrs: ["192.0.2.3/24"] });
  const l = lab;
  const c = captureAdvertsOn(l);
  cap = c;
  const marks = tempDir("mrx");
  dirs.push(marks);
  agents.push(startKeepalived(l, "n1", conf(10, marks)));
  agents.push(startVigil(l, "n2", conf(20, marks)));
  const mac = macOf(l, "n3");
  const impls: [string, string, number][] = [
    ["keepalived", "192.0.2.1", 10],
    ["vigil", "192.0.2.2", 20],
  ];
  const advertsOf = (src: string, vrid: number) => c.adverts.filter((a) => a.src === src && a.vrid === vrid);
  // every instance advertises as master
  const allUp = await waitFor(
    () => impls.every(([, src, base]) => VARIANTS.every((_, i) => advertsOf(src, base + i).length >= 2)),
    15_000,
  );
  expect(allUp).toBe(true);

  /**
   * Injects one advert with `priority` for the instance right after one of its regular adverts, and
   * counts its adverts within 300 ms of the injected one: regular ones are a second apart, so any
   * seen there is an answer.
   */
  async function answers(src: string, vrid: number, priority: number): Promise<number> {
    const before = advertsOf(src, vrid).length;
    if (!(await waitFor(() => advertsOf(src, vrid).length > before, 3000, 5))) return -1;
    const frame = advertFrame({
      advert: { version: 3, vrid, priority, addresses: [vipOf(vrid)], advertInterval: 100 },
      ip: { src: FAKE, dst: GROUP_V4 },
      srcMac: mac,
    });
    await inject(l, "n3", [frame]);
    await sleep(400);
    const injected = c.adverts.filter((a) => a.src === FAKE && a.vrid === vrid).at(-1);
    if (!injected) return -2;
    return advertsOf(src, vrid).filter((a) => a.t >= injected.t && a.t < injected.t + 0.3).length;
  }

  // [variant, answers to a lower-priority advert, to a higher-priority one]
  const expected: [string, number, number][] = [
    ["default", 1, 0],
    ["lower_prio_no_advert", 0, 0],
    ["higher_prio_send_advert", 1, 1],
  ];
  const seen: Record<string, [string, number, number][]> = { keepalived: [], vigil: [] };
  for (const [impl, src, base] of impls) {
    for (const [i, [variant]] of VARIANTS.entries()) {
      const lowerAnswers = await answers(src, base + i, 50);
      const higherAnswers = await answers(src, base + i, 200);
      seen[impl]!.push([variant, lowerAnswers, higherAnswers]);
    }
  }
  expect(seen["vigil"]).toEqual(seen["keepalived"]!);
  expect(seen["keepalived"]).toEqual(expected);
  // every master that heard a lower-priority advert ran its notify_master_rx_lower_pri
  const ran = (base: number) => VARIANTS.map((_, i) => existsSync(join(marks, String(base + i))));
  expect(await waitFor(() => ran(20).every(Boolean), 3000)).toBe(true);
  expect(ran(20)).toEqual(ran(10));
}, 120_000);
