// vrrp_mcast_group4 in a mixed group: keepalived 2.2.7 and vigil configured with the same
// non-default group (224.0.0.19) elect one master and fail over, and tcpdump sees every advert go
// to that group and none to 224.0.0.18.
import { afterEach, expect, test } from "bun:test";
import { type Agent, cleanupDir, holders, startKeepalived, startVigil } from "../lab/agents.ts";
import { keepalivedConf } from "../lab/confgen.ts";
import { isRoot, Lab, sleep, sweepStale, waitFor } from "../lab/netns.ts";
import { type Capture, removeCapture, startCapture, tsharkFields } from "./inject.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

let lab: Lab | null = null;
const agents: Agent[] = [];
let cap: Capture | null = null;

afterEach(async () => {
  if (cap) {
    await cap.stop();
    removeCapture(cap);
  }
  cap = null;
  for (const a of agents.splice(0)) {
    await a.stop("SIGKILL", 1000);
    cleanupDir(a);
  }
  lab?.destroySync();
  lab = null;
});

const VIP = "192.0.2.100";
const conf = (priority: number) =>
  keepalivedConf({
    globals: ["vrrp_mcast_group4 224.0.0.19"],
    instances: [{ priority, version: 3, advertInt: 0.5, vips: [`${VIP}/24`] }],
  });

test("keepalived and vigil on vrrp_mcast_group4 224.0.0.19 elect one master and fail over both ways", async () => {
  lab = new Lab("mcg");
  lab.addNode({ name: "n1", addrs: ["192.0.2.1/24"] });
  lab.addNode({ name: "n2", addrs: ["192.0.2.2/24"] });
  const l = lab;
  cap = await startCapture(l, l.switchNs, "br0", "ip proto 112");
  const sole = (node: string) => () => {
    const h = holders(l, ["n1", "n2"], VIP);
    return h.length === 1 && h[0] === node;
  };
  // vigil higher: it wins, keepalived stays backup (so it hears vigil on the new group)
  const vg = startVigil(l, "n1", conf(200));
  agents.push(vg);
  const ka = startKeepalived(l, "n2", conf(100));
  agents.push(ka);
  expect(await waitFor(sole("n1"), 8000)).toBe(true);
  await sleep(3000);
  expect(holders(l, ["n1", "n2"], VIP)).toEqual(["n1"]);
  // vigil dies: keepalived takes over
  await vg.crash();
  expect(await waitFor(() => holders(l, ["n2"], VIP).length === 1, 4000)).toBe(true);
  // vigil comes back with the higher priority: keepalived hears it and yields
  l.exec(l.node("n1").ns, ["ip", "addr", "flush", "dev", "eth0", "to", `${VIP}/32`]);
  const vg2 = startVigil(l, "n1", conf(200));
  agents.push(vg2);
  expect(await waitFor(sole("n1"), 8000)).toBe(true);
  await sleep(1500);
  expect(holders(l, ["n1", "n2"], VIP)).toEqual(["n1"]);

  const file = await cap.stop();
  const pkts = tsharkFields(file, "vrrp", ["ip.src", "ip.dst"]);
  const from = (src: string) => pkts.filter((p) => p["ip.src"] === src);
  expect(from("192.0.2.1").length).toBeGreaterThan(5);
  expect(from("192.0.2.2").length).toBeGreaterThan(2);
  expect(pkts.every((p) => p["ip.dst"] === "224.0.0.19")).toBe(true);
}, 60_000);
