// netlink framing, rtnetlink address/link messages, and Kernel's logic on a fake kernel.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  type AddrInfo,
  decodeKernelEvents,
  Kernel,
  type KernelEvent,
  type NetlinkWatcher,
  type NotificationSource,
} from "../../agent/net/kernel.ts";
import { errnoName, errnoNumber } from "../../agent/wire/errno.ts";
import { formatIp } from "../../agent/wire/ip.ts";
import {
  AttrSet,
  decodeAttrs,
  decodeNlAck,
  decodeNlMsgs,
  encodeAttrs,
  encodeNlMsg,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_ACK_TLVS,
  NLM_F_CAPPED,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_EXCL,
  NLM_F_MULTI,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  type NlAttr,
  type NlAttrSpec,
  type NlMsg,
  nla,
} from "../../agent/wire/netlink.ts";
import {
  type AddrSpec,
  AF_INET,
  AF_INET6,
  buildAddrRequest,
  buildGetAddrDump,
  buildGetLink,
  buildLinkMessage,
  decodeAddrMessage,
  decodeLinkMessage,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_F_SECONDARY,
  IFA_F_TENTATIVE,
  IFA_FLAGS,
  IFA_LABEL,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  RT_SCOPE_LINK,
  RTM_DELADDR,
  RTM_GETADDR,
  RTM_GETLINK,
  RTM_NEWADDR,
  RTM_NEWLINK,
} from "../../agent/wire/rtnetlink.ts";

// Captured with NetlinkSocket in a lab namespace (eth0 = veth, 02:00:00:00:00:02, 192.0.2.2/24).
const CAPTURED_ADDR =
  "5000000014000200329c9513391a0000021880000200000008000100c000020208000200c0000202090003006574683000000000080008008000000014000600ffffffffffffffffdfb10100dfb10100";
const CAPTURED_LINK =
  "7004000010000000339c9513391a00000000010002000000431001000000000009000300657468300000000008000d00e803000005001000060000000500110000000000050043000000000008000400dc050000080032004400000008003300ffff000008001b000000000008001e000000000008003d000000000008001f000200000008002800ffff0000080029000000010008003a000000010008003f0000000100080040000000010008003b00f8ff070008003c00ffff0000080042000000000008002000020000000500210001000000080023000200000008002f000100000008003000010000000600440000000000060045000000000005002700000000000a00010002000000000200000a000200ffffffffffff0000cc001700010000000000000003000000000000005a00000000000000fa000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000006400070001000000030000005a000000fa00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000c002b00050002000000000010001200090001007665746800000000080025000000000008000500030000000c0006006e6f717565756500c0011a008c00020088000100000000000000000000000000010000000100000001000000010000000000000001000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010270000e8030000000000000000000000000000000000000100000030010a00080001001000008014000500ffff0000dfb10100e4a80000e8030000f40002000000000040000000dc05000001000000010000000100000001000000ffffffffa00f0000e803000000000000803a0900805101000300000058020000100000000000000001000000010000000100000060ea000000000000000000000000000000000000000000000000000000000000000000000000000010270000e8030000010000000000000000000000010000000000000000000000010000000000000000000000000000000000000080ee360000000000000000000100000000000000000000000000000000000000000000000004000000000000ffff0000ffffffff010000000000000000000000000000001400070000000000000000000000000000000000050008000000000024000e00000000000000000000000000000000000000000000000000000000000000000004003e8004004180";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

function one(bytes: Uint8Array): NlMsg {
  const r = decodeNlMsgs(bytes);
  if (!r.ok) throw new Error(String(r.error));
  expect(r.value.length).toBe(1);
  return r.value[0]!;
}

describe("errno names", () => {
  test("table and fallback", () => {
    expect(errnoName(17)).toBe("EEXIST");
    expect(errnoName(99)).toBe("EADDRNOTAVAIL");
    expect(errnoName(19)).toBe("ENODEV");
    expect(errnoName(9999)).toBe("ERRNO_9999");
    expect(errnoNumber("EPERM")).toBe(1);
    expect(errnoNumber("nope")).toBeUndefined();
  });
});

