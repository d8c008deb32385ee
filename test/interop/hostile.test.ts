// Tier 3, hostile network: a running group (vigil master on a, vigil backup on b) while a third
// namespace (x) injects malformed and spoofed adverts: bad checksum, TTL 254, wrong or missing auth,
// wrong VRID, truncated, unknown type, wrong version, interval mismatch, priority 255 with a bad
// checksum. Each damaged advert goes out in two forms: priority 254 from x (would make the master step
// down if accepted) and priority 0 spoofed from the master's address (would make the backup take over
// within Skew_Time if accepted). Nothing may change: no transition logged, the VIP stays on a at every
// kernel sample. Then a flood (2000 pps of invalid adverts for 5 s) must not starve the backup's
// reception of the master's real adverts. A control at the end sends a *valid* priority-254 advert
// from x and requires the master to step down, proving that the injected frames do reach the agents.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { setVrrpChecksum, vrrpPassword } from "../../agent/wire/vrrp.ts";
import { cleanupDir } from "../lab/agents.ts";
import { isRoot, Lab, sweepStale, waitFor } from "../lab/netns.ts";
import {
  Group,
  type Impl,
  masterDownMs,
  nodeAddrs,
  sampleSole,
  skewMs,
  stateEntries,
  type Variant,
  waitSoleHolder,
} from "./group.ts";
import { advertFrame, type FrameSpec, GROUP_V4, inject, macOf } from "./inject.ts";

if (!isRoot()) throw new Error("the interop tier needs root (network namespaces, raw sockets)");
sweepStale();

const VIGIL: Impl = process.env["INTEROP_VIGIL_AS"] === "keepalived" ? "keepalived" : "vigil";
const X_ADDR = "192.0.2.66";
const A_ADDR = nodeAddrs(1).v4;
const VIP = "192.0.2.100";

/** A damaged advert: what differs from a valid one of the group. */
interface Kind {
  name: string;
  /** changes to the VRRP fields */
  advert?: Partial<FrameSpec["advert"]>;
  ttl?: number;
  /** damage to the encoded message; `fix` recomputes the checksum afterwards (plain form for v2) */
  mutate?: (m: Uint8Array) => Uint8Array;
  fix?: boolean;
}

const flipChecksum = (m: Uint8Array) => {
  m[7] = m[7]! ^ 0x5a;
  return m;
};

interface Setup {
  lab: Lab;
  g: Group;
  v: Variant;
  xMac: string;
}

/** Frames for one kind: priority 254 from x and priority 0 spoofed from the master's address. */
function framesFor(s: Setup, k: Kind): Uint8Array[] {
  const { v } = s;
  const valid = {
    version: v.version,
    vrid: v.vrid,
    addresses: [VIP],
    advertInterval: v.version === 2 ? v.advertInt : Math.round(v.advertInt * 100),
    ...(v.authPass !== undefined ? { authType: 1, authData: vrrpPassword(v.authPass) } : {}),
  };
  return [
    { src: X_ADDR, priority: 254 },
    { src: A_ADDR, priority: 0 },
  ].map(({ src, priority }) => {
    const ip = { src, dst: GROUP_V4, ttl: k.ttl ?? 255 };
    const spec: FrameSpec = { srcMac: s.xMac, ip, advert: { ...valid, priority, ...k.advert } };
    if (k.mutate) {
      const mutate = k.mutate;
      spec.mutate = (m) => {
        const out = mutate(m);
        // v2: plain; v3/IPv4: keepalived's pseudo-header form, so only the intended damage remains
        if (k.fix)
          setVrrpChecksum(out, {
            family: 4,
            src,
            dst: GROUP_V4,
            checksum: out[0]! >> 4 === 2 ? "plain" : "pseudo",
          });
        return out;
      };
    }
    return advertFrame(spec);
  });
}

async function setup(v: Variant, backupImpl: Impl): Promise<Setup> {
  const lab = new Lab("ih");
  const g = new Group(lab, v, [
    { node: "a", impl: VIGIL, priority: 150, ...nodeAddrs(1) },
    { node: "b", impl: backupImpl, priority: 100, ...nodeAddrs(2) },
  ]);
  await g.addNodes();
  lab.addNode({ name: "x", addrs: [`${X_ADDR}/24`] });
  g.start("a");
  if ((await waitSoleHolder(g, "a", 15_000)) === null) throw new Error(`a not master\n${g.dump()}`);
  g.start("b");
  const bad = await sampleSole(g, "a", masterDownMs(v, 100) + 700);
  if (bad.length) throw new Error(`group unstable before injection: ${JSON.stringify(bad)}\n${g.dump()}`);
  return { lab, g, v, xMac: macOf(lab, "x") };
}

function teardown(s: Setup | null): Promise<void> | undefined {
  if (!s) return;
  return (async () => {
    await s.g.stopAll();
    for (const a of s.g.agents.values()) cleanupDir(a);
    s.lab.destroySync();
  })();
}

/**
 * Injects `frames` from x (`total` at `pps`) while sampling the kernel; afterwards waits `settleMs`
 * more. Asserts that a held the VIP alone throughout and that neither agent logged a transition.
 */
