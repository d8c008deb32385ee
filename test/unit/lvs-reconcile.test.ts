// reconcile(): desired IPVS table vs the kernel's -> minimal ordered ops; owned-only, idempotent, adopts.
// The property test applies the ops through IpvsClient to a fake kernel (test/unit/ipvs-fake-kernel.ts).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { applyOps, IpvsClient, readTable } from "../../agent/lvs/ipvs-client.ts";
import {
  type DesiredDest,
  type DesiredService,
  type KernelService,
  reconcile,
  toIpvsDest,
  toIpvsService,
} from "../../agent/lvs/reconcile.ts";
import {
  destKeyString,
  FWD_METHODS,
  IP_VS_SVC_F_PERSISTENT,
  type IpvsDest,
  type ServiceKey,
  serviceKeyString,
} from "../../agent/wire/ipvs.ts";
import { FakeIpvsKernel } from "./ipvs-fake-kernel.ts";

const K1: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.1", port: 80 };
const K2: ServiceKey = { af: 6, protocol: "udp", addr: "2001:db8::1", port: 53 };
const K3: ServiceKey = { af: 4, fwmark: 3 };
const d = (addr: string, weight = 1, fwd: DesiredDest["fwd"] = "masq"): DesiredDest => ({
  addr,
  port: 8080,
  fwd,
  weight,
});
const kernelOf = (svcs: DesiredService[]): KernelService[] =>
  svcs.map((s) => ({ service: toIpvsService(s), dests: s.dests.map((x) => toIpvsDest(x, s.key.af)) }));