describe("netlink encoding against hand-checked bytes", () => {
  test("RTM_GETADDR dump request", () => {
    // len 24 | type 22 | REQUEST|DUMP | seq 0 | pid 0 | ifaddrmsg all zero
    expect(hex(buildGetAddrDump())).toBe(
      "18000000" + "1600" + "0103" + "00000000" + "00000000" + "0000000000000000",
    );
    expect(one(buildGetAddrDump(6)).payload[0]).toBe(AF_INET6);
    expect(one(buildGetAddrDump(4)).payload[0]).toBe(AF_INET);
  });

  test("RTM_NEWADDR 192.0.2.100/24 label eth0:vip on ifindex 2", () => {
    const msg = buildAddrRequest(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK, {
      family: 4,
      ifindex: 2,
      address: "192.0.2.100",
      prefixLen: 24,
      label: "eth0:vip",
    });
    expect(hex(msg)).toBe(
      [
        "38000000 1400 0506 00000000 00000000", // len 56, RTM_NEWADDR, REQUEST|ACK|EXCL|CREATE
        "02 18 00 00 02000000", // AF_INET, /24, flags 0, scope universe, ifindex 2
        "0800 0200 c0000264", // IFA_LOCAL
        "0800 0100 c0000264", // IFA_ADDRESS
        "0d00 0300 65746830 3a766970 00 000000", // IFA_LABEL "eth0:vip" + NUL, 13 bytes + 3 padding
      ]
        .join("")
        .replace(/\s+/g, ""),
    );
  });

  test("IPv6 address flags above 0xff go into IFA_FLAGS; labels are not sent for IPv6", () => {
    const msg = buildAddrRequest(RTM_NEWADDR, 0, {
      family: 6,
      ifindex: 3,
      address: "2001:db8::100",
      prefixLen: 64,
      label: "eth0:x",
      flags: IFA_F_NODAD | IFA_F_NOPREFIXROUTE,
    });
    const m = one(msg);
    expect(m.payload[0]).toBe(AF_INET6);
    expect(m.payload[2]).toBe(IFA_F_NODAD); // low byte in ifa_flags
    const attrs = AttrSet.parse(m.payload.subarray(8));
    if (!attrs.ok) throw new Error("attrs");
    expect(attrs.value.u32(IFA_FLAGS)).toBe(0x202);
    expect(attrs.value.has(IFA_LABEL)).toBe(false);
    expect(hex(attrs.value.bytes(2)!)).toBe("20010db8000000000000000000000100");
  });

  test("nested attributes set NLA_F_NESTED and pad every attribute", () => {
    const b = encodeAttrs([nla.nested(1, [nla.u16(2, 0x1234), nla.str(3, "ab")]), nla.u8(4, 7)]);
    expect(hex(b)).toBe(
      [
        "1400 0180", // len 20, type 1 | NLA_F_NESTED
        "0600 0200 3412 0000", // u16, padded
        "0700 0300 616200 00", // "ab" + NUL, padded
        "0500 0400 07 000000", // u8, padded
      ]
        .join("")
        .replace(/\s+/g, ""),
    );
  });

  test("number attribute encoders", () => {
    expect(hex(encodeAttrs([nla.u32(1, 0xdeadbeef)]))).toBe("08000100efbeadde");
    expect(hex(encodeAttrs([nla.u16be(1, 80)]))).toBe("0600010000500000");
    expect(hex(encodeAttrs([nla.u32be(1, 0x01020304)]))).toBe("0800010001020304");
    expect(hex(encodeAttrs([nla.i32(1, -2)]))).toBe("08000100feffffff");
    expect(hex(encodeAttrs([nla.u64(1, 1n)]))).toBe("0c0001000100000000000000");
    expect(hex(encodeAttrs([nla.flag(9)]))).toBe("04000900");
  });

  test("message header with several payload parts, seq and pid", () => {
    const m = encodeNlMsg(
      { type: 0x10, flags: NLM_F_REQUEST, seq: 7, pid: 9 },
      Uint8Array.of(1, 2),
      Uint8Array.of(3),
    );
    // parts start at aligned offsets: 16, then 20; len = 21, buffer padded to 24
    expect(hex(m)).toBe("15000000" + "1000" + "0100" + "07000000" + "09000000" + "01020000" + "03000000");
  });

  test("RTM_GETLINK by name asks the kernel to skip statistics", () => {
    const m = one(buildGetLink({ name: "eth0" }));
    expect(m.type).toBe(RTM_GETLINK);
    expect(m.flags).toBe(NLM_F_REQUEST);
    const attrs = AttrSet.parse(m.payload.subarray(16));
    if (!attrs.ok) throw new Error("attrs");
    expect(attrs.value.str(3)).toBe("eth0");
    expect(attrs.value.u32(29)).toBe(8);
    expect(one(buildGetLink("dump")).flags).toBe(NLM_F_REQUEST | NLM_F_DUMP);
  });
});