async function expectNoChange(
  s: Setup,
  what: string,
  frames: Uint8Array[],
  pps: number,
  total: number,
  settleMs: number,
) {
  const { g } = s;
  const a = g.agent("a");
  const b = g.agent("b");
  const markA = a.lines.length;
  const markB = b.lines.length;
  const duration = (total / pps) * 1000 + settleMs;
  const [sent, bad] = await Promise.all([
    inject(s.lab, "x", frames, { pps, total }),
    sampleSole(g, "a", duration),
  ]);
  const why = (w: string) => `${s.v.id} ${what}: ${w}\n${g.dump(40)}`;
  expect(sent.sent, why("frames sent")).toBe(total);
  expect(bad, why(`VIP holders changed: ${JSON.stringify(bad.slice(0, 10))}`)).toEqual([]);
  expect(stateEntries(a, markA), why("transitions on a")).toEqual([]);
  expect(stateEntries(b, markB), why("transitions on b")).toEqual([]);
  expect(a.running && b.running, why("both agents running")).toBe(true);
  return sent;
}

function hostileSuite(v: Variant, backupImpl: Impl, kinds: Kind[], flood: { pps: number; seconds: number }) {
  describe(`${v.id}: ${VIGIL} master, ${backupImpl} backup, injector on a third node`, () => {
    let s: Setup | null = null;
    beforeAll(async () => {
      s = await setup(v, backupImpl);
    }, 30_000);
    afterAll(() => teardown(s));

    // long enough for a backup that accepted a priority-0 advert to promote itself (Skew_Time), and for
    // a master that accepted a higher priority to step down, with margin
    const settle = Math.max(800, skewMs(v, 100) + 600);
    for (const k of kinds) {
      test(`ignored: ${k.name}`, async () => {
        const frames = framesFor(s!, k);
        // 5 of each form over ~0.5 s
        await expectNoChange(s!, k.name, frames, 20, 10, settle);
      }, 20_000);
    }

    test(`flood: ${flood.pps} pps of invalid adverts for ${flood.seconds} s does not starve the backup`, async () => {
      const frames = kinds.flatMap((k) => framesFor(s!, k));
      const total = flood.pps * flood.seconds;
      const sent = await expectNoChange(s!, "flood", frames, flood.pps, total, 1500);
      // the injector kept up with the requested rate (else the flood proves nothing)
      expect(sent.seconds).toBeLessThan(flood.seconds * 1.3);
    }, 60_000);

    test("control: a valid priority-254 advert from the injector makes the master step down", async () => {
      const { g } = s!;
      const a = g.agent("a");
      const mark = a.lines.length;
      const frames = framesFor(s!, {
        name: "valid",
        // only the priority-254 form (priority 0 from a's address would be a different experiment)
      }).slice(0, 1);
      const run = inject(s!.lab, "x", frames, { pps: 1 / v.advertInt, total: Math.ceil(2 / v.advertInt) });
      const released = await waitFor(() => !s!.lab.hasAddress("a", VIP), 3000);
      await run;
      expect(released, `a released the VIP\n${g.dump(40)}`).toBe(true);
      expect(stateEntries(a, mark), g.dump(40)).toContain("BACKUP");
    }, 30_000);
  });
}

const V2: Variant = {
  id: "v2-pass-mcast4",
  version: 2,
  family: 4,
  unicast: false,
  advertInt: 1,
  authPass: "s3cr3t",
  vrid: 51,
};
const V3: Variant = { id: "v3-mcast4", version: 3, family: 4, unicast: false, advertInt: 0.1, vrid: 52 };

const common: Kind[] = [
  { name: "bad checksum", mutate: flipChecksum },
  {
    name: "priority 255 (address owner) with a bad checksum",
    advert: { priority: 255 },
    mutate: flipChecksum,
  },
  { name: "TTL 254", ttl: 254 },
  { name: "wrong VRID", advert: { vrid: 99 } },
  { name: "truncated inside the address list", mutate: (m) => m.slice(0, 10), fix: true },
  { name: "header only (address count 1, no address)", mutate: (m) => m.slice(0, 8), fix: true },
  {
    name: "address count larger than the addresses carried",
    mutate: (m) => {
      m[3] = 2;
      return m;
    },
    fix: true,
  },
  {
    name: "unknown type 2",
    mutate: (m) => {
      m[0] = (m[0]! & 0xf0) | 2;
      return m;
    },
    fix: true,
  },
];

hostileSuite(
  V2,
  VIGIL,
  [
    ...common,
    { name: "wrong password", advert: { authData: vrrpPassword("wrong") } },
    { name: "no authentication (type 0)", advert: { authType: 0, authData: new Uint8Array(8) } },
    { name: "auth data cut off (truncated)", mutate: (m) => m.slice(0, m.length - 4), fix: true },
    { name: "advert interval mismatch (2 s in a 1 s group)", advert: { advertInterval: 2 } },
    { name: "VRRPv3 advert in a v2 group", advert: { version: 3, advertInterval: 100, authType: 0 } },
  ],
  { pps: 2000, seconds: 5 },
);

hostileSuite(
  V3,
  VIGIL,
  [
    ...common,
    // a v3 checksum without the pseudo-header is a valid (Cisco) form: damage it in both forms
    { name: "checksum valid in neither form", mutate: flipChecksum },
    { name: "VRRPv2 advert in a v3 group", advert: { version: 2, advertInterval: 1, authType: 0 } },
  ],
  { pps: 2000, seconds: 5 },
);
