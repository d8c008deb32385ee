// Tier 3: vigil and keepalived 2.2.7 in one VRRP group, both ways round (keepalived master / vigil
// backup and vigil master / keepalived backup), for every wire flavour in VARIANTS: v2 + PASS auth
// over IPv4 multicast, v3 IPv4 multicast and unicast, v3 IPv6 multicast (ff02::12, link-local source)
// and unicast. Each case checks, from the kernel, that exactly one node holds the VIP at every sampled
// moment and that it is the higher priority; then cuts the master's link (the other takes over within
// Master_Down_Interval, the cut node lets go), restores it (the master preempts back), crashes the
// master (SIGKILL of the agent and its children; the other takes over) and restarts it (preempts again).
//
// INTEROP_VIGIL_AS=keepalived puts keepalived in vigil's seat: a self-check of this harness against a
// known-good implementation, not a mode the suite runs in.
import { afterEach, describe, expect, test } from "bun:test";
import { cleanupDir } from "../lab/agents.ts";
import { isRoot, Lab, sweepStale } from "../lab/netns.ts";
import {
  crash,
  Group,
  type Impl,
  type Member,
  masterDownMs,
  nodeAddrs,
  sampleSole,
  stateEntries,
  VARIANTS,
  type Variant,
  waitSoleHolder,
} from "./group.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

const VIGIL: Impl = process.env["INTEROP_VIGIL_AS"] === "keepalived" ? "keepalived" : "vigil";
/** Added to Master_Down_Interval: process scheduling on a 2-core box plus our 10 ms kernel polling. */
const MARGIN_MS = 300;
const PRIO_MASTER = 150;
const PRIO_BACKUP = 100;

let lab: Lab | null = null;
let group: Group | null = null;

afterEach(async () => {
  if (group) {
    await group.stopAll();
    for (const a of group.agents.values()) cleanupDir(a);
  }
  group = null;
  lab?.destroySync();
  lab = null;
});

function members(masterImpl: Impl, backupImpl: Impl): Member[] {
  return [
    { node: "a", impl: masterImpl, priority: PRIO_MASTER, ...nodeAddrs(1) },
    { node: "b", impl: backupImpl, priority: PRIO_BACKUP, ...nodeAddrs(2) },
  ];
}

function fmt(bad: { at: number; holders: string[] }[]): string {
  return bad
    .slice(0, 10)
    .map((b) => `+${b.at}ms [${b.holders.join(",")}]`)
    .join(" ");
}