describe("netlink decoding", () => {
  test("a datagram of several messages; the last may omit its padding", () => {
    const a = encodeNlMsg({ type: 20, flags: NLM_F_MULTI, seq: 1 }, Uint8Array.of(1, 2, 3, 4, 5));
    const b = encodeNlMsg({ type: NLMSG_DONE, flags: NLM_F_MULTI, seq: 1 }, Uint8Array.of(0, 0, 0, 0));
    const r = decodeNlMsgs(new Uint8Array([...a, ...b]));
    expect(r.ok && r.value.map((m) => [m.type, m.payload.length])).toEqual([
      [20, 5],
      [NLMSG_DONE, 4],
    ]);
    const unpadded = a.subarray(0, 21);
    expect(decodeNlMsgs(unpadded).ok).toBe(true);
  });

  test("framing errors are typed", () => {
    const a = encodeNlMsg({ type: 20, flags: 0 }, Uint8Array.of(1, 2, 3, 4));
    const reason = (b: Uint8Array) => {
      const r = decodeNlMsgs(b);
      return r.ok ? "ok" : r.error.reason;
    };
    expect(reason(a.subarray(0, 10))).toBe("netlink_short_header");
    expect(reason(a.subarray(0, 18))).toBe("netlink_truncated");
    const bad = a.slice();
    bad[0] = 8;
    expect(reason(bad)).toBe("netlink_bad_length");
    expect(reason(new Uint8Array(0))).toBe("ok");
  });

  test("attribute errors are typed; a trailing fragment is tolerated", () => {
    const reason = (b: Uint8Array) => {
      const r = decodeAttrs(b);
      return r.ok ? `ok:${r.value.length}` : r.error.reason;
    };
    expect(reason(unhex("0800 0100 01020304 00"))).toBe("ok:1");
    expect(reason(unhex("0200 0100"))).toBe("nla_bad_length");
    expect(reason(unhex("0900 0100 01020304"))).toBe("nla_truncated");
  });

  test("AttrSet readers: absent or short attributes are undefined, strings stop at NUL", () => {
    const r = AttrSet.parse(
      encodeAttrs([nla.u8(1, 5), nla.str(2, "eth0"), nla.bytes(3, Uint8Array.of(65, 66))]),
    );
    if (!r.ok) throw new Error("parse");
    const a = r.value;
    expect(a.u8(1)).toBe(5);
    expect(a.u32(1)).toBeUndefined();
    expect(a.str(2)).toBe("eth0");
    expect(a.str(3)).toBe("AB"); // no NUL: tolerated
    expect(a.u16(9)).toBeUndefined();
    expect(a.nested(9)).toBeUndefined();
  });

  test("ACK, plain error, and error with extended ack message", () => {
    const req = { type: RTM_NEWADDR, flags: 0x605, seq: 42, pid: 0 };
    const errMsg = (errno: number, flags: number, tlvs: Uint8Array = new Uint8Array(0)) => {
      const body = new Uint8Array(20 + tlvs.length);
      const dv = new DataView(body.buffer);
      dv.setInt32(0, -errno, true);
      dv.setUint32(4, 56, true);
      dv.setUint16(8, req.type, true);
      dv.setUint16(10, req.flags, true);
      dv.setUint32(12, req.seq, true);
      body.set(tlvs, 20);
      return one(encodeNlMsg({ type: NLMSG_ERROR, flags, seq: 42 }, body));
    };
    const ack = decodeNlAck(errMsg(0, NLM_F_CAPPED));
    expect(ack.ok && ack.value).toMatchObject({
      errno: 0,
      code: "OK",
      request: { type: RTM_NEWADDR, seq: 42 },
    });
    const eexist = decodeNlAck(errMsg(17, NLM_F_CAPPED));
    expect(eexist.ok && eexist.value.code).toBe("EEXIST");
    const withText = decodeNlAck(
      errMsg(
        22,
        NLM_F_CAPPED | NLM_F_ACK_TLVS,
        encodeAttrs([nla.str(1, "Label must begin with interface name")]),
      ),
    );
    expect(withText.ok && withText.value).toMatchObject({
      code: "EINVAL",
      extAck: "Label must begin with interface name",
    });
    const short = decodeNlAck({ type: NLMSG_ERROR, flags: 0, seq: 0, pid: 0, payload: new Uint8Array(8) });
    expect(short.ok ? "" : short.error.reason).toBe("netlink_short_error");
    const e = new NetlinkError("EEXIST", 17, "File exists", RTM_NEWADDR);
    expect(e.message).toBe("netlink: EEXIST: File exists (type 20)");
  });

  test("kernel bytes: RTM_NEWADDR for 192.0.2.2/24 on eth0 (captured from a lab node's dump)", () => {
    const m = decodeAddrMessage(one(unhex(CAPTURED_ADDR)));
    expect(m.ok && m.value).toEqual({
      family: 4,
      prefixLen: 24,
      flags: 0x80, // IFA_F_PERMANENT, from IFA_FLAGS
      scope: 0,
      ifindex: 2,
      address: "192.0.2.2",
      local: "192.0.2.2",
      label: "eth0",
    });
  });

  test("kernel bytes: RTM_NEWLINK for a veth eth0 (captured, 1136 bytes with stats and nested info)", () => {
    const m = decodeLinkMessage(one(unhex(CAPTURED_LINK)));
    if (!m.ok) throw new Error(String(m.error));
    expect({ ...m.value, mac: hex(m.value.mac!) }).toEqual({
      family: 0,
      hwType: 1,
      ifindex: 2,
      flags: 0x11043, // UP BROADCAST RUNNING MULTICAST LOWER_UP
      change: 0,
      name: "eth0",
      mac: "020000000002",
      mtu: 1500,
      operstate: 6,
      link: 3,
      kind: "veth",
    });
  });
});

