// Generic netlink + IPVS codecs (hand-checked bytes, round trips, decoders never throw) and IpvsClient
// on a fake kernel.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { applyOps, IpvsClient, IpvsError, readTable } from "../../agent/lvs/ipvs-client.ts";
import {
  CTRL_ATTR_FAMILY_ID,
  CTRL_ATTR_FAMILY_NAME,
  CTRL_ATTR_MCAST_GROUPS,
  CTRL_ATTR_MCAST_GRP_ID,
  CTRL_ATTR_MCAST_GRP_NAME,
  CTRL_ATTR_VERSION,
  CTRL_CMD_NEWFAMILY,
  decodeFamily,
  decodeGenlMsg,
  encodeGenlMsg,
  encodeGetFamily,
  GENL_ID_CTRL,
} from "../../agent/wire/genetlink.ts";
import { formatIp } from "../../agent/wire/ip.ts";
import {
  buildDelDest,
  buildDelService,
  buildGetDests,
  buildGetServices,
  buildNewDest,
  buildNewService,
  decodeDestAttrs,
  decodeDestKeyAttrs,
  decodeDestMsg,
  decodeInfoMsg,
  decodeServiceAttrs,
  decodeServiceKeyAttrs,
  decodeServiceMsg,
  decodeStats,
  FWD_METHODS,
  IP_VS_SVC_F_HASHED,
  IP_VS_SVC_F_PERSISTENT,
  IP_VS_SVC_F_SCHED_SH_PORT,
  IP_VS_SVC_F_USER_MASK,
  IPVS_CMD_ATTR_SERVICE,
  IPVS_CMD_NEW_SERVICE,
  IPVS_STATS_ATTR_CONNS,
  IPVS_STATS_ATTR_INBYTES,
  IPVS_SVC_ATTR_AF,
  IPVS_SVC_ATTR_FLAGS,
  IPVS_SVC_ATTR_NETMASK,
  IPVS_SVC_ATTR_PORT,
  IPVS_SVC_ATTR_SCHED_NAME,
  IPVS_SVC_ATTR_STATS64,
  IPVS_SVC_ATTR_TIMEOUT,
  type IpvsDest,
  type IpvsService,
  type ServiceKey,
  serviceKeyString,
  TUN_TYPES,
} from "../../agent/wire/ipvs.ts";
import { encodeAttrs, NLM_F_DUMP, NLM_F_MULTI, NLM_F_REQUEST, nla } from "../../agent/wire/netlink.ts";
import { FAKE_IPVS_FAMILY, FakeIpvsKernel } from "./ipvs-fake-kernel.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

// ---------------------------------------------------------------------------------------------------
// arbitraries

const v4 = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }))
  .map(([a, b]) => `198.51.${a}.${b}`);
const v6 = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 6, maxLength: 6 })
  .map((g) => formatIp(Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...g.flatMap((x) => [x >> 8, x & 0xff])])));
