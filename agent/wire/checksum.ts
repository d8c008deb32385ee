// Internet checksum (RFC 1071). Sums are kept unfolded in a plain JS number: a double holds integers
// up to 2^53 exactly, so a 64 KiB datagram (at most 2^15 words of 0xffff) cannot lose precision, and
// the end-around carry is applied once in fold() instead of on every word.

/**
 * One's complement partial sum of buf[start, end) as big-endian 16-bit words, added to `acc`.
 * An odd trailing byte is padded with zero, so only the last segment of a multi-part sum may be odd.
 */
export function sum16(buf: Uint8Array, start = 0, end = buf.length, acc = 0): number {
  let sum = acc;
  let i = start;
  const even = end - ((end - start) & 1);
  for (; i < even; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) sum += buf[i]! << 8;
  return sum;
}

/** Folds an unfolded sum to 16 bits with end-around carry. */
export function fold(acc: number): number {
  let s = acc;
  // Division instead of `>>>`: the sum may exceed 32 bits.
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The value to store in a checksum field: the complement of the folded sum. */
export function finish(acc: number): number {
  return ~fold(acc) & 0xffff;
}

/** RFC 1071 checksum of buf[start, end) with an optional pre-computed partial sum (pseudo-header). */
export function internetChecksum(buf: Uint8Array, start = 0, end = buf.length, acc = 0): number {
  return finish(sum16(buf, start, end, acc));
}

/**
 * True when a region whose checksum field is filled in verifies: the folded sum over all of it
 * (plus any pseudo-header sum) is 0xffff, i.e. negative zero.
 */
export function verifies(acc: number): boolean {
  return fold(acc) === 0xffff;
}

/** Partial sum of the IPv4 pseudo-header (RFC 768 layout: src, dst, zero, protocol, length). */
export function pseudoSumV4(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  return sum16(src, 0, 4, sum16(dst, 0, 4, (protocol & 0xff) + (length & 0xffff)));
}

/** Partial sum of the IPv6 pseudo-header (RFC 8200 §8.1: src, dst, 32-bit length, 3 zero bytes, next). */
export function pseudoSumV6(src: Uint8Array, dst: Uint8Array, length: number, nextHeader: number): number {
  // The 32-bit length contributes its two 16-bit halves.
  const len = length >>> 0;
  return sum16(src, 0, 16, sum16(dst, 0, 16, (len >>> 16) + (len & 0xffff) + (nextHeader & 0xff)));
}
