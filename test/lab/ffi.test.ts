// ffi/ and Kernel on a real kernel: two nodes on a bridge; raw VRRP sockets (IPv4 multicast and
// unicast, IPv6 multicast) through the PacketReader, AF_PACKET frames, rtnetlink address and link
// changes, errno mapping, one-way latency, and the reader inside a `bun build --compile` binary.
// Test bodies run in the nodes' namespaces through test/lab/fixtures/ffi-node.ts; this process stays
// in the root namespace.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { NetlinkSocket } from "../../ffi/netlink-socket.ts";
import { PacketReader } from "../../ffi/reader.ts";
import { buildBinary } from "../../scripts/build.ts";
import { isRoot, Lab, sweepStale, waitFor } from "./netns.ts";

const FIXTURE = join(import.meta.dir, "fixtures", "ffi-node.ts");

type Msg = Record<string, unknown> & { ev?: string; re?: number };

/** One fixture process in a namespace, driven by JSON lines. */
class Node {
  readonly events: Msg[] = [];
  private readonly replies = new Map<number, (m: Msg) => void>();
  private seq = 0;
  private stderr = "";
  readonly proc: Bun.Subprocess<"pipe", "pipe", "pipe">;

  constructor(ns: string, cmd: string[]) {
    const proc = Bun.spawn(["ip", "netns", "exec", ns, ...cmd], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.proc = proc;
    void this.pump();
    void (async () => {
      for await (const c of proc.stderr) this.stderr += new TextDecoder().decode(c);
    })();
  }

  private async pump(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.proc.stdout) {
      buf += dec.decode(chunk, { stream: true });
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        if (!line.trim()) continue;
        let m: Msg;
        try {
          m = JSON.parse(line) as Msg;
        } catch {
          this.stderr += `${line}\n`;
          continue;
        }
        if (typeof m.re === "number") this.replies.get(m.re)?.(m);
        else this.events.push(m);
      }
    }
  }

  /** Runs a command; resolves with its value or rejects with the fixture's error (name, code). */
  async call(op: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<unknown> {
    const seq = ++this.seq;
    const reply = new Promise<Msg>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`${op}: no reply in ${timeoutMs} ms\n${this.stderr}`)),
        timeoutMs,
      );
      this.replies.set(seq, (m) => {
        clearTimeout(t);
        resolve(m);
      });
    });
    this.proc.stdin.write(`${JSON.stringify({ seq, op, ...args })}\n`);
    this.proc.stdin.flush();
    const m = await reply;
    this.replies.delete(seq);
    if (m.ok) return m.value;
    const e = m.error as { name: string; code: string | null; message: string };
    throw Object.assign(new Error(`${op}: ${e.message}`), { code: e.code, errName: e.name });
  }

  async event(pred: (m: Msg) => boolean, timeoutMs = 3000): Promise<Msg> {
    let found: Msg | undefined;
    await waitFor(
      () => {
        found = this.events.find(pred);
        return found !== undefined;
      },
      timeoutMs,
      5,
    );
    if (!found)
      throw new Error(`no matching event in ${timeoutMs} ms; have ${JSON.stringify(this.events.slice(-5))}`);
    return found;
  }

  take(pred: (m: Msg) => boolean): Msg[] {
    const hit = this.events.filter(pred);
    for (const h of hit) this.events.splice(this.events.indexOf(h), 1);
    return hit;
  }

  async stop(): Promise<number> {
    try {
      await this.call("exit", {}, 3000);
    } catch {
      this.proc.kill("SIGKILL");
    }
    return await this.proc.exited;
  }
}

