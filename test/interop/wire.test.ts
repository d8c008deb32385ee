// Tier 3, on the wire: vigil's adverts captured with tcpdump on its bridge port and decoded by tshark
// (an independent dissector): VRRP with a valid checksum (v2, v3/IPv4 with keepalived's pseudo-header
// form, v3/IPv6), TTL / hop limit 255, TOS / traffic class 0xc0, the right fields, link-local source for
// IPv6 multicast, per-peer destinations in unicast, and the advert period. On takeover (from a keepalived
// master whose link is cut) vigil must announce the VIP: gratuitous ARPs (5 at once, 5 more after
// vrrp_garp_master_delay = 5 s) and unsolicited neighbour advertisements for IPv6.
//
// A control test first checks that this tshark really verifies VRRP checksums: frames from our own
// injector, one good and one damaged per flavour, must decode as good and bad respectively.
import { afterEach, describe, expect, test } from "bun:test";
import { type Agent, cleanupDir } from "../lab/agents.ts";
import { isRoot, Lab, sleep, sweepStale } from "../lab/netns.ts";
import {
  Group,
  type Impl,
  masterDownMs,
  nodeAddrs,
  VARIANTS,
  type Variant,
  waitSoleHolder,
} from "./group.ts";
import {
  advertFrame,
  type Capture,
  GROUP_V4,
  GROUP_V6,
  inject,
  linkLocalOf,
  macOf,
  removeCapture,
  startCapture,
  tsharkFields,
} from "./inject.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

const VIGIL: Impl = process.env["INTEROP_VIGIL_AS"] === "keepalived" ? "keepalived" : "vigil";
const VRRP_FILTER = "(ip proto 112) or (ip6 proto 112)";

let lab: Lab | null = null;
let group: Group | null = null;
const captures: Capture[] = [];

afterEach(async () => {
  if (group) {
    await group.stopAll();
    for (const a of group.agents.values()) cleanupDir(a);
  }
  group = null;
  for (const c of captures.splice(0)) removeCapture(c);
  lab?.destroySync();
  lab = null;
});

