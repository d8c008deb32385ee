// Batched netlink (agent/wire/netlink-batch.ts): datagram planning, seq/ACK stamping, answers matched
// back by seq in both ack modes, lost answers; and IpvsClient's batched apply on the fake kernel.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { applyOps, IpvsClient } from "../../agent/lvs/ipvs-client.ts";
import { type DesiredService, reconcile } from "../../agent/lvs/reconcile.ts";
import {
  buildDelDest,
  buildDelService,
  buildNewDest,
  buildNewService,
  buildSetDest,
  buildSetService,
  IpvsRequestWriter,
  serviceKeyString,
} from "../../agent/wire/ipvs.ts";
import {
  align4,
  decodeNlMsgs,
  encodeNlMsg,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
} from "../../agent/wire/netlink.ts";
import {
  type AckMode,
  ChunkAnswers,
  encodeChunk,
  planChunks,
  seqRange,
} from "../../agent/wire/netlink-batch.ts";
import { FakeIpvsKernel, kernelAnswer } from "./ipvs-fake-kernel.ts";

const msgArb = fc
  .record({
    type: fc.integer({ min: 0x10, max: 0xffff }),
    flags: fc.integer({ min: 0, max: 0xffff }).map((f) => f & ~NLM_F_DUMP),
    body: fc.uint8Array({ maxLength: 90 }),
  })
  .map((r) => encodeNlMsg({ type: r.type, flags: r.flags, seq: 77, pid: 5 }, r.body));
const modeArb = fc.constantFrom<AckMode>("each", "errors");