const pkt = (id: string) => (m: Msg) => m.ev === "pkt" && m.id === id;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const payload = (tag: number): Uint8Array =>
  Uint8Array.from({ length: 40 }, (_, i) => (i === 0 ? 0x31 : tag + i) & 0xff);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe.skipIf(!isRoot())("ffi on a real kernel", () => {
  let lab: Lab;
  let a: Node;
  let b: Node;
  let ifB = 0;
  let llA = "";

  beforeAll(async () => {
    sweepStale();
    lab = new Lab("ffi");
    lab.addNode({ name: "a", addrs: ["192.0.2.1/24", "2001:db8::1/64"] });
    lab.addNode({ name: "b", addrs: ["192.0.2.2/24", "2001:db8::2/64"] });
    a = new Node(lab.node("a").ns, [process.execPath, FIXTURE]);
    b = new Node(lab.node("b").ns, [process.execPath, FIXTURE]);
    const infoA = (await a.call("info")) as { v6: string };
    const infoB = (await b.call("info")) as { ifindex: number };
    llA = infoA.v6;
    ifB = infoB.ifindex;
  });

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await lab?.destroy();
  });

  test("interface lookups map errno to typed errors", async () => {
    const info = (await b.call("info")) as {
      ifindex: number;
      name: string;
      v4: string;
      v6: string;
      link: Msg;
    };
    expect(info.name).toBe("eth0");
    expect(info.ifindex).toBeGreaterThan(1);
    expect(info.v4).toBe("192.0.2.2");
    expect(info.v6).toStartWith("fe80::");
    expect((info.link.link as Msg).mtu).toBe(1500);
    expect((info.link.link as Msg).up).toBe(true);
    await expect(b.call("ifindex", { ifname: "nope0" })).rejects.toMatchObject({
      code: "ENODEV",
      errName: "SysError",
    });
    await expect(b.call("kernel", { fn: "link", args: ["nope0"] })).resolves.toBeNull();
  });

  test("IPv4 multicast advert: src, dst, TTL 255, TOS 0xC0, ifindex", async () => {
    await b.call("openVrrp", { id: "m4", family: 4, multicast: true });
    await b.call("openVrrp", { id: "u4", family: 4, multicast: false, src: "192.0.2.2" });
    await a.call("openVrrp", { id: "m4", family: 4, multicast: true, src: "192.0.2.1" });
    const body = payload(4);
    await a.call("send", { id: "m4", dst: "224.0.0.18", payload: hex(body) });
    const p = await b.event(pkt("m4"));
    expect(p).toMatchObject({
      family: 4,
      src: "192.0.2.1",
      dst: "224.0.0.18",
      ttl: 255,
      tos: 0xc0,
      ifindex: ifB,
    });
    expect(p.body).toBe(hex(body));
  });

  test("IPv4 unicast advert reaches only the unicast socket; multicast only the multicast one", async () => {
    await a.call("openVrrp", { id: "u4", family: 4, multicast: false, src: "192.0.2.1" });
    const body = payload(5);
    await a.call("send", { id: "u4", dst: "192.0.2.2", payload: hex(body) });
    const p = await b.event((m) => pkt("u4")(m) && m.body === hex(body));
    expect(p).toMatchObject({ src: "192.0.2.1", dst: "192.0.2.2", ttl: 255, tos: 0xc0, ifindex: ifB });
    await Bun.sleep(100);
    expect(b.take((m) => pkt("m4")(m) && m.dst === "192.0.2.2")).toEqual([]);
    expect(b.take((m) => pkt("u4")(m) && m.dst === "224.0.0.18")).toEqual([]);
  });

  test("IPv6 multicast advert from the link-local source: hop limit 255, traffic class 0xC0", async () => {
    await b.call("openVrrp", { id: "m6", family: 6, multicast: true });
    // the full IPv6 header is only visible on the link: read it with an AF_PACKET socket
    await b.call("openFrames", { id: "ip6", ethertype: 0x86dd });
    await a.call("openVrrp", { id: "m6", family: 6, multicast: true, src: llA });
    const body = payload(6);
    await a.call("send", { id: "m6", dst: "ff02::12", payload: hex(body) });
    const p = await b.event(pkt("m6"));
    expect(p).toMatchObject({ family: 6, src: llA, dst: "ff02::12", ttl: 255, ifindex: ifB });
    const got = Buffer.from(String(p.body), "hex");
    // everything but the checksum (offset 6), which the sending kernel filled in (IPV6_CHECKSUM)
    expect(hex(got.subarray(0, 6))).toBe(hex(body.subarray(0, 6)));
    expect(hex(got.subarray(8))).toBe(hex(body.subarray(8)));
    expect(got.readUInt16BE(6)).not.toBe(0);
    const f = await b.event(
      (m) => m.ev === "frame" && m.id === "ip6" && String(m.data).slice(40, 42) === "70",
    );
    const frame = Buffer.from(String(f.data), "hex");
    const ip6 = frame.subarray(14);
    const tclass = ((ip6.readUInt32BE(0) >>> 20) & 0xff) >>> 0;
    expect(tclass).toBe(0xc0);
    expect(ip6[6]).toBe(112); // next header
    expect(ip6[7]).toBe(255); // hop limit
    expect(hex(frame.subarray(0, 6))).toBe("333300000012");
  });

  test("IPv6 unicast advert between global addresses", async () => {
    await b.call("openVrrp", { id: "u6", family: 6, multicast: false, src: "2001:db8::2" });
    await a.call("openVrrp", { id: "u6", family: 6, multicast: false, src: "2001:db8::1" });
    const body = payload(7);
    await a.call("send", { id: "u6", dst: "2001:db8::2", payload: hex(body) });
    const p = await b.event(pkt("u6"));
    expect(p).toMatchObject({ family: 6, src: "2001:db8::1", dst: "2001:db8::2", ttl: 255, ifindex: ifB });
    expect(String(p.body).slice(16)).toBe(hex(body).slice(16));
    await Bun.sleep(50);
    expect(b.take((m) => pkt("m6")(m) && m.dst === "2001:db8::2")).toEqual([]);
  });

  test("AF_PACKET frame sent from A is seen at B", async () => {
    await b.call("openFrames", { id: "exp", ethertype: 0x88b5 });
    const src = "02aabbccdd01";
    const frame = `ffffffffffff${src}88b5${"5a".repeat(46)}`;
    await a.call("sendFrame", { frame });
    const f = await b.event((m) => m.ev === "frame" && m.id === "exp");
    expect(String(f.data).slice(0, frame.length)).toBe(frame);
    expect(f.ifindex).toBe(ifB);
    expect(f.pktType).toBe(1); // PACKET_BROADCAST
  });

  test("Kernel adds and deletes addresses idempotently, with label, and reports the changes", async () => {
    await b.call("watch");
    const add4 = await b.call("kernel", {
      fn: "addAddress",
      args: [ifB, "192.0.2.100", 24, { label: "eth0:vip" }],
    });
    expect(add4).toBe(true);
    expect(
      await b.call("kernel", { fn: "addAddress", args: [ifB, "192.0.2.100", 24, { label: "eth0:vip" }] }),
    ).toBe(false);
    const add6 = await b.call("kernel", {
      fn: "addAddress",
      args: [ifB, "2001:db8::100", 64, { nodad: true }],
    });
    expect(add6).toBe(true);

    const ip = JSON.parse(lab.exec(lab.node("b").ns, ["ip", "-j", "addr", "show", "dev", "eth0"]).stdout) as {
      addr_info: { local: string; prefixlen: number; label?: string; nodad?: boolean; tentative?: boolean }[];
    }[];
    const infos = ip[0]!.addr_info;
    expect(infos.find((x) => x.local === "192.0.2.100")).toMatchObject({ prefixlen: 24, label: "eth0:vip" });
    const v6 = infos.find((x) => x.local === "2001:db8::100");
    expect(v6).toMatchObject({ prefixlen: 64, nodad: true });
    expect(v6?.tentative).toBeUndefined();

    const listed = (await b.call("kernel", { fn: "addresses", args: [ifB] })) as Msg[];
    expect(listed.find((x) => x.address === "192.0.2.100")).toMatchObject({
      family: 4,
      prefixLen: 24,
      label: "eth0:vip",
    });
    expect(listed.find((x) => x.address === "2001:db8::100")).toMatchObject({ family: 6, prefixLen: 64 });
    // the VIP is secondary-free but not first: the primary stays the node's own address
    expect(await b.call("kernel", { fn: "primaryAddress", args: [ifB, 4] })).toBe("192.0.2.2");

    const isAddr = (action: string, addr: string) => (m: Msg) =>
      m.ev === "kernel" &&
      (m.event as Msg).type === "addr" &&
      (m.event as Msg).action === action &&
      ((m.event as Msg).addr as Msg).address === addr;
    expect(((await b.event(isAddr("new", "192.0.2.100"))).event as Msg).addr).toMatchObject({
      label: "eth0:vip",
    });
    await b.event(isAddr("new", "2001:db8::100"));

    expect(await b.call("kernel", { fn: "delAddress", args: [ifB, "192.0.2.100", 24] })).toBe(true);
    expect(await b.call("kernel", { fn: "delAddress", args: [ifB, "2001:db8::100", 64] })).toBe(true);
    expect(await b.call("kernel", { fn: "delAddress", args: [ifB, "192.0.2.100", 24] })).toBe(false);
    expect(await b.call("kernel", { fn: "delAddress", args: [ifB, "2001:db8::100", 64] })).toBe(false);
    expect(lab.hasAddress("b", "192.0.2.100")).toBe(false);
    expect(lab.hasAddress("b", "2001:db8::100")).toBe(false);
    await b.event(isAddr("del", "192.0.2.100"));
    await b.event(isAddr("del", "2001:db8::100"));

    // kernel errors other than "already there / already gone" stay errors
    await expect(
      b.call("kernel", { fn: "addAddress", args: [9999, "192.0.2.101", 24, {}] }),
    ).rejects.toMatchObject({
      code: "ENODEV",
      errName: "NetlinkError",
    });
  });

  test("link notifications: carrier loss and admin down arrive as typed events", async () => {
    await b.call("watch");
    const linkEv = (pred: (l: Msg) => boolean) => (m: Msg) =>
      m.ev === "kernel" && (m.event as Msg).type === "link" && pred((m.event as Msg).link as Msg);
    b.take(() => true);
    lab.setPort("b", false);
    await b.event(linkEv((l) => l.name === "eth0" && l.lowerUp === false && l.up === true));
    lab.setPort("b", true);
    await b.event(
      linkEv((l) => l.name === "eth0" && l.lowerUp === true && l.operstate === "up"),
      5000,
    );
    lab.exec(lab.node("b").ns, ["ip", "link", "set", "eth0", "down"]);
    const down = await b.event(linkEv((l) => l.name === "eth0" && l.up === false));
    expect(((down.event as Msg).link as Msg).operstate).toBe("down");
    lab.exec(lab.node("b").ns, ["ip", "link", "set", "eth0", "up"]);
    await b.event(
      linkEv((l) => l.name === "eth0" && l.up === true && l.lowerUp === true),
      5000,
    );
    // admin down flushed the static IPv6 address (keep_addr_on_down=0): put it back for later tests
    if (!lab.hasAddress("b", "2001:db8::2")) {
      lab.exec(lab.node("b").ns, ["ip", "addr", "add", "2001:db8::2/64", "dev", "eth0", "nodad"]);
    }
  });

  test("one-way latency send -> onPacket between namespaces", async () => {
    await a.call("openVrrp", { id: "lat", family: 4, multicast: true, src: "192.0.2.1" });
    b.take(() => true);
    const n = 500;
    await a.call("send", { id: "lat", dst: "224.0.0.18", stamp: true, count: n, intervalMs: 2 }, 30_000);
    await waitFor(() => b.events.filter((m) => pkt("m4")(m) && typeof m.lat === "number").length >= n, 5000);
    const lats = b
      .take((m) => pkt("m4")(m) && typeof m.lat === "number")
      .map((m) => Number(m.lat) / 1e6)
      .sort((x, y) => x - y);
    expect(lats.length).toBe(n);
    const p50 = percentile(lats, 50);
    const p99 = percentile(lats, 99);
    console.log(
      `one-way latency over ${n} adverts: p50 ${p50.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms, max ${lats.at(-1)?.toFixed(3)} ms`,
    );
    expect(p50).toBeLessThan(1);
  }, 40_000);

  test("coalescing: adverts wait for the window and arrive together; priority 0 goes at once", async () => {
    await a.call("openVrrp", { id: "co", family: 4, multicast: true, src: "192.0.2.1" });
    // frames go at once and take held adverts along: the IPv6 capture would see the link's MLD chatter
    await b.call("closeFrames", { id: "ip6" });
    const stamped = () =>
      b.take((m) => pkt("m4")(m) && typeof m.lat === "number").map((m) => Number(m.lat) / 1e6);
    b.take(() => true);
    try {
      await b.call("coalesce", { ms: 400 });
      // three routine adverts 40 ms apart: all wait until 400 ms after the first, then come together
      await a.call("send", {
        id: "co",
        dst: "224.0.0.18",
        stamp: true,
        priority: 100,
        count: 3,
        intervalMs: 40,
      });
      await waitFor(
        () => b.events.filter((m) => pkt("m4")(m) && typeof m.lat === "number").length >= 3,
        3000,
      );
      const held = stamped();
      expect(held.length).toBe(3);
      // each waited for the window opened by the first (minus its later send), never much longer
      expect(held[0]!).toBeGreaterThanOrEqual(390);
      expect(held[2]!).toBeGreaterThanOrEqual(held[0]! - 80 - 20);
      expect(held[2]!).toBeLessThan(held[0]!);
      // a routine advert opens a window; a priority-0 one arriving inside it is delivered at once
      // and takes the held one along (a long window here, so that a slow machine cannot blur the two)
      await b.call("coalesce", { ms: 2000 });
      await a.call("send", { id: "co", dst: "224.0.0.18", stamp: true, priority: 100 });
      await Bun.sleep(50);
      await a.call("send", { id: "co", dst: "224.0.0.18", stamp: true, priority: 0 });
      await waitFor(
        () => b.events.filter((m) => pkt("m4")(m) && typeof m.lat === "number").length >= 2,
        3000,
      );
      const urgent = stamped();
      expect(urgent.length).toBe(2);
      expect(urgent[0]!).toBeLessThan(1500);
      expect(urgent[1]!).toBeLessThan(urgent[0]!);
      // off again: delivered as it comes
      await b.call("coalesce", { ms: 0 });
      await a.call("send", { id: "co", dst: "224.0.0.18", stamp: true, priority: 100 });
      await waitFor(() => b.events.some((m) => pkt("m4")(m) && typeof m.lat === "number"), 3000);
      expect(stamped()[0]!).toBeLessThan(200);
    } finally {
      await b.call("coalesce", { ms: 0 });
    }
  });

  test("closing a socket after unwatch; a new socket on the same fd number gets only its own packets", async () => {
    await b.call("closeVrrp", { id: "u4" });
    await b.call("openVrrp", { id: "u4b", family: 4, multicast: false, src: "192.0.2.2" });
    const body = payload(9);
    await a.call("send", { id: "u4", dst: "192.0.2.2", payload: hex(body) });
    const p = await b.event((m) => pkt("u4b")(m) && m.body === hex(body));
    expect(p.src).toBe("192.0.2.1");
    expect(b.events.some((m) => pkt("u4")(m) && m.body === hex(body))).toBe(false);
  });

  test("the reader works inside a compiled binary (worker as an extra entry point)", async () => {
    const out = join("/tmp", `vigil-ffi-probe-${process.pid}`);
    try {
      const r = await buildBinary({ entry: "test/lab/fixtures/ffi-node.ts", outfile: out });
      console.log(`compiled probe: ${(r.bytes / 1e6).toFixed(0)} MB in ${r.ms} ms`);
      const c = new Node(lab.node("b").ns, [out]);
      try {
        const info = (await c.call("info")) as { compiled: boolean };
        expect(info.compiled).toBe(true);
        await c.call("openVrrp", { id: "m4", family: 4, multicast: true });
        await c.call("watch");
        const body = payload(11);
        await a.call("send", { id: "m4", dst: "224.0.0.18", payload: hex(body) });
        const p = await c.event((m) => pkt("m4")(m) && m.body === hex(body));
        expect(p).toMatchObject({ src: "192.0.2.1", ttl: 255, ifindex: ifB });
        lab.exec(lab.node("b").ns, ["ip", "addr", "add", "198.51.100.7/24", "dev", "eth0"]);
        await c.event(
          (m) => m.ev === "kernel" && ((m.event as Msg).addr as Msg | undefined)?.address === "198.51.100.7",
        );
        lab.exec(lab.node("b").ns, ["ip", "addr", "del", "198.51.100.7/24", "dev", "eth0"]);
      } finally {
        expect(await c.stop()).toBe(0);
      }
    } finally {
      rmSync(out, { force: true });
    }
  }, 60_000);
});

