// IP address text <-> bytes. One place for parsing and RFC 5952 formatting, used by codecs,
// config validation and the kernel clients alike.
import { isIPv4, isIPv6 } from "node:net";

export type Family = 4 | 6;

/** A multicast address: 224.0.0.0/4 or ff00::/8 (by its text; the address is assumed valid). */
export function isMulticastIp(addr: string): boolean {
  if (addr.includes(":")) return /^ff/i.test(addr);
  const dot = addr.indexOf(".");
  const first = Number(dot < 0 ? addr : addr.slice(0, dot));
  return first >= 224 && first <= 239;
}

export function familyOf(addr: string): Family | null {
  if (isIPv4(addr)) return 4;
  if (isIPv6(addr)) return 6;
  return null;
}

export function parseIPv4(s: string): Uint8Array | null {
  if (!isIPv4(s)) return null;
  return Uint8Array.from(s.split(".").map(Number));
}

export function parseIPv6(s: string): Uint8Array | null {
  if (!isIPv6(s)) return null;
  let text = s;
  const out = new Uint8Array(16);
  // embedded IPv4 tail (::ffff:192.0.2.1)
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  let tail: number[] = [];
  if (v4tail?.[1]) {
    const b = parseIPv4(v4tail[1]);
    if (!b) return null;
    tail = [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
    text = text.slice(0, -v4tail[1].length) + "0:0";
  }
  const [head, rest] = text.includes("::") ? (text.split("::") as [string, string]) : [text, undefined];
  const hs = head ? head.split(":") : [];
  const rs = rest !== undefined && rest !== "" ? rest.split(":") : [];
  const groups = new Array<number>(8).fill(0);
  hs.forEach((g, i) => {
    groups[i] = Number.parseInt(g, 16);
  });
  rs.forEach((g, i) => {
    groups[8 - rs.length + i] = Number.parseInt(g, 16);
  });
  if (tail.length) {
    groups[6] = tail[0]!;
    groups[7] = tail[1]!;
  }
  for (let i = 0; i < 8; i++) {
    out[i * 2] = (groups[i]! >> 8) & 0xff;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  return out;
}

export function parseIp(s: string): Uint8Array | null {
  return parseIPv4(s) ?? parseIPv6(s);
}

export function formatIPv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 canonical text: lowercase, longest run (>1) of zero groups compressed, first on a tie. */
export function formatIPv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[off + i * 2]! << 8) | b[off + i * 2 + 1]!);
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestLen < 2) return g.map((x) => x.toString(16)).join(":");
  const left = g.slice(0, bestStart).map((x) => x.toString(16));
  const right = g.slice(bestStart + bestLen).map((x) => x.toString(16));
  return `${left.join(":")}::${right.join(":")}`;
}

export function formatIp(b: Uint8Array, off = 0, family: Family = b.length - off >= 16 ? 6 : 4): string {
  return family === 4 ? formatIPv4(b, off) : formatIPv6(b, off);
}

/** Canonical text of an address (e.g. "2001:DB8:0::1" -> "2001:db8::1"); null if not an address. */
export function canonicalIp(s: string): string | null {
  const b = parseIp(s);
  if (!b) return null;
  return formatIp(b);
}

/** Compares two addresses of the same family as unsigned big-endian integers. */
export function compareIp(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

export function isLinkLocalV6(b: Uint8Array): boolean {
  return b.length === 16 && b[0] === 0xfe && (b[1]! & 0xc0) === 0x80;
}