const ADVERT_FIELDS = [
  "frame.time_epoch",
  "ip.src",
  "ip.dst",
  "ip.ttl",
  "ip.dsfield",
  "ipv6.src",
  "ipv6.dst",
  "ipv6.hlim",
  "ipv6.tclass",
  "vrrp.version",
  "vrrp.type",
  "vrrp.virt_rtr_id",
  "vrrp.prio",
  "vrrp.addr_count",
  "vrrp.checksum.status",
  "vrrp.auth_type",
  "vrrp.auth_string",
  "vrrp.adver_int",
  "vrrp.short_adver_int",
  "vrrp.ip_addr",
  "vrrp.ipv6_addr",
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

describe("tshark control", () => {
  test("good and damaged injector frames decode as good and bad checksums", async () => {
    lab = new Lab("iw");
    lab.addNode({ name: "x", addrs: ["192.0.2.66/24", "2001:db8::66/64"] });
    const cap = await startCapture(lab, lab.switchNs, lab.node("x").port, VRRP_FILTER);
    captures.push(cap);
    const srcMac = macOf(lab, "x");
    const ll = linkLocalOf(lab, "x");
    const flip = (m: Uint8Array) => {
      m[7] = m[7]! ^ 0x5a;
      return m;
    };
    const frames: Uint8Array[] = [];
    for (const mutate of [undefined, flip]) {
      const base = { srcMac, ...(mutate ? { mutate } : {}) };
      frames.push(
        advertFrame({
          ...base,
          advert: { vrid: 201, priority: 1, addresses: ["192.0.2.201"] },
          ip: { src: "192.0.2.66", dst: GROUP_V4 },
        }),
        advertFrame({
          ...base,
          advert: { version: 3, vrid: 202, priority: 1, advertInterval: 100, addresses: ["192.0.2.202"] },
          ip: { src: "192.0.2.66", dst: GROUP_V4 },
        }),
        advertFrame({
          ...base,
          advert: { version: 3, vrid: 203, priority: 1, advertInterval: 100, addresses: ["2001:db8::203"] },
          ip: { src: ll, dst: GROUP_V6 },
        }),
      );
    }
    await inject(lab, "x", frames, { pps: 100 });
    const recs = tsharkFields(await cap.stop(), "vrrp", ["vrrp.virt_rtr_id", "vrrp.checksum.status"]);
    const got = recs.map((r) => `${r["vrrp.virt_rtr_id"]}:${r["vrrp.checksum.status"]}`);
    // tshark's checksum status: 1 good, 0 bad
    expect(got).toEqual(["201:1", "202:1", "203:1", "201:0", "202:0", "203:0"]);
  });
});

async function advertCase(v: Variant): Promise<void> {
  lab = new Lab("iw");
  const g = new Group(lab, v, [
    { node: "a", impl: VIGIL, priority: 150, ...nodeAddrs(1) },
    // b runs no agent: it answers ARP/ND for a's unicast adverts
    { node: "b", impl: "keepalived", priority: 100, ...nodeAddrs(2) },
  ]);
  group = g;
  await g.addNodes();
  const cap = await startCapture(lab, lab.switchNs, lab.node("a").port, VRRP_FILTER);
  captures.push(cap);
  const a = g.start("a");
  const why = (w: string) => `${v.id}: ${w}\n${g.dump()}`;
  const conv = await waitSoleHolder(g, "a", 15_000);
  if (conv === null) throw new Error(why("a did not become master"));
  await sleep(Math.max(2000, 5.5 * v.advertInt * 1000));
  const recs = tsharkFields(await cap.stop(), `vrrp && vrrp.virt_rtr_id == ${v.vrid}`, ADVERT_FIELDS);
  const dump = () => JSON.stringify(recs.slice(0, 3), null, 1);
  expect(recs.length, why(`adverts captured: ${recs.length}`)).toBeGreaterThanOrEqual(4);

  const peer = v.family === 4 ? nodeAddrs(2).v4 : nodeAddrs(2).v6;
  const wantSrc = v.family === 4 ? nodeAddrs(1).v4 : v.unicast ? nodeAddrs(1).v6 : linkLocalOf(lab, "a");
  const wantDst = v.unicast ? peer : v.family === 4 ? GROUP_V4 : GROUP_V6;
  for (const r of recs) {
    const msg = why(`advert fields ${JSON.stringify(r)}`);
    expect(r["vrrp.checksum.status"], msg).toBe("1");
    expect(r["vrrp.version"], msg).toBe(String(v.version));
    expect(r["vrrp.type"], msg).toBe("1");
    expect(r["vrrp.prio"], msg).toBe("150");
    expect(r["vrrp.addr_count"], msg).toBe("1");
    if (v.family === 4) {
      expect(r["ip.ttl"], msg).toBe("255");
      expect(r["ip.dsfield"], msg).toBe("0xc0");
      expect(r["ip.src"], msg).toBe(wantSrc);
      expect(r["ip.dst"], msg).toBe(wantDst);
      expect(r["vrrp.ip_addr"], msg).toBe("192.0.2.100");
    } else {
      expect(r["ipv6.hlim"], msg).toBe("255");
      expect(r["ipv6.tclass"], msg).toBe("0x000000c0");
      expect(r["ipv6.src"], msg).toBe(wantSrc);
      expect(r["ipv6.dst"], msg).toBe(wantDst);
      expect(r["vrrp.ipv6_addr"], msg).toBe("2001:db8::100");
    }
    if (v.version === 2) {
      expect(r["vrrp.auth_type"], msg).toBe("1");
      expect(r["vrrp.auth_string"], msg).toBe(v.authPass ?? "");
      expect(r["vrrp.adver_int"], msg).toBe(String(v.advertInt));
    } else {
      expect(r["vrrp.short_adver_int"], msg).toBe(String(Math.round(v.advertInt * 100)));
    }
  }
  const times = recs.map((r) => Number(r["frame.time_epoch"]));
  const gaps = times.slice(1).map((t, i) => (t - times[i]!) * 1000);
  const med = median(gaps);
  expect(
    med,
    why(`median advert period ${med} ms (gaps ${gaps.map(Math.round).join(",")}) ${dump()}`),
  ).toBeGreaterThan(v.advertInt * 1000 * 0.85);
  expect(med, why(`median advert period ${med} ms`)).toBeLessThan(v.advertInt * 1000 * 1.15);
  expect(a.running).toBe(true);
}

describe("adverts", () => {
  for (const v of VARIANTS) {
    test(
      `${v.id}: tshark decodes ${VIGIL}'s adverts as valid VRRPv${v.version}`,
      () => advertCase(v),
      30_000,
    );
  }
});

interface TakeoverResult {
  backup: Agent;
  file: string;
  mac: string;
  /** epoch seconds when the link was cut */
  cutAt: number;
}

/** keepalived master on a, vigil backup on b; cut a's link and capture b's port through the takeover. */
async function takeover(v: Variant, filter: string, captureMs: number): Promise<TakeoverResult> {
  lab = new Lab("iw");
  const g = new Group(lab, v, [
    { node: "a", impl: "keepalived", priority: 150, ...nodeAddrs(1) },
    { node: "b", impl: VIGIL, priority: 100, ...nodeAddrs(2) },
  ]);
  group = g;
  await g.addNodes();
  const why = (w: string) => `${v.id}: ${w}\n${g.dump()}`;
  g.start("a");
  if ((await waitSoleHolder(g, "a", 15_000)) === null) throw new Error(why("keepalived on a not master"));
  const backup = g.start("b");
  await sleep(masterDownMs(v, 100) + 500);
  if ((await waitSoleHolder(g, "a", 100)) === null) throw new Error(why("b did not settle as backup"));
  const cap = await startCapture(lab, lab.switchNs, lab.node("b").port, filter);
  captures.push(cap);
  const cutAt = Date.now() / 1000;
  lab.setPort("a", false);
  if ((await waitSoleHolder(g, "b", masterDownMs(v, 100) + 3000, performance.now(), ["b"])) === null) {
    throw new Error(why("b did not take over"));
  }
  await sleep(captureMs);
  return { backup, file: await cap.stop(), mac: macOf(lab, "b"), cutAt };
}

const V3_MCAST4 = VARIANTS.find((v) => v.id === "v3-mcast4")!;
const V3_MCAST6 = VARIANTS.find((v) => v.id === "v3-mcast6")!;

describe("takeover announcements", () => {
  test(`${VIGIL} sends gratuitous ARPs on takeover: a burst, and another after vrrp_garp_master_delay`, async () => {
    const r = await takeover(V3_MCAST4, "arp", 6500);
    const recs = tsharkFields(r.file, "arp", [
      "frame.time_epoch",
      "eth.src",
      "eth.dst",
      "arp.opcode",
      "arp.src.hw_mac",
      "arp.src.proto_ipv4",
      "arp.dst.proto_ipv4",
    ]);
    const garps = recs.filter(
      (x) => x["arp.src.proto_ipv4"] === "192.0.2.100" && x["arp.dst.proto_ipv4"] === "192.0.2.100",
    );
    const msg = `${JSON.stringify(recs, null, 1)}\n${r.backup.lines.slice(-30).join("\n")}`;
    expect(garps.length, msg).toBeGreaterThanOrEqual(6);
    for (const x of garps) {
      expect(x["eth.src"], msg).toBe(r.mac);
      expect(x["arp.src.hw_mac"], msg).toBe(r.mac);
      expect(x["eth.dst"], msg).toBe("ff:ff:ff:ff:ff:ff");
    }
    const t = garps.map((x) => Number(x["frame.time_epoch"]));
    const first = t[0]!;
    // the first burst follows the cut within Master_Down_Interval (+ margin)
    expect((first - r.cutAt) * 1000, msg).toBeLessThan(masterDownMs(V3_MCAST4, 100) + 500);
    const burst1 = t.filter((x) => x - first < 1);
    const burst2 = t.filter((x) => x - first >= 4.5 && x - first < 6.5);
    expect(burst1.length, `first burst ${burst1.length}\n${msg}`).toBeGreaterThanOrEqual(5);
    expect(burst2.length, `second burst ${burst2.length}\n${msg}`).toBeGreaterThanOrEqual(5);
  }, 40_000);

  test(`${VIGIL} sends unsolicited neighbour advertisements on IPv6 takeover`, async () => {
    const r = await takeover(V3_MCAST6, "icmp6", 1000);
    const recs = tsharkFields(r.file, "icmpv6.type == 136", [
      "frame.time_epoch",
      "eth.src",
      "eth.dst",
      "ipv6.src",
      "ipv6.dst",
      "ipv6.hlim",
      "icmpv6.checksum.status",
      "icmpv6.nd.na.target_address",
      "icmpv6.nd.na.flag.s",
      "icmpv6.nd.na.flag.o",
      "icmpv6.opt.linkaddr",
    ]);
    const nas = recs.filter((x) => x["icmpv6.nd.na.target_address"] === "2001:db8::100");
    const msg = `${JSON.stringify(recs, null, 1)}\n${r.backup.lines.slice(-30).join("\n")}`;
    expect(nas.length, msg).toBeGreaterThanOrEqual(1);
    for (const x of nas) {
      expect(x["eth.src"], msg).toBe(r.mac);
      expect(x["ipv6.dst"], msg).toBe("ff02::1");
      expect(x["ipv6.hlim"], msg).toBe("255");
      expect(x["icmpv6.checksum.status"], msg).toBe("1");
      expect(x["icmpv6.nd.na.flag.o"], msg).toBe("1");
      expect(x["icmpv6.nd.na.flag.s"], msg).toBe("0");
      expect(x["icmpv6.opt.linkaddr"], msg).toBe(r.mac);
    }
    const first = Number(nas[0]!["frame.time_epoch"]);
    expect((first - r.cutAt) * 1000, msg).toBeLessThan(masterDownMs(V3_MCAST6, 100) + 500);
    // keepalived's vrrp_garp_master_repeat default: 5 per burst
    expect(nas.filter((x) => Number(x["frame.time_epoch"]) - first < 1).length, msg).toBeGreaterThanOrEqual(
      5,
    );
  }, 30_000);
});
