// Crafting and injecting raw frames from a lab namespace, and capturing/decoding traffic with tcpdump
// and tshark. VRRP messages come from the project's codec (agent/wire/vrrp.ts) and are then damaged on
// purpose; the IP and Ethernet headers around them are built here so a test controls every byte (TTL,
// source, length). Frames go out of an AF_PACKET socket opened by a small python3 helper (no pointers
// in TypeScript outside ffi/), paced at a requested rate.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { internetChecksum } from "../../agent/wire/checksum.ts";
import { parseIPv4, parseIPv6 } from "../../agent/wire/ip.ts";
import {
  encodeVrrp,
  VRRP_GROUP_V4,
  VRRP_GROUP_V6,
  VRRP_PROTO,
  type VrrpPacket,
} from "../../agent/wire/vrrp.ts";
import { type Lab, sleep } from "../lab/netns.ts";

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;

function mac(s: string): Uint8Array {
  const parts = s.split(":").map((h) => Number.parseInt(h, 16));
  if (parts.length !== 6 || parts.some((n) => !(n >= 0 && n <= 255))) throw new Error(`bad MAC ${s}`);
  return Uint8Array.from(parts);
}

/** Ethernet destination for an IP destination: RFC 1112 / RFC 2464 multicast mapping, else `unicastMac`. */
export function dstMacFor(dst: string, unicastMac?: string): string {
  if (dst.includes(":")) {
    const b = parseIPv6(dst)!;
    if (b[0] === 0xff)
      return ["33", "33", ...[...b.subarray(12)].map((x) => x.toString(16).padStart(2, "0"))].join(":");
  } else {
    const b = parseIPv4(dst)!;
    if (b[0]! >= 224 && b[0]! <= 239) {
      const tail = [b[1]! & 0x7f, b[2]!, b[3]!].map((x) => x.toString(16).padStart(2, "0"));
      return ["01", "00", "5e", ...tail].join(":");
    }
  }
  if (!unicastMac) throw new Error(`unicast ${dst} needs the destination MAC`);
  return unicastMac;
}

export interface IpOpts {
  src: string;
  dst: string;
  /** TTL / hop limit, default 255 */
  ttl?: number;
  /** TOS / traffic class, default 0xc0 like keepalived */
  tos?: number;
  proto?: number;
}

export function ipv4Packet(o: IpOpts, payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(20 + payload.length);
  h[0] = 0x45;
  h[1] = o.tos ?? 0xc0;
  h[2] = h.length >> 8;
  h[3] = h.length & 0xff;
  h[6] = 0x40; // DF
  h[8] = o.ttl ?? 255;
  h[9] = o.proto ?? VRRP_PROTO;
  h.set(parseIPv4(o.src)!, 12);
  h.set(parseIPv4(o.dst)!, 16);
  const c = internetChecksum(h, 0, 20);
  h[10] = c >> 8;
  h[11] = c & 0xff;
  h.set(payload, 20);
  return h;
}

export function ipv6Packet(o: IpOpts, payload: Uint8Array): Uint8Array {
  const h = new Uint8Array(40 + payload.length);
  const tc = o.tos ?? 0xc0;
  h[0] = 0x60 | (tc >> 4);
  h[1] = (tc & 0x0f) << 4;
  h[4] = payload.length >> 8;
  h[5] = payload.length & 0xff;
  h[6] = o.proto ?? VRRP_PROTO;
  h[7] = o.ttl ?? 255;
  h.set(parseIPv6(o.src)!, 8);
  h.set(parseIPv6(o.dst)!, 24);
  h.set(payload, 40);
  return h;
}

export function ethFrame(dstMac: string, srcMac: string, ethertype: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(Math.max(60, 14 + payload.length));
  f.set(mac(dstMac), 0);
  f.set(mac(srcMac), 6);
  f[12] = ethertype >> 8;
  f[13] = ethertype & 0xff;
  f.set(payload, 14);
  return f;
}

export interface AdvertSpec extends Partial<VrrpPacket> {
  vrid: number;
  priority: number;
  addresses: string[];
}

export interface FrameSpec {
  /** the VRRP fields; version defaults to 2, family from src */
  advert: AdvertSpec;
  ip: IpOpts;
  srcMac: string;
  /** needed when ip.dst is unicast */
  dstMac?: string;
  /** damage applied to the encoded VRRP message (after its checksum was computed) */
  mutate?: (msg: Uint8Array) => Uint8Array;
}

/** Encodes one Ethernet frame carrying a VRRP advert as the spec says (and damages it if asked). */
export function advertFrame(s: FrameSpec): Uint8Array {
  const family: 4 | 6 = s.ip.src.includes(":") ? 6 : 4;
  const p: VrrpPacket = {
    version: 2,
    type: 1,
    advertInterval: 1,
    authType: 0,
    authData: new Uint8Array(8),
    family,
    ...s.advert,
  };
  if (p.version === 3) p.authData = new Uint8Array(0);
  let msg = encodeVrrp(p, { src: s.ip.src, dst: s.ip.dst });
  if (s.mutate) msg = s.mutate(msg);
  const ip = family === 4 ? ipv4Packet(s.ip, msg) : ipv6Packet(s.ip, msg);
  return ethFrame(dstMacFor(s.ip.dst, s.dstMac), s.srcMac, family === 4 ? ETH_P_IP : ETH_P_IPV6, ip);
}

