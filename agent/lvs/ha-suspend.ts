// ha_suspend (keepalived 2.2.7 check_api.c: register_checkers_thread, update_checker_activity): the
// checkers of a virtual server with ha_suspend run only while its address is on one of this host's
// interfaces, i.e. on the director that holds the VIP. A suspended checker keeps its state and its
// timer; each tick just reschedules (check_tcp.c & co: `if (!checker->enabled)`), so when the address
// comes back checks resume on the next tick with the health they had. The kernel table is programmed
// either way. keepalived matches the virtual server's own address only (addr_matches() returns false
// for a group; validate.ts refuses ha_suspend with a group or a fwmark).
//
// Address presence is polled from rtnetlink (one address dump, through agent/net/kernel.ts) while some
// virtual server has ha_suspend: a checker only looks at it once per delay_loop, so a poll loses
// nothing that a notification socket (and the reader thread it needs) would give.
import type { VirtualServer } from "../config/model.ts";
import { virtualServerKey } from "../config/model.ts";
import { canonicalIp } from "../wire/ip.ts";

export interface HostAddress {
  family: 4 | 6;
  /** canonical text */
  address: string;
}

/**
 * For every virtual server with ha_suspend: whether its checkers run (its address is present), by
 * virtualServerKey. keepalived counts the interfaces holding the address and suspends at 0.
 */
export function haSuspendActive(
  vss: readonly Pick<VirtualServer, "haSuspend" | "address" | "port" | "protocol" | "fwmark" | "group">[],
  host: readonly HostAddress[],
): Map<string, boolean> {
  const present = new Set(host.map((a) => canonicalIp(a.address) ?? a.address));
  const out = new Map<string, boolean>();
  for (const vs of vss) {
    if (!vs.haSuspend) continue;
    out.set(virtualServerKey(vs), vs.address !== undefined && present.has(vs.address));
  }
  return out;
}

/** Virtual servers whose state differs between two results (new ones included). */
export function haSuspendChanges(
  prev: ReadonlyMap<string, boolean>,
  next: ReadonlyMap<string, boolean>,
): [string, boolean][] {
  const out: [string, boolean][] = [];
  for (const [k, v] of next) if (prev.get(k) !== v) out.push([k, v]);
  return out;
}