const port = fc.integer({ min: 0, max: 0xffff });
const af = fc.constantFrom(4 as const, 6 as const);
export const serviceKeyArb: fc.Arbitrary<ServiceKey> = fc.oneof(
  af.chain((f) =>
    fc.record({
      af: fc.constant(f),
      protocol: fc.constantFrom("tcp" as const, "udp" as const, "sctp" as const),
      addr: f === 4 ? v4 : v6,
      port,
    }),
  ),
  fc.record({ af, fwmark: fc.integer({ min: 1, max: 0xffffffff }) }),
);
const serviceArb: fc.Arbitrary<IpvsService> = serviceKeyArb.chain((key) =>
  fc
    .record({
      sched: fc.constantFrom("rr", "wrr", "lc", "wlc", "sh", "mh", "fo"),
      flags: fc.integer({ min: 0, max: 0xffff }).map((f) => f & IP_VS_SVC_F_USER_MASK),
      timeout: fc.nat(),
      netmask: fc.integer({ min: 1, max: key.af === 4 ? 32 : 128 }),
      peName: fc.option(fc.constantFrom("sip"), { nil: undefined }),
    })
    .map((r) => {
      const s: IpvsService = { key, sched: r.sched, flags: r.flags, timeout: r.timeout, netmask: r.netmask };
      if (r.peName) s.peName = r.peName;
      return s;
    }),
);
const destArb: fc.Arbitrary<IpvsDest> = af.chain((f) =>
  fc
    .record({
      addr: f === 4 ? v4 : v6,
      port,
      fwd: fc.constantFrom(...FWD_METHODS),
      weight: fc.integer({ min: 0, max: 0x7fffffff }),
      upperThreshold: fc.nat(),
      lowerThreshold: fc.nat(),
      tunType: fc.constantFrom(...TUN_TYPES),
      tunPort: port,
      tunFlags: fc.integer({ min: 0, max: 7 }),
    })
    .map((r) => {
      const d: IpvsDest = {
        af: f,
        addr: r.addr,
        port: r.port,
        fwd: r.fwd,
        weight: r.weight,
        upperThreshold: r.upperThreshold,
        lowerThreshold: r.lowerThreshold,
      };
      if (r.fwd === "tunnel")
        Object.assign(d, { tunType: r.tunType, tunPort: r.tunPort, tunFlags: r.tunFlags });
      return d;
    }),
);

/** the attribute bytes nested in IPVS_CMD_ATTR_<which> of a request */
function nestedBytes(msg: Uint8Array, which: number): Uint8Array {
  const g = decodeGenlMsg(msg);
  if (!g.ok) throw new Error(String(g.error));
  let off = 0;
  const a = g.value.attrs;
  const dv = new DataView(a.buffer, a.byteOffset, a.byteLength);
  while (off + 4 <= a.length) {
    const len = dv.getUint16(off, true);
    if ((dv.getUint16(off + 2, true) & 0x3fff) === which) return a.subarray(off + 4, off + len);
    off += (len + 3) & ~3;
  }
  throw new Error(`no attr ${which}`);
}

// ---------------------------------------------------------------------------------------------------