describe("planChunks", () => {
  test("contiguous ranges covering every request, each within the limits (an oversized one alone)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 16, max: 400 }), { maxLength: 200 }),
        fc.integer({ min: 16, max: 2000 }),
        fc.integer({ min: 1, max: 40 }),
        (sizes, maxBytes, maxMsgs) => {
          const chunks = planChunks(sizes, { maxBytes, maxMsgs });
          let next = 0;
          for (const [from, to] of chunks) {
            expect(from).toBe(next);
            expect(to).toBeGreaterThan(from);
            next = to;
            const bytes = sizes.slice(from, to).reduce((a, n) => a + align4(n), 0);
            expect(to - from).toBeLessThanOrEqual(maxMsgs);
            if (to - from > 1) expect(bytes).toBeLessThanOrEqual(maxBytes);
            // greedy: the next request would not have fitted
            if (to < sizes.length)
              expect(to - from === maxMsgs || bytes + align4(sizes[to]!) > maxBytes).toBe(true);
          }
          expect(next).toBe(sizes.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe("encodeChunk", () => {
  test("the same messages back to back, seq numbered, pid 0, ACK on each or on the last only", () => {
    fc.assert(
      fc.property(fc.array(msgArb, { minLength: 1, maxLength: 20 }), modeArb, fc.nat(), (msgs, mode, s) => {
        const first = seqRange(s, msgs.length);
        const d = encodeChunk(msgs, 0, msgs.length, first, mode);
        const dec = decodeNlMsgs(d);
        if (!dec.ok) throw new Error(String(dec.error));
        expect(dec.value.length).toBe(msgs.length);
        dec.value.forEach((m, i) => {
          const orig = decodeNlMsgs(msgs[i]!);
          if (!orig.ok) throw new Error("bad input");
          const o = orig.value[0]!;
          expect([m.type, m.seq, m.pid]).toEqual([o.type, (first + i) >>> 0, 0]);
          expect(m.payload).toEqual(o.payload);
          expect(m.flags & NLM_F_REQUEST).toBe(NLM_F_REQUEST);
          const acked = mode === "each" || i === msgs.length - 1;
          expect((m.flags & NLM_F_ACK) !== 0).toBe(acked);
          expect(m.flags & ~(NLM_F_ACK | NLM_F_REQUEST)).toBe(o.flags & ~(NLM_F_ACK | NLM_F_REQUEST));
        });
      }),
      { numRuns: 300 },
    );
  });

  test("dumps cannot be batched; seqRange never wraps inside a chunk nor uses 0", () => {
    const dump = encodeNlMsg({ type: 0x20, flags: NLM_F_DUMP });
    expect(() => encodeChunk([dump], 0, 1, 1, "each")).toThrow(RangeError);
    expect(seqRange(0, 5)).toBe(1);
    expect(seqRange(0xfffffffe, 5)).toBe(1);
    expect(seqRange(0xfffffff0, 5)).toBe(0xfffffff0);
  });
});

describe("ChunkAnswers", () => {
  // a kernel that answers in order: an error for each failure, an ACK where one was asked for; plus
  // noise: answers to other sequence numbers and a non-error message
  const outcomesArb = fc.array(fc.constantFrom(0, 0, 0, 2, 3, 17), { minLength: 1, maxLength: 30 });

  test("every failure is matched to its own request; silence is success only in 'errors' mode", () => {
    fc.assert(
      fc.property(outcomesArb, modeArb, fc.nat(), (errnos, mode, s) => {
        const msgs = errnos.map((_, i) => encodeNlMsg({ type: 0x20 + i, flags: 0 }));
        const first = seqRange(s, msgs.length);
        const d = encodeChunk(msgs, 0, msgs.length, first, mode);
        const dec = decodeNlMsgs(d);
        if (!dec.ok) throw new Error("bad chunk");
        const answers = new ChunkAnswers(first, msgs.length, mode);
        answers.feed(kernelAnswer(encodeNlMsg({ type: 0x20, flags: 0, seq: (first - 1) >>> 0 }), 1));
        answers.feed(encodeNlMsg({ type: NLMSG_DONE, flags: 0, seq: first }, new Uint8Array(4)));
        let off = 0;
        dec.value.forEach((m, i) => {
          const bytes = d.subarray(off, off + 16 + m.payload.length);
          off += align4(16 + m.payload.length);
          if (errnos[i] !== 0 || m.flags & NLM_F_ACK) {
            expect(answers.complete).toBe(false);
            expect(answers.feed(kernelAnswer(bytes, errnos[i]!)).ok).toBe(true);
          }
        });
        expect(answers.complete).toBe(true);
        const out = answers.finish(new NetlinkError("ENOBUFS", 105));
        expect(out.map((o) => (o === null ? 0 : o.errno))).toEqual(errnos);
        // the refusal names the request: type of the message it answers
        out.forEach((o, i) => {
          if (o) expect(o.requestType).toBe(0x20 + i);
        });
      }),
      { numRuns: 300 },
    );
  });

  test("answers dropped (ENOBUFS): the unanswered requests are lost, not assumed done", () => {
    const msgs = [0, 1, 2, 3].map((i) => encodeNlMsg({ type: 0x20 + i, flags: 0 }));
    for (const mode of ["each", "errors"] as const) {
      const d = encodeChunk(msgs, 0, 4, 10, mode);
      const answers = new ChunkAnswers(10, 4, mode);
      // only the first request's answer (an error) made it
      answers.feed(kernelAnswer(d.subarray(0, 20), 17));
      const out = answers.finish(new NetlinkError("ENOBUFS", 105), false);
      expect(out.map((o) => o?.code)).toEqual(["EEXIST", "ENOBUFS", "ENOBUFS", "ENOBUFS"]);
    }
  });

  test("any bytes: a typed result, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), modeArb, (bytes, mode) => {
        const a = new ChunkAnswers(1, 3, mode);
        a.feed(bytes);
        expect(a.finish(new NetlinkError("ENOBUFS", 105)).length).toBe(3);
      }),
      { numRuns: 500 },
    );
  });
});

describe("IpvsRequestWriter", () => {
  test("many requests in one growing buffer: byte for byte the single-message builders", () => {
    const w = new IpvsRequestWriter(42, 16);
    const want: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) {
      const key = { af: 4 as const, protocol: "tcp" as const, addr: `192.0.2.${i % 250}`, port: i };
      const svc = { key, sched: "wlc", flags: 0, timeout: 0, netmask: 32, peName: "sip" };
      const dest = {
        af: 6 as const,
        addr: "2001:db8::9",
        port: 80,
        fwd: "tunnel" as const,
        weight: i,
        upperThreshold: 1,
        lowerThreshold: 0,
        tunType: "gue" as const,
        tunPort: 6080,
        tunFlags: 1,
      };
      w.newService(svc);
      w.setService(svc);
      w.newDest(key, dest);
      w.setDest(key, dest);
      w.delDest(key, dest);
      w.delService(key);
      want.push(
        buildNewService(42, svc),
        buildSetService(42, svc),
        buildNewDest(42, key, dest),
        buildSetDest(42, key, dest),
        buildDelDest(42, key, dest),
        buildDelService(42, key),
      );
    }
    const got = w.messages();
    expect(got.length).toBe(want.length);
    for (let i = 0; i < got.length; i++) expect(got[i]).toEqual(want[i]!);
  });
});