describe("PacketReader lifecycle (root namespace, no traffic)", () => {
  test("an fd closed behind the reader's back is reported once and dropped, without spinning", async () => {
    const errors: { code: string; removed: boolean }[] = [];
    const reader = new PacketReader({ onError: (e) => errors.push({ code: String(e), removed: false }) });
    // netlink sockets need no privileges and carry no traffic until subscribed
    const s1 = new NetlinkSocket({ protocol: "route" });
    const s2 = new NetlinkSocket({ protocol: "route" });
    try {
      const fd1 = s1.subscribe([]);
      const fd2 = s2.subscribe([]);
      reader.watch(
        fd1,
        "netlink",
        () => {},
        (e, removed) => errors.push({ code: e.code, removed }),
      );
      await reader.ready;
      s1.closeNotify();
      // any table change makes the worker poll again, and the closed fd reports POLLNVAL
      reader.watch(fd2, "netlink", () => {});
      expect(await waitFor(() => errors.length > 0, 2000)).toBe(true);
      const cpu0 = process.cpuUsage();
      await Bun.sleep(300);
      const cpu = process.cpuUsage(cpu0);
      expect(errors).toEqual([{ code: "EBADF", removed: true }]);
      // a spinning poll loop would burn ~300 ms of CPU here
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(100);
      reader.unwatch(fd1);
      reader.unwatch(fd2);
    } finally {
      const t0 = performance.now();
      await reader.close();
      expect(performance.now() - t0).toBeLessThan(500);
      s1.close();
      s2.close();
    }
  });

  test("unwatch returns only after the worker has let go of the fd", async () => {
    const reader = new PacketReader();
    const s = new NetlinkSocket({ protocol: "route" });
    try {
      await reader.ready;
      for (let i = 0; i < 50; i++) {
        const fd = s.subscribe([]);
        reader.watch(fd, "netlink", () => {});
        reader.unwatch(fd);
        s.closeNotify();
      }
      expect(reader.watching).toEqual([]);
    } finally {
      await reader.close();
      s.close();
    }
  });
});