export const GROUP_V4 = VRRP_GROUP_V4;
export const GROUP_V6 = VRRP_GROUP_V6;

// Sends frames round-robin from a file of hex lines on an AF_PACKET socket, `total` frames at `pps`.
// Prints "sent N in S" when done.
const SENDER = `
import socket, sys, time
iface, path, pps, total = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
frames = [bytes.fromhex(l.strip()) for l in open(path) if l.strip()]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((iface, 0))
start = time.monotonic()
sent = 0
while sent < total:
    due = start + sent / pps
    now = time.monotonic()
    if due > now:
        time.sleep(due - now)
    s.send(frames[sent % len(frames)])
    sent += 1
print("sent %d in %.3f" % (sent, time.monotonic() - start), flush=True)
`;

/**
 * Sends `frames` (round-robin) out of `node`'s eth0: `total` frames (default one pass) at `pps`.
 * Resolves when all are sent, with the measured duration in seconds.
 */
export async function inject(
  lab: Lab,
  node: string,
  frames: Uint8Array[],
  opts: { pps?: number; total?: number } = {},
): Promise<{ sent: number; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), "vigil-inject-"));
  try {
    const file = join(dir, "frames.hex");
    writeFileSync(file, frames.map((f) => Buffer.from(f).toString("hex")).join("\n") + "\n");
    const total = opts.total ?? frames.length;
    const p = lab.spawn(node, [
      "python3",
      "-c",
      SENDER,
      "eth0",
      file,
      String(opts.pps ?? 100),
      String(total),
    ]);
    const [out, err, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    const m = /sent (\d+) in ([\d.]+)/.exec(out);
    if (code !== 0 || !m) throw new Error(`injector failed (${code}): ${out}\n${err}`);
    return { sent: Number(m[1]), seconds: Number(m[2]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** MAC address of a node's eth0. */
export function macOf(lab: Lab, node: string, dev = "eth0"): string {
  const out = lab.exec(lab.node(node).ns, ["ip", "-j", "link", "show", "dev", dev]).stdout;
  const parsed = JSON.parse(out) as { address: string }[];
  return parsed[0]!.address;
}

/** IPv6 link-local address of a node's eth0 (waits up to 2 s for the kernel to assign it). */
export function linkLocalOf(lab: Lab, node: string, dev = "eth0"): string {
  const end = Date.now() + 2000;
  for (;;) {
    const out = lab.exec(lab.node(node).ns, ["ip", "-j", "-6", "addr", "show", "dev", dev]).stdout;
    const parsed = JSON.parse(out) as { addr_info?: { local?: string; scope?: string }[] }[];
    const a = parsed[0]?.addr_info?.find((x) => x.scope === "link" && x.local?.startsWith("fe80:"))?.local;
    if (a) return a;
    if (Date.now() > end) throw new Error(`no link-local address on ${node}`);
    Bun.sleepSync(20);
  }
}

export interface Capture {
  file: string;
  /** stops tcpdump (SIGINT, so it flushes) and resolves with the pcap path */
  stop(): Promise<string>;
}

/**
 * Starts tcpdump on `iface` in namespace `ns` (e.g. a node's bridge port in the switch namespace) and
 * resolves once it is listening. `filter` is a pcap filter expression.
 */
export async function startCapture(lab: Lab, ns: string, iface: string, filter = ""): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), `vigil-pcap-${lab.id}-`));
  const file = join(dir, "cap.pcap");
  const args = ["tcpdump", "-i", iface, "-n", "-U", "-s", "0", "-w", file, "--immediate-mode"];
  if (filter) args.push(filter);
  const p = Bun.spawn(["ip", "netns", "exec", ns, ...args], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const dec = new TextDecoder();
  let err = "";
  const reader = p.stderr.getReader();
  const end = Date.now() + 5000;
  while (!err.includes("listening on") && Date.now() < end) {
    const r = await Promise.race([reader.read(), sleep(end - Date.now()).then(() => null)]);
    if (!r || r.done) break;
    err += dec.decode(r.value, { stream: true });
  }
  if (!err.includes("listening on")) {
    p.kill("SIGKILL");
    throw new Error(`tcpdump did not start: ${err}`);
  }
  void (async () => {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
    }
  })();
  return {
    file,
    async stop() {
      // let in-flight frames land before stopping
      await sleep(50);
      p.kill("SIGINT");
      await p.exited;
      return file;
    },
  };
}

/** Removes a capture's directory. */
export function removeCapture(c: Capture): void {
  rmSync(join(c.file, ".."), { recursive: true, force: true });
}

/**
 * Decodes a pcap with tshark: one record per packet matching the display filter, with the requested
 * fields (empty string when absent; multiple occurrences joined by ",").
 */
export function tsharkFields(
  file: string,
  displayFilter: string,
  fields: string[],
): Record<string, string>[] {
  const args = ["tshark", "-r", file, "-n", "-Y", displayFilter, "-T", "fields", "-E", "separator=\t"];
  args.push("-E", "occurrence=a", "-E", "aggregator=,");
  for (const f of fields) args.push("-e", f);
  const p = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  if (p.exitCode !== 0) throw new Error(`tshark failed: ${p.stderr.toString()}`);
  return p.stdout
    .toString()
    .split("\n")
    .filter((l) => l.length > 0)
    .map((line) => {
      const cols = line.split("\t");
      const rec: Record<string, string> = {};
      fields.forEach((f, i) => {
        rec[f] = cols[i] ?? "";
      });
      return rec;
    });
}