describe("batched IPVS apply on the fake kernel", () => {
  const table = (n: number): DesiredService[] =>
    Array.from({ length: n }, (_, i) => ({
      key: { af: 4 as const, protocol: "tcp" as const, addr: "192.0.2.1", port: 1000 + i },
      sched: i === 7 ? "ovf" : "wlc",
      dests: [1, 2, 3].map((r) => ({ addr: `198.51.100.${r}`, port: 80, fwd: "masq" as const, weight: 1 })),
    }));

  for (const mode of ["each", "errors"] as const) {
    test(`${mode}: a failing service fails alone, named, across datagrams; the rest is programmed`, () => {
      const kernel = new FakeIpvsKernel();
      kernel.schedulers.delete("ovf");
      kernel.ackMode = mode;
      kernel.batchLimits = { maxBytes: 2000, maxMsgs: 13 };
      const client = IpvsClient.open(kernel);
      const ops = reconcile(table(20), []);
      const res = applyOps(client, ops);
      expect(kernel.datagrams.length).toBeGreaterThan(5);
      expect(kernel.datagrams.reduce((a, n) => a + n, 0)).toBe(ops.length);
      expect(res.errors.map((e) => [e.op, e.service, e.code])).toEqual([
        ["add-service", "tcp 192.0.2.1:1007", "ENOENT"],
      ]);
      expect([res.applied, res.skipped]).toEqual([ops.length - 4, 3]);
      expect(kernel.table.size).toBe(19);
      for (const [name, e] of kernel.table) {
        expect(name).not.toBe(serviceKeyString(table(20)[7]!.key));
        expect(e.dests.size).toBe(3);
      }
    });
  }

  test("a dest refused in the middle is reported with its dest; the ops after it still run", () => {
    const kernel = new FakeIpvsKernel();
    const client = IpvsClient.open(kernel);
    applyOps(client, reconcile(table(3).slice(0, 2), []));
    kernel.table.get("tcp 192.0.2.1:1000")?.dests.delete("198.51.100.2:80");
    // the fake's state now differs from what reconcile believes: editing the missing dest fails
    const ops = reconcile(
      table(3)
        .slice(0, 2)
        .map((s) => ({ ...s, dests: s.dests.map((x) => ({ ...x, weight: 2 })) })),
      [
        ...table(2).map((s) => ({
          service: { key: s.key, sched: s.sched, flags: 0, timeout: 0, netmask: 32 },
          dests: s.dests.map((x) => ({ af: 4 as const, ...x, upperThreshold: 0, lowerThreshold: 0 })),
        })),
      ],
    );
    const res = applyOps(client, ops);
    expect(res.errors.map((e) => [e.op, e.service, e.dest, e.code])).toEqual([
      ["edit-dest", "tcp 192.0.2.1:1000", "198.51.100.2:80", "ENOENT"],
    ]);
    expect(res.applied).toBe(ops.length - 1);
    expect([...kernel.table.get("tcp 192.0.2.1:1001")!.dests.values()].map((x) => x.weight)).toEqual([
      2, 2, 2,
    ]);
  });

  test("answers lost to a full receive buffer: those ops are reported ENOBUFS, none assumed done", () => {
    const kernel = new FakeIpvsKernel();
    kernel.ackMode = "each";
    kernel.answerRoom = 5;
    const client = IpvsClient.open(kernel);
    const ops = reconcile(
      table(3).filter((s) => s.sched !== "ovf"),
      [],
    );
    const res = applyOps(client, ops);
    expect(res.applied).toBe(5);
    expect(res.errors.every((e) => e.code === "ENOBUFS")).toBe(true);
    expect(res.errors.length + res.skipped).toBe(ops.length - 5);
  });
});
