// Receive-side policy checks on a decoded advertisement, before the state machine sees it: RFC 5798
// §7.1 / RFC 3768 §7.1 as keepalived 2.2.7 applies them (keepalived/vrrp/vrrp.c vrrp_check_packet,
// and the VRID lookup in vrrp_scheduler.c vrrp_dispatcher_read). Structure, length and checksum are
// the codec's (wire/vrrp.ts decodeVrrp); dropping our own looped-back adverts is the shell's.
//
// Pure and cheap: a flood of bad adverts must not starve the good ones, so every check is a
// comparison, nothing allocates on the common path, and each drop carries a stable reason (metrics)
// plus whether keepalived would log it (the shell rate-limits those lines).
import { isMulticastIp } from "../wire/ip.ts";
import type { VrrpPacket } from "../wire/vrrp.ts";

export type DropReason =
  /** TTL / hop limit not 255 (multicast only), or outside a unicast peer's min_ttl..max_ttl */
  | "ttl"
  | "version"
  /** not one of ours: silently dropped (keepalived logs it only with log_unknown_vrids) */
  | "vrid"
  /** address family differs from the instance's */
  | "family"
  /** v2: invalid auth type, auth type mismatch, wrong password; AH (not verifiable here) */
  | "auth"
  /** v2: Adver Int differs from ours (keepalived drops to avoid two masters on one VRID) */
  | "interval"
  | "type"
  /** number of addresses differs from our VIP count */
  | "addr_count"
  /** multicast advert on a unicast instance or the reverse */
  | "dst_type"
  /** one of our VIPs is missing from the advert */
  | "addr_list"
  /** check_unicast_src: the sender is not a configured unicast peer */
  | "unicast_src";

export type ValidateResult = { ok: true } | { ok: false; reason: DropReason; log: boolean };

export interface ValidateConfig {
  vrid: number;
  version: 2 | 3;
  family: 4 | 6;
  /** our configured interval in ms (compared with the advert's in v2) */
  advertIntervalMs: number;
  auth?: { type: "PASS" | "AH"; pass: string } | undefined;
  vipCount: number;
  /** our VIPs in canonical text (the config model stores them canonical, like the codec's output) */
  vips: readonly string[];
  unicast: boolean;
  /** unicast peers in canonical text */
  unicastPeers: readonly string[];
  /** global vrrp_check_unicast_src (or the per-instance check_unicast_src) */
  checkUnicastSrc: boolean;
  /** per-peer accepted TTL range (unicast_peer ... min_ttl/max_ttl), checked with checkUnicastSrc */
  peerTtl?: Readonly<Record<string, { min?: number; max?: number }>>;
}

export interface RxInfo {
  /** IPv4 TTL / IPv6 hop limit; -1 when the kernel did not report it (keepalived then skips the check) */
  ttl: number;
  src: string;
  dst: string;
}

const OK: ValidateResult = { ok: true };
const VRRP_TTL = 255;
const AUTH_NONE = 0;
const AUTH_PASS = 1;
const AUTH_AH = 2;

function drop(reason: DropReason, log = true): ValidateResult {
  return { ok: false, reason, log };
}

/**
 * The auth type keepalived actually runs with (vrrp_complete_instance): none for v3 ("VRRP version 3
 * does not support authentication. Ignoring") and for a PASS/AH without password.
 */
function effectiveAuth(cfg: ValidateConfig): number {
  if (cfg.version !== 2 || !cfg.auth || cfg.auth.pass === "") return AUTH_NONE;
  return cfg.auth.type === "PASS" ? AUTH_PASS : AUTH_AH;
}

/** keepalived's auth_data: the first 8 bytes of the password, zero padded, compared in full. */
function passwordMatches(pass: string, data: Uint8Array): boolean {
  if (data.length !== 8) return false;
  const enc = passwordBytes(pass);
  let diff = 0;
  // Constant time like keepalived's memcmp_constant_time: do not leak how much of the password matched.
  for (let i = 0; i < 8; i++) diff |= (enc[i] ?? 0) ^ data[i]!;
  return diff === 0;
}

const passCache = new Map<string, Uint8Array>();
function passwordBytes(pass: string): Uint8Array {
  let b = passCache.get(pass);
  if (!b) {
    b = new Uint8Array(8);
    b.set(new TextEncoder().encode(pass).subarray(0, 8));
    if (passCache.size > 256) passCache.clear();
    passCache.set(pass, b);
  }
  return b;
}

/**
 * Checks one decoded advert against the instance's config, in keepalived's order so the reason
 * reported for a packet with several faults is the one keepalived would log.
 */
export function validateAdvert(cfg: ValidateConfig, pkt: VrrpPacket, rx: RxInfo): ValidateResult {
  // vrrp_dispatcher_read: an unknown VRID is ignored before any other check, normally without a log.
  if (pkt.vrid !== cfg.vrid) return drop("vrid", false);
  if (pkt.family !== cfg.family) return drop("family");

  // RFC 5798 §7.1 "MUST verify that the IPv4 TTL/IPv6 HL is 255"; keepalived skips it in unicast mode
  // (peers may be routed hops away) and when the TTL was not received.
  if (!cfg.unicast && rx.ttl !== -1 && rx.ttl !== VRRP_TTL) return drop("ttl");

  if (pkt.version !== cfg.version) return drop("version");

  if (cfg.version === 2) {
    // RFC 3768 §7.1: valid auth type, the same as ours, and for PASS the same 8 bytes.
    if (pkt.authType !== AUTH_NONE && pkt.authType !== AUTH_PASS && pkt.authType !== AUTH_AH)
      return drop("auth");
    const auth = effectiveAuth(cfg);
    if (pkt.authType !== auth) return drop("auth");
    if (auth === AUTH_PASS && !passwordMatches(cfg.auth!.pass, pkt.authData)) return drop("auth");
    // keepalived's AH arrives as IP protocol 51 with an ICV over the IP header: the VRRP codec cannot
    // verify it, so an AH instance accepts nothing rather than trusting unauthenticated adverts.
    if (auth === AUTH_AH) return drop("auth");
    // RFC 3768 §7.1: "MUST verify that the Adver Interval in the packet is the same as the locally
    // configured" — keepalived drops and logs ("to prevent concurrent VRID running => multiple master").
    if (pkt.advertInterval * 1000 !== cfg.advertIntervalMs) return drop("interval");
  }
  // v3: any interval is accepted; a backup learns it as Master_Adver_Interval (instance.ts).

  if (pkt.type !== 1) return drop("type");

  // keepalived checks the count against its VIPs (it logs and drops: RFC 5798 says MAY check the list,
  // keepalived always does unless skip_check_adv_addr).
  if (pkt.addresses.length !== cfg.vipCount) return drop("addr_count");

  // Multicast advert on a unicast instance or vice versa. keepalived logs it for IPv4; for IPv6 the
  // dispatcher discards it silently (a multicast socket also receives unicasts and vice versa).
  if (isMulticastIp(rx.dst) === cfg.unicast) return drop("dst_type", cfg.family === 4);

  for (const vip of cfg.vips) {
    if (!pkt.addresses.includes(vip)) return drop("addr_list");
  }

  if (cfg.unicast && cfg.checkUnicastSrc) {
    if (!cfg.unicastPeers.includes(rx.src)) return drop("unicast_src");
    const range = cfg.peerTtl?.[rx.src];
    if (range && rx.ttl !== -1 && (rx.ttl < (range.min ?? 0) || rx.ttl > (range.max ?? 255)))
      return drop("ttl");
  }
  return OK;
}