describe("generic netlink", () => {
  test("CTRL_CMD_GETFAMILY IPVS: hand-checked bytes", () => {
    expect(hex(encodeGetFamily("IPVS"))).toBe(
      // nlmsghdr: len 32 (16 + 4 + the padded 12-byte attribute), type 0x10 (GENL_ID_CTRL), REQUEST
      "20000000" +
        "1000" +
        "0100" +
        "00000000" +
        "00000000" +
        // genlmsghdr: cmd 3 (GETFAMILY), version 2, reserved
        "03020000" +
        // CTRL_ATTR_FAMILY_NAME (2), len 9: "IPVS\0" + 3 bytes of padding
        "0900" +
        "0200" +
        "4950565300" +
        "000000",
    );
  });

  test("decodes the controller's reply: id, version, multicast groups", () => {
    const reply = encodeGenlMsg(GENL_ID_CTRL, 0, { cmd: CTRL_CMD_NEWFAMILY, version: 2 }, [
      nla.str(CTRL_ATTR_FAMILY_NAME, "IPVS"),
      nla.u16(CTRL_ATTR_FAMILY_ID, 32),
      nla.u32(CTRL_ATTR_VERSION, 1),
      nla.nested(CTRL_ATTR_MCAST_GROUPS, [
        nla.nested(1, [nla.u32(CTRL_ATTR_MCAST_GRP_ID, 5), nla.str(CTRL_ATTR_MCAST_GRP_NAME, "a")]),
        nla.nested(2, [nla.u32(CTRL_ATTR_MCAST_GRP_ID, 6), nla.str(CTRL_ATTR_MCAST_GRP_NAME, "b")]),
      ]),
    ]);
    const f = decodeFamily(reply);
    expect(f.ok && f.value).toEqual({
      id: 32,
      name: "IPVS",
      version: 1,
      hdrSize: 0,
      maxAttr: 0,
      mcastGroups: [
        { name: "a", id: 5 },
        { name: "b", id: 6 },
      ],
    });
  });

  test("rejects replies that are not the controller's or lack the id", () => {
    const noId = encodeGenlMsg(GENL_ID_CTRL, 0, { cmd: CTRL_CMD_NEWFAMILY, version: 2 }, [
      nla.str(CTRL_ATTR_FAMILY_NAME, "IPVS"),
    ]);
    const r1 = decodeFamily(noId);
    expect(!r1.ok && r1.error.reason).toBe("genl_ctrl_no_id");
    const r2 = decodeFamily(encodeGenlMsg(99, 0, { cmd: 1, version: 1 }, []));
    expect(!r2.ok && r2.error.reason).toBe("genl_not_ctrl");
    const r3 = decodeGenlMsg(new Uint8Array(10));
    expect(!r3.ok && r3.error.reason).toBe("genl_short");
  });

  test("decoders never throw on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        const r1 = decodeFamily(b);
        const r2 = decodeGenlMsg(b);
        expect(typeof r1.ok).toBe("boolean");
        expect(typeof r2.ok).toBe("boolean");
      }),
      { numRuns: 2000 },
    );
  });

  test("decodeFamily never throws on well-framed messages with random attributes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 255 }), (attrs, cmd) => {
        const m = encodeGenlMsg(GENL_ID_CTRL, 0, { cmd, version: 2 }, []);
        const full = new Uint8Array(m.length + attrs.length);
        full.set(m);
        full.set(attrs, m.length);
        new DataView(full.buffer).setUint32(0, full.length, true);
        expect(typeof decodeFamily(full).ok).toBe("boolean");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("IPVS encoders", () => {
  const svc: IpvsService = {
    key: { af: 4, protocol: "tcp", addr: "192.0.2.1", port: 80 },
    sched: "rr",
    flags: 0,
    timeout: 0,
    netmask: 32,
  };

  test("NEW_SERVICE tcp 192.0.2.1:80 rr: hand-checked bytes", () => {
    expect(hex(buildNewService(32, svc))).toBe(
      [
        "70000000 2000 0100 00000000 00000000", // nlmsghdr: len 112, type 32 (the family), REQUEST
        "01010000", // genlmsghdr: cmd NEW_SERVICE, version 1
        "5c00 0180", // IPVS_CMD_ATTR_SERVICE, nested, len 92
        "0600 0100 0200 0000", // AF = AF_INET (u16) + pad
        "0600 0200 0600 0000", // PROTOCOL = 6 (u16) + pad
        "1400 0300 c0000201 000000000000000000000000", // ADDR: 16-byte nf_inet_addr
        "0600 0400 0050 0000", // PORT 80, big-endian + pad
        "0700 0600 727200 00", // SCHED_NAME "rr\0" + pad
        "0c00 0700 00000000 3d000000", // FLAGS {flags 0, mask = every user flag 0x3d}
        "0800 0800 00000000", // TIMEOUT 0
        "0800 0900 ffffffff", // NETMASK /32 as a network-order mask
        "0500 0b00 00 000000", // PE_NAME "" (clears any engine on edit)
      ]
        .join("")
        .replace(/\s+/g, ""),
    );
  });

  test("NEW_DEST NAT 198.51.100.10:8080 weight 3: hand-checked bytes", () => {
    const m = buildNewDest(32, svc.key, {
      af: 4,
      addr: "198.51.100.10",
      port: 8080,
      fwd: "masq",
      weight: 3,
      upperThreshold: 0,
      lowerThreshold: 0,
    });
    expect(hex(nestedBytes(m, 2))).toBe(
      [
        "1400 0100 c633640a 000000000000000000000000", // ADDR
        "0600 0200 1f90 0000", // PORT 8080 big-endian
        "0600 0b00 0200 0000", // ADDR_FAMILY AF_INET
        "0800 0300 00000000", // FWD_METHOD masq = 0
        "0800 0400 03000000", // WEIGHT 3
        "0800 0500 00000000", // U_THRESH
        "0800 0600 00000000", // L_THRESH
      ]
        .join("")
        .replace(/\s+/g, ""),
    );
  });

  test("IPv6 netmask is a prefix length, fwmark services carry no address", () => {
    const m = buildNewService(32, {
      key: { af: 6, fwmark: 7 },
      sched: "sh",
      flags: 0,
      timeout: 0,
      netmask: 64,
    });
    const s = nestedBytes(m, IPVS_CMD_ATTR_SERVICE);
    const r = decodeServiceAttrs(s);
    expect(r.ok && r.value).toEqual({
      key: { af: 6, fwmark: 7 },
      sched: "sh",
      flags: 0,
      timeout: 0,
      netmask: 64,
    });
    expect(hex(s)).toContain("08000900" + "40000000");
    expect(hex(s)).not.toContain("0300"); // no IPVS_SVC_ATTR_ADDR header (len 20 type 3 = 14000300)
  });

  test("dumps and deletes: flags and key attributes", () => {
    const dump = buildGetServices(32);
    expect(new DataView(dump.buffer).getUint16(6, true)).toBe(NLM_F_REQUEST | NLM_F_DUMP);
    const gd = buildGetDests(32, svc.key);
    const k = decodeServiceKeyAttrs(nestedBytes(gd, IPVS_CMD_ATTR_SERVICE));
    expect(k.ok && k.value).toEqual(svc.key);
    const del = buildDelService(32, svc.key);
    expect(decodeGenlMsg(del).ok && decodeGenlMsg(del)).toBeTruthy();
    const dd = buildDelDest(32, svc.key, { af: 6, addr: "2001:db8::5", port: 80 });
    const dk = decodeDestKeyAttrs(nestedBytes(dd, 2), 4);
    expect(dk.ok && dk.value).toEqual({ af: 6, addr: "2001:db8::5", port: 80 });
  });

  test("a bad address is a caller bug: TypeError", () => {
    expect(() =>
      buildNewService(32, { ...svc, key: { af: 6, protocol: "tcp", addr: "192.0.2.1", port: 1 } }),
    ).toThrow(TypeError);
  });
});

describe("IPVS decoders", () => {
  test("a kernel dump reply: HASHED dropped, stats64 read, v4 mask -> prefix", () => {
    const stats = encodeAttrs([
      nla.u64(IPVS_STATS_ATTR_CONNS, 5n),
      nla.u64(IPVS_STATS_ATTR_INBYTES, 1n << 40n),
    ]);
    const flags = new Uint8Array(8);
    new DataView(flags.buffer).setUint32(0, IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_HASHED, true);
    new DataView(flags.buffer).setUint32(4, 0xffffffff, true);
    const reply = encodeGenlMsg(32, NLM_F_MULTI, { cmd: IPVS_CMD_NEW_SERVICE, version: 1 }, [
      nla.nested(IPVS_CMD_ATTR_SERVICE, [
        nla.u16(IPVS_SVC_ATTR_AF, 2),
        nla.u16(2, 17),
        nla.bytes(3, unhex("cb007105 000000000000000000000000")),
        nla.u16be(IPVS_SVC_ATTR_PORT, 53),
        nla.str(IPVS_SVC_ATTR_SCHED_NAME, "wlc"),
        nla.bytes(IPVS_SVC_ATTR_FLAGS, flags),
        nla.u32(IPVS_SVC_ATTR_TIMEOUT, 300),
        nla.u32be(IPVS_SVC_ATTR_NETMASK, 0xffffff00),
        { type: IPVS_SVC_ATTR_STATS64, value: stats },
      ]),
    ]);
    const r = decodeServiceMsg(reply);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.key).toEqual({ af: 4, protocol: "udp", addr: "203.0.113.5", port: 53 });
    expect(r.value.flags).toBe(IP_VS_SVC_F_PERSISTENT);
    expect(r.value.timeout).toBe(300);
    expect(r.value.netmask).toBe(24);
    expect(r.value.stats?.conns).toBe(5n);
    expect(r.value.stats?.inBytes).toBe(1n << 40n);
    expect(serviceKeyString(r.value.key)).toBe("udp 203.0.113.5:53");
  });

  test("typed errors for missing pieces", () => {
    const reason = (b: Uint8Array) => {
      const r = decodeServiceAttrs(b);
      return r.ok ? "ok" : r.error.reason;
    };
    expect(reason(encodeAttrs([nla.u16(IPVS_SVC_ATTR_AF, 99)]))).toBe("ipvs_svc_bad_af");
    expect(reason(encodeAttrs([nla.u16(IPVS_SVC_ATTR_AF, 2), nla.u16(2, 1)]))).toBe("ipvs_svc_bad_protocol");
    expect(reason(encodeAttrs([nla.u16(IPVS_SVC_ATTR_AF, 2), nla.u32(5, 3)]))).toBe("ipvs_svc_no_sched");
    const i = decodeInfoMsg(encodeGenlMsg(32, 0, { cmd: 14, version: 1 }, [nla.u32(1, 0x010201)]));
    expect(!i.ok && i.error.reason).toBe("ipvs_info_incomplete");
    const i2 = decodeInfoMsg(
      encodeGenlMsg(32, 0, { cmd: 14, version: 1 }, [nla.u32(1, 0x010201), nla.u32(2, 4096)]),
    );
    expect(i2.ok && i2.value).toEqual({ version: "1.2.1", versionCode: 0x010201, connTabSize: 4096 });
    const st = decodeStats(encodeAttrs([nla.u32(IPVS_STATS_ATTR_CONNS, 9)]), false);
    expect(st.ok && st.value.conns).toBe(9n);
  });

  test("service round trip: build -> decode gives the same service", () => {
    fc.assert(
      fc.property(serviceArb, (s) => {
        const r = decodeServiceMsg(buildNewService(FAKE_IPVS_FAMILY, s));
        expect(r.ok && r.value).toEqual(s);
      }),
      { numRuns: 1000 },
    );
  });

  test("dest round trip: build -> decode gives the same dest", () => {
    fc.assert(
      fc.property(serviceKeyArb, destArb, (k, d) => {
        const r = decodeDestMsg(buildNewDest(FAKE_IPVS_FAMILY, k, d), k.af);
        expect(r.ok && r.value).toEqual(d);
      }),
      { numRuns: 1000 },
    );
  });

  test("every decoder: any bytes -> value or typed error, never a throw", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), af, (b, f) => {
        for (const r of [
          decodeServiceMsg(b),
          decodeDestMsg(b, f),
          decodeInfoMsg(b),
          decodeServiceAttrs(b),
          decodeServiceKeyAttrs(b),
          decodeDestAttrs(b, f),
          decodeDestKeyAttrs(b, f),
          decodeStats(b, true),
          decodeStats(b, false),
        ]) {
          if (!r.ok) expect(typeof r.error.reason).toBe("string");
        }
      }),
      { numRuns: 3000 },
    );
  });

  test("decoders on mutated valid messages never throw", () => {
    fc.assert(
      fc.property(
        serviceArb,
        destArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        fc.nat(),
        (s, d, flips, cut) => {
          for (const m of [buildNewService(FAKE_IPVS_FAMILY, s), buildNewDest(FAKE_IPVS_FAMILY, s.key, d)]) {
            const b = m.slice(0, Math.max(0, m.length - (cut % 16)));
            for (const [i, v] of flips) b[i % b.length] = v;
            for (const r of [decodeServiceMsg(b), decodeDestMsg(b, s.key.af)]) {
              if (!r.ok) expect(typeof r.error.reason).toBe("string");
            }
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("IpvsClient on a fake kernel", () => {
  const key: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.10", port: 443 };
  const dest: IpvsDest = {
    af: 4,
    addr: "198.51.100.1",
    port: 443,
    fwd: "route",
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
  };

  test("no IPVS in the kernel: typed 'unavailable' error", () => {
    const k = new FakeIpvsKernel();
    k.ipvs = false;
    try {
      IpvsClient.open(k);
      throw new Error("expected IpvsError");
    } catch (e) {
      expect(e).toBeInstanceOf(IpvsError);
      expect((e as IpvsError).kind).toBe("unavailable");
      expect((e as IpvsError).message).toContain("IPVS unavailable");
    }
  });

  test("resolves the family by name, then programs and reads back", () => {
    const k = new FakeIpvsKernel();
    const c = IpvsClient.open(k);
    expect(c.family).toBe(FAKE_IPVS_FAMILY);
    expect(c.info()).toEqual({ version: "1.2.1", versionCode: 0x010201, connTabSize: 4096 });
    const svc: IpvsService = { key, sched: "wrr", flags: IP_VS_SVC_F_SCHED_SH_PORT, timeout: 0, netmask: 32 };
    c.addService(svc);
    c.addDest(key, dest);
    expect(c.services()).toEqual([svc]);
    expect(c.service(key)).toEqual(svc);
    expect(c.service({ ...key, port: 1 })).toBeUndefined();
    expect(c.dests(key)).toEqual([dest]);
    c.editDest(key, { ...dest, weight: 7 });
    expect(c.dests(key)[0]?.weight).toBe(7);
    c.delDest(key, dest);
    expect(c.dests(key)).toEqual([]);
    c.delService(key);
    expect(c.services()).toEqual([]);
  });

  test("kernel errors name the service and the dest", () => {
    const c = IpvsClient.open(new FakeIpvsKernel());
    const catchErr = (f: () => void): IpvsError => {
      try {
        f();
      } catch (e) {
        if (e instanceof IpvsError) return e;
        throw e;
      }
      throw new Error("no error");
    };
    const e1 = catchErr(() => c.addService({ key, sched: "nosuch", flags: 0, timeout: 0, netmask: 32 }));
    expect([e1.kind, e1.op, e1.code, e1.service]).toEqual([
      "kernel",
      "add-service",
      "ENOENT",
      "tcp 192.0.2.10:443",
    ]);
    const e2 = catchErr(() => c.addDest(key, dest));
    expect([e2.code, e2.service, e2.dest]).toEqual(["ESRCH", "tcp 192.0.2.10:443", "198.51.100.1:443"]);
    expect(e2.message).toBe("ipvs add-dest tcp 192.0.2.10:443 -> 198.51.100.1:443: ESRCH");
  });

  test("applyOps: a failed service does not stop the others; its dests are skipped", () => {
    const k = new FakeIpvsKernel();
    const c = IpvsClient.open(k);
    const good: ServiceKey = { af: 4, protocol: "tcp", addr: "192.0.2.11", port: 80 };
    const res = applyOps(c, [
      { op: "add-service", service: { key, sched: "nosuch", flags: 0, timeout: 0, netmask: 32 } },
      { op: "add-dest", key, dest },
      { op: "add-service", service: { key: good, sched: "rr", flags: 0, timeout: 0, netmask: 32 } },
      { op: "add-dest", key: good, dest },
    ]);
    expect(res.applied).toBe(2);
    expect(res.skipped).toBe(1);
    expect(res.errors.map((e) => e.service)).toEqual(["tcp 192.0.2.10:443"]);
    expect(readTable(c)).toEqual([
      { service: { key: good, sched: "rr", flags: 0, timeout: 0, netmask: 32 }, dests: [dest] },
    ]);
  });
});