describe("reconcile examples", () => {
  const web: DesiredService = { key: K1, sched: "wrr", dests: [d("198.51.100.1"), d("198.51.100.2", 2)] };

  test("empty kernel: add service then its dests, in order", () => {
    expect(reconcile([web], []).map((o) => o.op)).toEqual(["add-service", "add-dest", "add-dest"]);
  });

  test("same table: nothing to do (adopt after restart, no flush)", () => {
    expect(reconcile([web], kernelOf([web]))).toEqual([]);
  });

  test("weight change: one edit-dest; scheduler change: one edit-service", () => {
    const changed = { ...web, sched: "rr", dests: [d("198.51.100.1"), d("198.51.100.2", 5)] };
    const ops = reconcile([changed], kernelOf([web]));
    expect(ops.map((o) => o.op)).toEqual(["edit-service", "edit-dest"]);
    expect(ops[1]?.op === "edit-dest" && ops[1].dest.weight).toBe(5);
  });

  test("dest removed and added: del before add", () => {
    const next = { ...web, dests: [d("198.51.100.1"), d("198.51.100.3")] };
    expect(
      reconcile([next], kernelOf([web])).map((o) => `${o.op} ${"dest" in o ? destKeyString(o.dest) : ""}`),
    ).toEqual(["del-dest 198.51.100.2:8080", "add-dest 198.51.100.3:8080"]);
  });

  test("unowned services are never touched; owned stale ones are deleted first", () => {
    const foreign: DesiredService = { key: K2, sched: "rr", dests: [d("2001:db8::9")] };
    const stale: DesiredService = { key: K3, sched: "sh", dests: [d("198.51.100.7", 1, "route")] };
    const ops = reconcile([web], kernelOf([foreign, stale]), new Set([serviceKeyString(K3)]));
    expect(ops.map((o) => o.op)).toEqual(["del-service", "add-service", "add-dest", "add-dest"]);
    expect(ops.every((o) => !("key" in o) || serviceKeyString(o.key) !== serviceKeyString(K2))).toBe(true);
  });

  test("kernel-reported tunnel fields do not cause edits for NAT/DR dests", () => {
    const k = kernelOf([web]);
    const withTun = k.map((s) => ({
      ...s,
      dests: s.dests.map((x) => ({ ...x, tunType: "ipip" as const, tunPort: 0 })),
    }));
    expect(reconcile([web], withTun)).toEqual([]);
  });

  test("persistence defaults: netmask full address, HASHED ignored", () => {
    const p: DesiredService = {
      key: K2,
      sched: "sh",
      flags: IP_VS_SVC_F_PERSISTENT,
      timeout: 300,
      dests: [],
    };
    const svc = toIpvsService(p);
    expect(svc.netmask).toBe(128);
    expect(reconcile([p], [{ service: { ...svc, flags: svc.flags | 2 }, dests: [] }])).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// property: apply(reconcile(desired, current)) == desired ∪ unowned current, then reconcile == []

const KEYS: ServiceKey[] = [
  K1,
  K2,
  K3,
  { af: 4, protocol: "tcp", addr: "192.0.2.1", port: 443 },
  { af: 4, protocol: "sctp", addr: "203.0.113.9", port: 9 },
  { af: 6, fwmark: 3 },
  { af: 6, protocol: "tcp", addr: "2001:db8::1", port: 80 },
];
const ADDRS = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "2001:db8:1::1", "2001:db8:1::2"];

const destArb: fc.Arbitrary<DesiredDest> = fc
  .record({
    addr: fc.constantFrom(...ADDRS),
    port: fc.constantFrom(80, 8080),
    fwd: fc.constantFrom(...FWD_METHODS),
    weight: fc.integer({ min: 0, max: 5 }),
    upperThreshold: fc.constantFrom(0, 100),
    tunType: fc.constantFrom("ipip" as const, "gue" as const),
  })
  .map((r) => {
    const out: DesiredDest = {
      addr: r.addr,
      port: r.port,
      fwd: r.fwd,
      weight: r.weight,
      upperThreshold: r.upperThreshold,
    };
    if (r.fwd === "tunnel") out.tunType = r.tunType;
    return out;
  });
const serviceArb: fc.Arbitrary<DesiredService> = fc.record({
  key: fc.constantFrom(...KEYS),
  sched: fc.constantFrom("rr", "wrr", "sh"),
  flags: fc.constantFrom(0, IP_VS_SVC_F_PERSISTENT),
  timeout: fc.constantFrom(0, 300),
  dests: fc.array(destArb, { maxLength: 4 }),
});
const tableArb = fc.array(serviceArb, { maxLength: 5 });

/** a table as comparable plain data: service key -> service + dests by key */
function normalize(t: readonly KernelService[]) {
  const out: Record<string, { service: unknown; dests: Record<string, IpvsDest> }> = {};
  for (const s of t) {
    const dests: Record<string, IpvsDest> = {};
    for (const x of s.dests) dests[destKeyString(x)] = x;
    out[serviceKeyString(s.service.key)] = { service: s.service, dests };
  }
  return out;
}

/** the last occurrence of each key wins, as in reconcile() */
function dedupe(t: DesiredService[]): DesiredService[] {
  const m = new Map<string, DesiredService>();
  for (const s of t) {
    const dm = new Map<string, DesiredDest>();
    for (const x of s.dests) dm.set(destKeyString(toIpvsDest(x, s.key.af)), x);
    m.set(serviceKeyString(s.key), { ...s, dests: [...dm.values()] });
  }
  return [...m.values()];
}

describe("reconcile properties", () => {
  test("applied to a simulated kernel: exactly desired ∪ unowned current; then idempotent", () => {
    fc.assert(
      fc.property(
        tableArb,
        tableArb,
        fc.array(fc.constantFrom(...KEYS)),
        (desiredRaw, currentRaw, ownedKeys) => {
          const desired = desiredRaw;
          const current = dedupe(currentRaw);
          const kernel = new FakeIpvsKernel();
          const client = IpvsClient.open(kernel);
          for (const op of reconcile(current, [])) {
            const r = applyOps(client, [op]);
            expect(r.errors).toEqual([]);
          }
          const before = readTable(client);
          kernel.log.length = 0; // from here on, only reconcile's writes
          const owned = new Set(ownedKeys.map(serviceKeyString));
          const ops = reconcile(desired, before, owned);
          const res = applyOps(client, ops);
          expect(res.errors.map(String)).toEqual([]);
          const after = readTable(client);

          const wantNames = new Set(desired.map((s) => serviceKeyString(s.key)));
          const expected = [
            ...kernelOf(dedupe(desired)),
            ...before.filter((s) => {
              const n = serviceKeyString(s.service.key);
              return !wantNames.has(n) && !owned.has(n);
            }),
          ];
          expect(normalize(after)).toEqual(normalize(expected));
          expect(reconcile(desired, after, owned)).toEqual([]);
          // only the listed services' ops touched the kernel: unowned ones saw no write
          for (const e of kernel.log) {
            if (e.cmd === 4 || e.cmd === 8 || !e.service) continue;
            expect(wantNames.has(e.service) || owned.has(e.service)).toBe(true);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  test("minimal: one changed weight among many gives exactly one op", () => {
    fc.assert(
      fc.property(tableArb, fc.nat(), (raw, pick) => {
        const t = dedupe(raw).filter((s) => s.dests.length > 0);
        if (t.length === 0) return;
        const si = pick % t.length;
        const s = t[si]!;
        const di = pick % s.dests.length;
        const changed = t.map((x, i) =>
          i !== si
            ? x
            : { ...x, dests: x.dests.map((y, j) => (j === di ? { ...y, weight: y.weight + 1 } : y)) },
        );
        const ops = reconcile(changed, kernelOf(t));
        expect(ops.map((o) => o.op)).toEqual(["edit-dest"]);
      }),
      { numRuns: 300 },
    );
  });
});