describe("property: decoders never throw", () => {
  const bytes = fc.uint8Array({ maxLength: 300 });
  const anyMsg = fc.record({
    type: fc.constantFrom(
      RTM_NEWADDR,
      RTM_DELADDR,
      RTM_GETADDR,
      RTM_NEWLINK,
      17,
      RTM_GETLINK,
      NLMSG_ERROR,
      99,
    ),
    flags: fc.integer({ min: 0, max: 0xffff }),
    seq: fc.nat(),
    pid: fc.nat(),
    payload: bytes,
  });

  const isResult = (r: { ok: boolean }) => typeof r.ok === "boolean";

  test("framing and attributes", () => {
    fc.assert(
      fc.property(bytes, (b) => {
        expect(isResult(decodeNlMsgs(b))).toBe(true);
        expect(isResult(decodeAttrs(b))).toBe(true);
        const s = AttrSet.parse(b);
        if (s.ok) {
          for (const t of [0, 1, 2, 3, 8]) {
            s.value.u8(t);
            s.value.u16(t);
            s.value.u32(t);
            s.value.i32(t);
            s.value.u64(t);
            s.value.u16be(t);
            s.value.str(t);
            s.value.nested(t);
          }
        }
        expect(isResult(decodeKernelEvents(b))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test("message bodies", () => {
    fc.assert(
      fc.property(anyMsg, (m) => {
        expect(isResult(decodeAddrMessage(m))).toBe(true);
        expect(isResult(decodeLinkMessage(m))).toBe(true);
        expect(isResult(decodeNlAck(m))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test("well-framed messages with random bodies (exercise the inner decoders)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.constantFrom(16, 17, 20, 21, 3, 2), body: bytes }), { maxLength: 5 }),
        (parts) => {
          const dgram = new Uint8Array(
            parts.flatMap((p) => [...encodeNlMsg({ type: p.type, flags: 0 }, p.body)]),
          );
          const r = decodeKernelEvents(dgram);
          expect(r.ok).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("property: round trips", () => {
  const attrTree: fc.Arbitrary<NlAttrSpec> = fc.letrec<{ node: NlAttrSpec }>((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.record({ type: fc.integer({ min: 0, max: 0x3fff }), value: fc.uint8Array({ maxLength: 20 }) }),
      fc.record({
        type: fc.integer({ min: 0, max: 0x3fff }),
        value: fc.array(tie("node"), { maxLength: 3 }),
      }),
    ),
  })).node;

  function decodeTree(list: NlAttr[], shape: readonly NlAttrSpec[]): NlAttrSpec[] {
    return list.map((a, i) => {
      const s = shape[i]!;
      if (s.value instanceof Uint8Array) return { type: a.type, value: a.value.slice() };
      const inner = decodeAttrs(a.value);
      if (!inner.ok) throw new Error("nested decode");
      return { type: a.type, value: decodeTree(inner.value, s.value) };
    });
  }

  test("attributes", () => {
    fc.assert(
      fc.property(fc.array(attrTree, { maxLength: 4 }), (attrs) => {
        const r = decodeAttrs(encodeAttrs(attrs));
        if (!r.ok) throw new Error(String(r.error));
        r.value.forEach((a, i) => {
          expect(a.nested).toBe(!(attrs[i]!.value instanceof Uint8Array));
        });
        const norm = (l: readonly NlAttrSpec[]): unknown =>
          l.map((a) => ({
            type: a.type,
            value: a.value instanceof Uint8Array ? hex(a.value) : norm(a.value),
          }));
        expect(norm(decodeTree(r.value, attrs))).toEqual(norm(attrs));
      }),
    );
  });

  const addrSpec: fc.Arbitrary<AddrSpec> = fc
    .record({
      family: fc.constantFrom(4 as const, 6 as const),
      v4: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      v6: fc.uint8Array({ minLength: 16, maxLength: 16 }),
      ifindex: fc.integer({ min: 1, max: 0x7fffffff }),
      prefixLen: fc.integer({ min: 0, max: 128 }),
      flags: fc.integer({ min: 0, max: 0xfff }),
      scope: fc.constantFrom(0, 200, 253, 254),
      label: fc.option(fc.stringMatching(/^[a-z0-9:]{1,14}$/), { nil: undefined }),
    })
    .map((r) => {
      const spec: AddrSpec = {
        family: r.family,
        ifindex: r.ifindex,
        address: formatIp(r.family === 4 ? r.v4 : r.v6, 0, r.family),
        prefixLen: r.prefixLen,
        flags: r.flags,
        scope: r.scope,
      };
      if (r.label !== undefined) spec.label = r.label;
      return spec;
    });

  test("address messages", () => {
    fc.assert(
      fc.property(addrSpec, (s) => {
        const m = decodeAddrMessage(one(buildAddrRequest(RTM_NEWADDR, 0, s)));
        if (!m.ok) throw new Error(String(m.error));
        expect(m.value.family).toBe(s.family);
        expect(m.value.ifindex).toBe(s.ifindex);
        expect(m.value.prefixLen).toBe(s.prefixLen);
        expect(m.value.scope).toBe(s.scope ?? 0);
        expect(m.value.local).toBe(s.address);
        expect(m.value.address).toBe(s.address);
        // flags that fit the byte come back from ifa_flags, larger ones from IFA_FLAGS
        expect(m.value.flags).toBe(s.flags ?? 0);
        expect(m.value.label).toBe(s.family === 4 ? s.label : undefined);
      }),
    );
  });

  test("link messages", () => {
    fc.assert(
      fc.property(
        fc.record({
          ifindex: fc.integer({ min: 1, max: 0x7fffffff }),
          flags: fc.nat(),
          name: fc.stringMatching(/^[a-z0-9]{1,15}$/),
          mac: fc.uint8Array({ minLength: 6, maxLength: 6 }),
          mtu: fc.integer({ min: 68, max: 65535 }),
          operstate: fc.integer({ min: 0, max: 6 }),
          kind: fc.constantFrom("veth", "bridge", "macvlan"),
        }),
        (l) => {
          const m = decodeLinkMessage(one(buildLinkMessage(RTM_NEWLINK, 0, l)));
          if (!m.ok) throw new Error(String(m.error));
          expect({ ...m.value, mac: hex(m.value.mac!) }).toEqual({
            ...l,
            mac: hex(l.mac),
            family: 0,
            hwType: 0,
            change: 0,
          });
        },
      ),
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Kernel on a fake kernel: a function from request to reply messages, with kernel-like errors

interface FakeLink {
  ifindex: number;
  name: string;
  flags: number;
  mac: Uint8Array;
  mtu: number;
  operstate: number;
}

class FakeKernel {
  readonly requests: NlMsg[] = [];
  links: FakeLink[] = [
    {
      ifindex: 1,
      name: "lo",
      flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP | 8,
      mac: new Uint8Array(6),
      mtu: 65536,
      operstate: 0,
    },
    {
      ifindex: 2,
      name: "eth0",
      flags: IFF_UP | IFF_RUNNING | IFF_LOWER_UP,
      mac: unhex("020000000002"),
      mtu: 1500,
      operstate: 6,
    },
  ];
  addrs: AddrSpec[] = [
    { family: 4, ifindex: 1, address: "127.0.0.1", prefixLen: 8, scope: 254, label: "lo", flags: 0x80 },
    { family: 4, ifindex: 2, address: "192.0.2.2", prefixLen: 24, label: "eth0", flags: 0x80 },
    {
      family: 4,
      ifindex: 2,
      address: "192.0.2.3",
      prefixLen: 24,
      label: "eth0",
      flags: 0x80 | IFA_F_SECONDARY,
    },
    { family: 6, ifindex: 2, address: "2001:db8::2", prefixLen: 64, flags: 0x80 },
    {
      family: 6,
      ifindex: 2,
      address: "fe80::1",
      prefixLen: 64,
      scope: RT_SCOPE_LINK,
      flags: 0x80 | IFA_F_TENTATIVE,
    },
    { family: 6, ifindex: 2, address: "fe80::2", prefixLen: 64, scope: RT_SCOPE_LINK, flags: 0x80 },
  ];

  request = (bytes: Uint8Array): Uint8Array[] => {
    const m = one(bytes);
    this.requests.push(m);
    switch (m.type) {
      case RTM_GETLINK: {
        if ((m.flags & NLM_F_DUMP) === NLM_F_DUMP)
          return this.links.map((l) => buildLinkMessage(RTM_NEWLINK, NLM_F_MULTI, l));
        const req = decodeLinkMessage(m);
        if (!req.ok) throw new NetlinkError("EINVAL", 22);
        const l = this.links.find((x) => x.ifindex === req.value.ifindex || x.name === req.value.name);
        if (!l) throw new NetlinkError("ENODEV", 19);
        return [buildLinkMessage(RTM_NEWLINK, 0, l)];
      }
      case RTM_GETADDR:
        return this.addrs.map((a) => buildAddrRequest(RTM_NEWADDR, NLM_F_MULTI, a));
      case RTM_NEWADDR: {
        const r = decodeAddrMessage(m);
        if (!r.ok) throw new NetlinkError("EINVAL", 22);
        const a = r.value;
        if (!this.links.some((l) => l.ifindex === a.ifindex)) throw new NetlinkError("ENODEV", 19);
        if (this.find(a.ifindex, a.local!, a.prefixLen) >= 0) throw new NetlinkError("EEXIST", 17);
        const spec: AddrSpec = {
          family: a.family,
          ifindex: a.ifindex,
          address: a.local!,
          prefixLen: a.prefixLen,
          flags: a.flags,
        };
        if (a.label) spec.label = a.label;
        this.addrs.push(spec);
        return [];
      }
      case RTM_DELADDR: {
        const r = decodeAddrMessage(m);
        if (!r.ok) throw new NetlinkError("EINVAL", 22);
        const i = this.find(r.value.ifindex, r.value.local!, r.value.prefixLen);
        if (i < 0) throw new NetlinkError("EADDRNOTAVAIL", 99);
        this.addrs.splice(i, 1);
        return [];
      }
      default:
        throw new NetlinkError("EOPNOTSUPP", 95);
    }
  };

  private find(ifindex: number, address: string, prefixLen: number): number {
    return this.addrs.findIndex(
      (x) => x.ifindex === ifindex && x.address === address && x.prefixLen === prefixLen,
    );
  }
}

describe("Kernel on a fake kernel", () => {
  const make = () => {
    const fake = new FakeKernel();
    return { fake, k: new Kernel({ request: fake.request }) };
  };

  test("links and one link by name or index", () => {
    const { k } = make();
    expect(k.links().map((l) => [l.ifindex, l.name, l.up, l.running, l.lowerUp, l.operstate, l.mtu])).toEqual(
      [
        [1, "lo", true, true, true, "unknown", 65536],
        [2, "eth0", true, true, true, "up", 1500],
      ],
    );
    expect(hex(k.link("eth0")!.mac)).toBe("020000000002");
    expect(k.link(2)?.name).toBe("eth0");
    expect(k.link("nope0")).toBeNull();
  });

  test("addresses, filtered by link, in kernel order", () => {
    const { k } = make();
    expect(k.addresses().length).toBe(6);
    const eth0 = k.addresses(2);
    expect(eth0.map((a) => a.address)).toEqual([
      "192.0.2.2",
      "192.0.2.3",
      "2001:db8::2",
      "fe80::1",
      "fe80::2",
    ]);
    expect(eth0[0]).toEqual({
      ifindex: 2,
      family: 4,
      address: "192.0.2.2",
      prefixLen: 24,
      label: "eth0",
      scope: 0,
      flags: 0x80,
    });
  });

  test("primaryAddress: IPv4 first non-secondary, IPv6 first usable link-local", () => {
    const { fake, k } = make();
    expect(k.primaryAddress(2, 4)).toBe("192.0.2.2");
    expect(k.primaryAddress(2, 6)).toBe("fe80::2");
    expect(k.primaryAddress(1, 6)).toBeNull();
    fake.addrs = fake.addrs.filter((a) => a.address !== "192.0.2.2");
    expect(k.primaryAddress(2, 4)).toBeNull(); // only a secondary left
  });

  test("addAddress is idempotent and sends keepalived's flags", () => {
    const { fake, k } = make();
    expect(k.addAddress(2, "192.0.2.100", 24, { label: "eth0:vip" })).toBe(true);
    expect(k.addAddress(2, "192.0.2.100", 24, { label: "eth0:vip" })).toBe(false);
    expect(
      k.addAddress(2, "2001:DB8:0::100", 64, { nodad: true, noPrefixRoute: true, label: "ignored" }),
    ).toBe(true);
    const req = fake.requests.filter((r) => r.type === RTM_NEWADDR);
    expect(
      req.every(
        (r) =>
          (r.flags & (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK)) === (NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK),
      ),
    ).toBe(true);
    const v6 = decodeAddrMessage(req[2]!);
    expect(v6.ok && v6.value).toMatchObject({
      family: 6,
      local: "2001:db8::100",
      flags: IFA_F_NODAD | IFA_F_NOPREFIXROUTE,
    });
    expect(v6.ok && v6.value.label).toBeUndefined();
    const v4 = decodeAddrMessage(req[0]!);
    expect(v4.ok && v4.value).toMatchObject({ family: 4, label: "eth0:vip", flags: 0 });
    const listed = k.addresses(2).find((a) => a.address === "2001:db8::100");
    expect(listed).toMatchObject({ family: 6, prefixLen: 64 });
    // nodad means nothing for IPv4
    k.addAddress(2, "192.0.2.101", 32, { nodad: true });
    const last = decodeAddrMessage(fake.requests.at(-1)!);
    expect(last.ok && last.value.flags).toBe(0);
  });

  test("addAddress failures other than EEXIST propagate as NetlinkError", () => {
    const { k } = make();
    expect(() => k.addAddress(9, "192.0.2.100", 24)).toThrow(NetlinkError);
    try {
      k.addAddress(9, "192.0.2.100", 24);
    } catch (e) {
      expect((e as NetlinkError).code).toBe("ENODEV");
    }
    expect(() => k.addAddress(2, "not-an-ip", 24)).toThrow(TypeError);
  });

  test("delAddress is idempotent", () => {
    const { fake, k } = make();
    expect(k.delAddress(2, "2001:db8::2", 64)).toBe(true);
    expect(k.delAddress(2, "2001:db8::2", 64)).toBe(false);
    expect(fake.addrs.some((a) => a.address === "2001:db8::2")).toBe(false);
    const req = fake.requests.filter((r) => r.type === RTM_DELADDR);
    expect(req[0]!.flags & NLM_F_ACK).toBe(NLM_F_ACK);
  });

  test("watch decodes notification datagrams into typed events and stops cleanly", () => {
    const { k } = make();
    let onPacket: ((d: { kind: "netlink"; data: Uint8Array; overrun: boolean }) => void) | undefined;
    const calls: string[] = [];
    const reader: NetlinkWatcher = {
      watch: (fd, kind, cb) => {
        calls.push(`watch ${fd} ${kind}`);
        onPacket = cb;
      },
      unwatch: (fd) => {
        calls.push(`unwatch ${fd}`);
      },
    };
    const source: NotificationSource = {
      open: () => {
        calls.push("open");
        return 42;
      },
      close: () => {
        calls.push("close");
      },
    };
    const kw = new Kernel({ request: () => [] }, source);
    const events: KernelEvent[] = [];
    const stop = kw.watch(reader, (e) => events.push(e));
    expect(() => kw.watch(reader, () => {})).toThrow();
    const down = buildLinkMessage(RTM_NEWLINK, 0, {
      ifindex: 2,
      name: "eth0",
      flags: IFF_UP,
      operstate: 2,
      mtu: 1500,
    });
    const bridgeView = buildLinkMessage(RTM_NEWLINK, 0, { family: 7, ifindex: 2, name: "eth0" });
    const addr = buildAddrRequest(RTM_DELADDR, 0, {
      family: 4,
      ifindex: 2,
      address: "192.0.2.100",
      prefixLen: 24,
    });
    const other = encodeNlMsg({ type: 24, flags: 0 }, new Uint8Array(12)); // RTM_NEWROUTE: not ours
    onPacket!({
      kind: "netlink",
      data: new Uint8Array([...down, ...bridgeView, ...other, ...addr]),
      overrun: false,
    });
    onPacket!({ kind: "netlink", data: new Uint8Array(0), overrun: true });
    onPacket!({ kind: "netlink", data: Uint8Array.of(1, 2, 3), overrun: false }); // garbage: ignored
    expect(events.length).toBe(3);
    expect(events[0]).toMatchObject({
      type: "link",
      action: "new",
      link: { name: "eth0", up: true, lowerUp: false, operstate: "down" },
    });
    expect(events[1]).toEqual({
      type: "addr",
      action: "del",
      addr: {
        ifindex: 2,
        family: 4,
        address: "192.0.2.100",
        prefixLen: 24,
        scope: 0,
        flags: 0,
      } satisfies AddrInfo,
    });
    expect(events[2]).toEqual({ type: "overrun" });
    stop();
    stop();
    expect(calls).toEqual(["open", "watch 42 netlink", "unwatch 42", "close"]);
    expect(() => k.watch(reader, () => {})).toThrow("no notification source");
  });
});