async function scenario(v: Variant, masterImpl: Impl, backupImpl: Impl): Promise<void> {
  lab = new Lab("ia");
  const g = new Group(lab, v, members(masterImpl, backupImpl));
  group = g;
  await g.addNodes();
  const downB = masterDownMs(v, PRIO_BACKUP);
  const downA = masterDownMs(v, PRIO_MASTER);
  const why = (what: string) => `${v.id} ${masterImpl}->${backupImpl}: ${what}\n${g.dump()}`;

  // 1. convergence: a (higher priority) is master, b backup, exactly one holder throughout. a starts
  //    first: started together, a slow start of a (config load) can legitimately let b win for a moment.
  g.start("a");
  const conv = await waitSoleHolder(g, "a", 15_000);
  if (conv === null)
    throw new Error(why(`a alone did not become master; holders [${g.holders().join(",")}]`));
  const t0 = performance.now();
  g.start("b");
  // sample past b's Master_Down_Interval (from its start), so a b that does not hear a would have
  // promoted itself inside the window
  const bad1 = await sampleSole(g, "a", Math.max(1500, downB + 1000));
  expect(bad1, why(`holders after convergence: ${fmt(bad1)}`)).toEqual([]);
  expect(performance.now() - t0).toBeGreaterThan(downB);
  expect(stateEntries(g.agent("a")), why("a entered MASTER")).toContain("MASTER");
  expect(stateEntries(g.agent("b")), why("b never MASTER while a is up")).not.toContain("MASTER");

  // 2. link cut on the master: b takes over within Master_Down_Interval; a, isolated, goes to FAULT and
  //    releases the VIP, so the kernel shows exactly one holder again
  let mark = g.agent("b").lines.length;
  let t = performance.now();
  lab.setPort("a", false);
  const cut = await waitSoleHolder(g, "b", downB + 3000, t, ["b"]);
  expect(cut, why(`b took the VIP after link cut (bound ${downB + MARGIN_MS} ms)`)).not.toBeNull();
  expect(cut!, why(`takeover after link cut took ${cut} ms`)).toBeLessThanOrEqual(downB + MARGIN_MS);
  const released = await waitSoleHolder(g, "b", 2000);
  expect(released, why(`isolated a released the VIP; holders [${g.holders().join(",")}]`)).not.toBeNull();
  const bad2 = await sampleSole(g, "b", 1000);
  expect(bad2, why(`holders after link cut: ${fmt(bad2)}`)).toEqual([]);
  expect(stateEntries(g.agent("b"), mark), why("b entered MASTER")).toContain("MASTER");

  // 3. link back: a preempts (default preempt) within its own Master_Down_Interval
  mark = g.agent("b").lines.length;
  t = performance.now();
  lab.setPort("a", true);
  const back = await waitSoleHolder(g, "a", downA + 5000, t);
  expect(back, why("a preempted after link restore")).not.toBeNull();
  expect(back!, why(`preempt after link restore took ${back} ms`)).toBeLessThanOrEqual(
    downA + 1000 + MARGIN_MS,
  );
  const bad3 = await sampleSole(g, "a", 1000);
  expect(bad3, why(`holders after preempt: ${fmt(bad3)}`)).toEqual([]);
  expect(stateEntries(g.agent("b"), mark), why("b went back to BACKUP")).toContain("BACKUP");

  // 4. crash of the master (SIGKILL, agent and children): b takes over. The dead node keeps its stale
  //    VIP (nobody is left to remove it, as with a real crash), so only b's side is sampled.
  mark = g.agent("b").lines.length;
  t = performance.now();
  crash(g.agent("a"));
  const died = await waitSoleHolder(g, "b", downB + 3000, t, ["b"]);
  expect(died, why("b took the VIP after crash of a")).not.toBeNull();
  expect(died!, why(`takeover after crash took ${died} ms`)).toBeLessThanOrEqual(downB + MARGIN_MS);
  const bad4 = await sampleSole(g, "b", 1000, ["b"]);
  expect(bad4, why(`b holding after crash: ${fmt(bad4)}`)).toEqual([]);
  expect(stateEntries(g.agent("b"), mark), why("b entered MASTER after crash")).toContain("MASTER");

  // 5. restart a: it reconciles the stale VIP and preempts; exactly one holder again
  await g.agent("a").exited();
  cleanupDir(g.agent("a"));
  t = performance.now();
  g.start("a");
  const again = await waitSoleHolder(g, "a", 15_000, t);
  expect(again, why(`a preempted after restart; holders [${g.holders().join(",")}]`)).not.toBeNull();
  const bad5 = await sampleSole(g, "a", 1000);
  expect(bad5, why(`holders after restart: ${fmt(bad5)}`)).toEqual([]);

  for (const [node, a] of g.agents) expect(a.running, why(`${node} still running`)).toBe(true);
  const ms = (x: number | null) => (x === null ? "-" : `${Math.round(x)} ms`);
  console.log(
    `${v.id} ${masterImpl}->${backupImpl}: takeover on link cut ${ms(cut)}, preempt ${ms(back)}, ` +
      `takeover on crash ${ms(died)}, preempt after restart ${ms(again)} (Master_Down ${downB} ms)`,
  );
}

for (const v of VARIANTS) {
  describe(v.id, () => {
    const budget = v.version === 2 ? 60_000 : 30_000;
    test(`keepalived master, ${VIGIL} backup`, () => scenario(v, "keepalived", VIGIL), budget);
    test(`${VIGIL} master, keepalived backup`, () => scenario(v, VIGIL, "keepalived"), budget);
  });
}
