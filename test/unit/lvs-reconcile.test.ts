// reconcile(): desired IPVS table vs the kernel's -> minimal ordered ops; owned-only, idempotent, adopts.
// The property test applies the ops through IpvsClient to a fake kernel (test/unit/ipvs-fake-kernel.ts).
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { applyOps, IpvsClient, IpvsTableSync, readTable } from "../../agent/lvs/ipvs-client.ts";
import {
  byServiceName,
  type DesiredDest,
  type DesiredService,
  type IpvsOp,
  type KernelService,
  reconcile,
  reconcileApplied,
  sameDesiredService,
  toIpvsDest,
  toIpvsService,
} from "../../agent/lvs/reconcile.ts";
import {
  destKeyString,
  FWD_METHODS,
  IP_VS_SVC_F_PERSISTENT,
  IPVS_CMD_SET_DEST,
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

// ---------------------------------------------------------------------------------------------------
// incremental reconcile: diffing against what was applied gives the same ops as a fresh dump would

/** an op as comparable text; dest ops of one service may come in another order (dump order) */
const opText = (o: IpvsOp): string => JSON.stringify(o);
const sortedOps = (ops: readonly IpvsOp[]): string[] => ops.map(opText).sort();

/** a random edit of a table: change, add or drop services and dests */
const editArb = fc.record({
  drop: fc.array(fc.nat(), { maxLength: 2 }),
  add: fc.array(serviceArb, { maxLength: 2 }),
  reweigh: fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 5 })), { maxLength: 3 }),
  resched: fc.option(fc.tuple(fc.nat(), fc.constantFrom("rr", "wrr", "sh"))),
});
type Edit = typeof editArb extends fc.Arbitrary<infer R> ? R : never;
function edit(t: DesiredService[], e: Edit) {
  let out = t.filter((_, i) => !e.drop.some((d) => t.length > 0 && d % t.length === i));
  out = out.map((s, i) => {
    let x = s;
    for (const [si, di, w] of e.reweigh) {
      if (si % Math.max(1, out.length) !== i || x.dests.length === 0) continue;
      x = { ...x, dests: x.dests.map((y, j) => (j === di % x.dests.length ? { ...y, weight: w } : y)) };
    }
    if (e.resched && e.resched[0] % Math.max(1, out.length) === i) x = { ...x, sched: e.resched[1] };
    return x;
  });
  return [...out, ...e.add];
}

describe("incremental reconcile", () => {
  test("same ops (as a set, same service order) as a full reconcile against the kernel, step after step", () => {
    fc.assert(
      fc.property(tableArb, fc.array(editArb, { minLength: 1, maxLength: 4 }), (first, edits) => {
        const kernel = new FakeIpvsKernel();
        const client = IpvsClient.open(kernel);
        let desired = first;
        let owned = new Set<string>();
        expect(applyOps(client, reconcile(desired, readTable(client), owned)).errors).toEqual([]);
        let applied = byServiceName(desired);
        for (const e of edits) {
          const next = edit(desired, e);
          owned = new Set([...owned, ...desired.map((s) => serviceKeyString(s.key))]);
          const full = reconcile(next, readTable(client), owned);
          const inc = reconcileApplied(byServiceName(next), applied, owned);
          expect(sortedOps(inc)).toEqual(sortedOps(full));
          // services come in the same order: a service's ops are never split or reordered
          const order = (ops: IpvsOp[]) => [
            ...new Set(ops.map((o) => JSON.stringify("service" in o ? o.service.key : o.key))),
          ];
          expect(order(inc)).toEqual(order(full));
          expect(applyOps(client, inc).errors).toEqual([]);
          expect(reconcile(next, readTable(client), owned)).toEqual([]);
          desired = next;
          applied = byServiceName(next);
          owned = new Set(next.map((s) => serviceKeyString(s.key)));
        }
      }),
      { numRuns: 300 },
    );
  });

  test("sameDesiredService: true means the full diff finds nothing to do", () => {
    fc.assert(
      fc.property(serviceArb, serviceArb, (a, b0) => {
        const b = { ...b0, key: a.key };
        if (sameDesiredService(a, b)) expect(reconcile([b], kernelOf(dedupe([a])))).toEqual([]);
        expect(sameDesiredService(a, { ...a, dests: [...a.dests] })).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  test("IpvsTableSync: reads the kernel first, then sends only a change's ops without reading", () => {
    const kernel = new FakeIpvsKernel();
    const client = IpvsClient.open(kernel);
    const table: DesiredService[] = [];
    for (let i = 0; i < 50; i++)
      table.push({
        key: { af: 4, protocol: "tcp", addr: "192.0.2.1", port: 1000 + i },
        sched: "wlc",
        dests: [d("198.51.100.1"), d("198.51.100.2"), d("198.51.100.3")],
      });
    const sync = new IpvsTableSync(client);
    const first = sync.sync(table, new Set());
    expect([first.dumped, first.ops.length, first.result.errors]).toEqual([true, 200, []]);
    expect(kernel.datagrams.length).toBeGreaterThan(1); // batched, within the limits
    expect(kernel.datagrams.every((n) => n <= kernel.batchLimits.maxMsgs)).toBe(true);

    kernel.log.length = 0;
    const changed = table.map((s, i) =>
      i === 17 ? { ...s, dests: [d("198.51.100.1", 4), ...s.dests.slice(1)] } : s,
    );
    const second = sync.sync(changed, new Set());
    expect([second.dumped, second.ops.map((o) => o.op)]).toEqual([false, ["edit-dest"]]);
    // one request in all: no dump (GET_SERVICE / GET_DEST) at all
    expect(kernel.log.map((e) => e.cmd)).toEqual([IPVS_CMD_SET_DEST]);
    expect(
      sync.kernelView().find((s) => serviceKeyString(s.service.key) === "tcp 192.0.2.1:1017")?.dests[0]
        ?.weight,
    ).toBe(4);

    // an operator deletes a vigil service by hand: repaired at the next resync, not before
    kernel.table.delete("tcp 192.0.2.1:1003");
    expect(sync.sync(changed, new Set()).ops).toEqual([]);
    sync.resync();
    const third = sync.sync(changed, new Set());
    expect([third.dumped, third.ops.map((o) => o.op)]).toEqual([
      true,
      ["add-service", "add-dest", "add-dest", "add-dest"],
    ]);
  });

  test("IpvsTableSync: a refusal reads the kernel again at the next sync; status shows what the kernel has", () => {
    const kernel = new FakeIpvsKernel();
    kernel.schedulers.delete("ovf");
    const client = IpvsClient.open(kernel);
    const ok: DesiredService = { key: K1, sched: "rr", dests: [d("198.51.100.1")] };
    const bad: DesiredService = { key: K2, sched: "ovf", dests: [d("2001:db8:1::1")] };
    const sync = new IpvsTableSync(client);
    const r1 = sync.sync([ok, bad], new Set());
    expect(r1.result.errors.map((e) => [e.op, e.service, e.code])).toEqual([
      ["add-service", "udp [2001:db8::1]:53", "ENOENT"],
    ]);
    expect(r1.result.skipped).toBe(1);
    expect(sync.kernelView().map((s) => serviceKeyString(s.service.key))).toEqual(["tcp 192.0.2.1:80"]);
    expect(sync.willDump).toBe(true);
    kernel.schedulers.add("ovf");
    const r2 = sync.sync([ok, bad], new Set());
    expect([r2.dumped, r2.ops.map((o) => o.op), r2.result.errors]).toEqual([
      true,
      ["add-service", "add-dest"],
      [],
    ]);
    expect(sync.willDump).toBe(false);
  });
});
