// keepalived.conf's load-balancing sections -> the config model: `virtual_server` (by address and
// port, `fwmark N` or `group NAME`) with its `real_server` blocks and their health checkers, and
// `virtual_server_group`. The rules are keepalived 2.2.7's check_parser.c, check_data.c and the
// checkers' parsers (check_tcp/http/dns/udp/ping/misc.c): a value keepalived refuses while reading
// is refused here at the same line. Checks relating several settings (families, ports, quorum,
// duplicates, group references) run on the model in ../validate.ts, so YAML gets them too.
import type { z } from "zod";
import { familyOf, formatIp, parseIp } from "../../wire/ip.ts";
import {
  type Checker,
  DNS_TYPES,
  HTTP_STATUS_MAX,
  HTTP_STATUS_MIN,
  type HttpUrl,
  LB_ALGOS,
  type RealServer,
  type SourceLoc,
  type SourceLocs,
  type VirtualServer,
  type VirtualServerGroup,
  type VirtualServerGroupEntry,
} from "../model.ts";
import type { Node } from "./parser.ts";

type VsIn = z.input<typeof VirtualServer>;
type RsIn = z.input<typeof RealServer>;
type VsgIn = z.input<typeof VirtualServerGroup>;
type EntryIn = z.input<typeof VirtualServerGroupEntry>;
type CheckerIn = z.input<typeof Checker>;
type UrlIn = z.input<typeof HttpUrl>;
type Rec = Record<string, unknown> & { locs: SourceLocs };

/** The value readers and reporting of the keepalived.conf parser (parser.ts). */
export interface LvsHost {
  err(at: SourceLoc, message: string): void;
  warn(at: SourceLoc, message: string): void;
  arg(n: Node, what?: string): string | undefined;
  uint(n: Node, word: string | undefined, min: number, max: number, name?: string): number | undefined;
  decimal(n: Node, word: string | undefined, min: number, max: number): number | undefined;
  bool(n: Node): boolean | undefined;
  noBlock(n: Node): void;
  needBlock(n: Node, next: Node | undefined): Node[] | undefined;
  ignored(n: Node): void;
  unsupported(n: Node): void;
  unknown(n: Node, where: string): void;
  command(n: Node, keyword: string): string | undefined;
}

const U32 = 4294967295;
// keepalived's read_timer limits: microseconds in an unsigned int / unsigned long
const TIMER_UINT = 4294.967295;
// (18446744073709.551614 s; a double holds it to about a millisecond)
const TIMER_ULONG = 18446744073709.55;
const MIN_TIMER = 0.000001;

const VS_IGNORED = new Set(["smtp_alert", "snmp_name"]);
const VS_UNSUPPORTED = new Set(["hashed", "flag-1", "flag-2", "flag-3"]);
const RS_IGNORED = new Set(["smtp_alert", "snmp_name"]);
const RS_UNSUPPORTED = new Set(["track_file", "track_bfd", "FILE_CHECK", "BFD_CHECK", "SMTP_CHECK"]);
const CHECKER_IGNORED = new Set(["log_all_failures"]);
const HTTP_UNSUPPORTED = new Set([
  "regex",
  "regex_no_match",
  "regex_options",
  "regex_min_offset",
  "regex_max_offset",
  "regex_stack",
]);
const CHECKER_KEYWORDS = new Set([
  "TCP_CHECK",
  "HTTP_GET",
  "SSL_GET",
  "DNS_CHECK",
  "UDP_CHECK",
  "PING_CHECK",
  "MISC_CHECK",
]);

function loc(n: { file: string; line: number }): SourceLoc {
  return { file: n.file, line: n.line };
}

/** keepalived's port words: all zeros means "no port"; otherwise 1..65535 */
function isZeroPort(w: string): boolean {
  return /^0+$/.test(w);
}

/** `ADDR` as keepalived's inet_stosockaddr reads it (family by ':'), without range or mask */
function plainAddress(w: string): string | undefined {
  const fam = w.includes(":") ? 6 : 4;
  return familyOf(w) === fam ? w : undefined;
}

export class LvsParser {
  readonly virtualServers: VsIn[] = [];
  readonly groups: VsgIn[] = [];

  constructor(private readonly p: LvsHost) {}

  private bad(n: Node, message: string): undefined {
    this.p.err(n, message);
    return undefined;
  }

  /** `ADDR [PORT]` of a real or sorry server; port 0 or none = unset */
  private server(n: Node, addrWord: string | undefined, portWord: string | undefined, what: string) {
    if (addrWord === undefined) return this.bad(n, `${n.words[0]}: missing address`);
    const address = plainAddress(addrWord);
    if (address === undefined) return this.bad(n, `${what}: invalid IP address '${addrWord}'`);
    if (portWord === undefined || isZeroPort(portWord)) return { address };
    const port = this.p.uint(n, portWord, 1, 65535, `${what} port`);
    if (port === undefined) return undefined;
    return { address, port };
  }

  private timer(o: Rec, field: string, n: Node, min: number, max: number): void {
    const v = this.p.decimal(n, this.p.arg(n), min, max);
    if (v === undefined) return;
    o[field] = v;
    o.locs[field] = loc(n);
  }

  private count(o: Rec, field: string, n: Node, min: number, max: number): void {
    const v = this.p.uint(n, this.p.arg(n), min, max);
    if (v === undefined) return;
    o[field] = v;
    o.locs[field] = loc(n);
  }

  private flag(o: Rec, field: string, n: Node): void {
    const v = this.p.bool(n);
    if (v === undefined) return;
    o[field] = v;
    o.locs[field] = loc(n);
  }

  private text(o: Rec, field: string, n: Node, what: string): void {
    const v = this.p.arg(n, what);
    if (v === undefined) return;
    o[field] = v;
    o.locs[field] = loc(n);
  }

  private script(o: Rec, field: string, n: Node, owner: string): void {
    const kw = n.words[0]!;
    if (o[field] !== undefined) return void this.p.err(n, `${owner}: ${kw} script already specified`);
    const c = this.p.command(n, kw);
    if (c === undefined) return;
    o[field] = c;
    o.locs[field] = loc(n);
  }

  /** lb_kind / lvs_method: NAT, DR or TUN (tunnel options are not supported) */
  private method(n: Node): "NAT" | "DR" | "TUN" | undefined {
    if (n.words.length > 2) {
      return this.bad(
        n,
        `${n.words[0]}: tunnel options ('${n.words.slice(2).join(" ")}') are not supported by vigil`,
      );
    }
    const v = this.p.arg(n, "NAT, DR or TUN");
    if (v === undefined) return undefined;
    if (v !== "NAT" && v !== "DR" && v !== "TUN")
      return this.bad(n, `${n.words[0]}: unknown forwarding method '${v}' (expected NAT, DR or TUN)`);
    return v;
  }

  // ---- virtual_server ----

  virtualServer(head: Node, nodes: Node[]): void {
    const w = head.words;
    const at = loc(head);
    const locs: SourceLocs = {};
    const vs: Rec = { loc: at, locs };
    if (head.close) locs["end"] = loc(head.close);
    const a = w[1];
    const b = w[2];
    if (a === undefined) return void this.p.err(head, "virtual_server: missing address, fwmark or group");
    if (w.length > 3)
      return void this.p.err(head, `virtual_server: unexpected '${w.slice(3).join(" ")}' after '${w[2]}'`);
    if (a === "group") {
      if (b === undefined) return void this.p.err(head, "virtual_server group: missing group name");
      vs["group"] = b;
    } else if (a === "fwmark") {
      if (b === undefined) return void this.p.err(head, "virtual_server fwmark: missing mark");
      const m = this.p.uint(head, b, 1, U32, "virtual_server fwmark");
      // keepalived takes fwmark 0 as "no fwmark" and then has neither address nor mark
      if (m === undefined) return;
      vs["fwmark"] = m;
    } else {
      const address = plainAddress(a);
      if (address === undefined)
        return void this.p.err(
          head,
          a.includes("/") || a.includes("-")
            ? `virtual_server: '${a}': address ranges are only allowed in a virtual_server_group`
            : `virtual_server: invalid IP address '${a}'`,
        );
      vs["address"] = address;
      if (b !== undefined && !isZeroPort(b)) {
        const port = this.p.uint(head, b, 1, 65535, "virtual_server port");
        if (port === undefined) return;
        vs["port"] = port;
      } else vs["port"] = 0;
    }
    const name = `virtual_server ${w.slice(1).join(" ")}`;
    const realServers: RsIn[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = nodes[i + 1];
      const kw = n.words[0]!;
      const nat = loc(n);
      if (kw !== "real_server" && !VS_UNSUPPORTED.has(kw) && VS_KEYWORDS.has(kw)) this.p.noBlock(n);
      switch (kw) {
        case "ip_family": {
          const v = this.p.arg(n, "inet or inet6");
          if (v === undefined) break;
          if (v !== "inet" && v !== "inet6") {
            this.p.err(n, `ip_family: unknown address family '${v}' (expected inet or inet6)`);
            break;
          }
          if (vs["address"] !== undefined && (familyOf(vs["address"] as string) === 6) !== (v === "inet6")) {
            this.p.err(n, `ip_family: ${v} conflicts with the virtual server's address`);
            break;
          }
          vs["ipFamily"] = v;
          locs["ipFamily"] = nat;
          break;
        }
        case "delay_loop":
          this.timer(vs, "delayLoop", n, MIN_TIMER, TIMER_ULONG);
          break;
        case "delay_before_retry":
          this.timer(vs, "delayBeforeRetry", n, 0, TIMER_ULONG);
          break;
        case "warmup":
          this.timer(vs, "warmup", n, 0, TIMER_ULONG);
          break;
        case "connect_timeout":
          this.timer(vs, "connectTimeout", n, MIN_TIMER, TIMER_UINT);
          break;
        case "retry":
          this.count(vs, "retry", n, 1, U32);
          break;
        case "lb_algo":
        case "lvs_sched": {
          const v = this.p.arg(n, "a scheduler");
          if (v === undefined) break;
          if (!(LB_ALGOS as readonly string[]).includes(v)) {
            this.p.err(n, `${kw}: unknown scheduler '${v}' (expected one of ${LB_ALGOS.join(" ")})`);
            break;
          }
          vs["lbAlgo"] = v;
          locs["lbAlgo"] = nat;
          break;
        }
        case "lb_kind":
        case "lvs_method": {
          const m = this.method(n);
          if (m === undefined) break;
          vs["lbKind"] = m;
          locs["lbKind"] = nat;
          break;
        }
        case "ops":
          vs["ops"] = true;
          locs["ops"] = nat;
          break;
        case "sh-port":
        case "sh-fallback":
        case "mh-port":
        case "mh-fallback": {
          // keepalived looks at the scheduler set so far: the flag must follow `lb_algo sh|mh`
          const sched = kw.slice(0, 2);
          if (vs["lbAlgo"] !== sched) {
            this.p.err(n, `${kw}: only applies to the ${sched} scheduler (set lb_algo ${sched} before it)`);
            break;
          }
          const field =
            kw === "sh-port"
              ? "shPort"
              : kw === "sh-fallback"
                ? "shFallback"
                : kw === "mh-port"
                  ? "mhPort"
                  : "mhFallback";
          vs[field] = true;
          locs[field] = nat;
          break;
        }
        case "persistence_engine": {
          const v = this.p.arg(n, "engine name");
          if (v === undefined) break;
          if (v.length > 15) {
            this.p.err(n, `persistence_engine: name '${v}' is longer than 15 characters`);
            break;
          }
          vs["persistenceEngine"] = v;
          locs["persistenceEngine"] = nat;
          break;
        }
        case "persistence_timeout": {
          // without a value, keepalived uses IPVS's default of 360 s
          const v = n.words[1] === undefined ? 360 : this.p.uint(n, this.p.arg(n), 1, 2678400);
          if (v === undefined) break;
          vs["persistenceTimeout"] = v;
          locs["persistenceTimeout"] = nat;
          break;
        }
        case "persistence_granularity": {
          const v = this.p.arg(n, "a netmask or prefix length");
          if (v === undefined) break;
          const fam =
            vs["address"] !== undefined
              ? familyOf(vs["address"] as string)
              : vs["ipFamily"] !== undefined
                ? vs["ipFamily"] === "inet6"
                  ? 6
                  : 4
                : v.includes(".")
                  ? 4
                  : 6;
          const msg = granularityProblem(v, fam === 6 ? 6 : 4);
          if (msg) {
            this.p.err(n, `persistence_granularity: ${msg}`);
            break;
          }
          vs["persistenceGranularity"] = v;
          locs["persistenceGranularity"] = nat;
          if (vs["persistenceTimeout"] === undefined) vs["persistenceTimeout"] = 360;
          break;
        }
        case "protocol": {
          const v = this.p.arg(n, "TCP, UDP or SCTP");
          if (v === undefined) break;
          const up = v.toUpperCase();
          if (up !== "TCP" && up !== "UDP" && up !== "SCTP") {
            this.p.err(n, `protocol: unknown protocol '${v}' (expected TCP, UDP or SCTP)`);
            break;
          }
          vs["protocol"] = up;
          locs["protocol"] = nat;
          break;
        }
        case "ha_suspend":
          vs["haSuspend"] = true;
          locs["haSuspend"] = nat;
          break;
        case "virtualhost":
          this.text(vs, "virtualhost", n, "virtual host name");
          break;
        case "alpha":
        case "omega":
        case "inhibit_on_failure": {
          // the virtual server's flags take no value in keepalived
          if (n.words.length > 1)
            this.p.warn(n, `${kw}: extra words '${n.words.slice(1).join(" ")}' ignored`);
          const field = kw === "inhibit_on_failure" ? "inhibitOnFailure" : kw;
          vs[field] = true;
          locs[field] = nat;
          break;
        }
        case "quorum_up":
          this.script(vs, "quorumUp", n, name);
          break;
        case "quorum_down":
          this.script(vs, "quorumDown", n, name);
          break;
        case "quorum":
          this.count(vs, "quorum", n, 1, U32);
          break;
        case "hysteresis":
          this.count(vs, "hysteresis", n, 0, U32);
          break;
        case "weight":
          this.count(vs, "weight", n, 1, 2147483647);
          break;
        case "sorry_server": {
          const s = this.server(n, n.words[1], n.words[2], "sorry_server");
          if (!s) break;
          if (n.words.length > 3)
            this.p.warn(n, `sorry_server: extra words '${n.words.slice(3).join(" ")}' ignored`);
          vs["sorryServer"] = { ...s, loc: nat };
          locs["sorryServer"] = nat;
          break;
        }
        case "sorry_server_inhibit":
          if (vs["sorryServer"] === undefined) {
            this.p.err(n, "sorry_server_inhibit: used before or without sorry_server");
            break;
          }
          vs["sorryServerInhibit"] = true;
          locs["sorryServerInhibit"] = nat;
          break;
        case "sorry_server_lvs_method": {
          if (vs["sorryServer"] === undefined) {
            this.p.err(n, "sorry_server_lvs_method: used before or without sorry_server");
            break;
          }
          const m = this.method(n);
          if (m === undefined) break;
          vs["sorryServerLvsMethod"] = m;
          locs["sorryServerLvsMethod"] = nat;
          break;
        }
        case "real_server": {
          const blk = this.p.needBlock(n, next ?? closeOf(head, n));
          if (!blk) break;
          const rs = this.realServer(n, blk, name);
          if (rs) realServers.push(rs);
          break;
        }
        default:
          if (VS_IGNORED.has(kw)) this.p.ignored(n);
          else if (VS_UNSUPPORTED.has(kw)) this.p.unsupported(n);
          else this.p.unknown(n, name);
      }
    }
    if (realServers.length) vs["realServers"] = realServers;
    // keepalived sets a default and reports it, which fails its config test
    if (vs["lbAlgo"] === undefined) this.p.err(head, `${name}: no scheduler set (lb_algo)`);
    if (vs["lbKind"] === undefined) this.p.err(head, `${name}: no forwarding method set (lb_kind)`);
    if (vs["lbAlgo"] === undefined || vs["lbKind"] === undefined) return;
    this.virtualServers.push(vs as VsIn);
  }

  // ---- real_server ----

  realServer(head: Node, nodes: Node[], owner: string): RsIn | undefined {
    const w = head.words;
    if (w.length > 3) this.p.warn(head, `real_server: extra words '${w.slice(3).join(" ")}' ignored`);
    const s = this.server(head, w[1], w[2], "real_server");
    if (!s) return undefined;
    const locs: SourceLocs = {};
    if (head.close) locs["end"] = loc(head.close);
    const rs: Rec = { ...s, loc: loc(head), locs };
    const name = `${owner} real_server ${w.slice(1).join(" ")}`;
    const checkers: CheckerIn[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = nodes[i + 1];
      const kw = n.words[0]!;
      const nat = loc(n);
      if (!CHECKER_KEYWORDS.has(kw) && RS_KEYWORDS.has(kw)) this.p.noBlock(n);
      switch (kw) {
        case "weight":
          this.count(rs, "weight", n, 0, 2147483647);
          break;
        case "lvs_method": {
          const m = this.method(n);
          if (m === undefined) break;
          rs["lvsMethod"] = m;
          locs["lvsMethod"] = nat;
          break;
        }
        case "uthreshold":
          this.count(rs, "uthreshold", n, 0, U32);
          break;
        case "lthreshold":
          this.count(rs, "lthreshold", n, 0, U32);
          break;
        case "inhibit_on_failure":
          this.flag(rs, "inhibitOnFailure", n);
          break;
        case "alpha":
          this.flag(rs, "alpha", n);
          break;
        case "notify_up":
          this.script(rs, "notifyUp", n, name);
          break;
        case "notify_down":
          this.script(rs, "notifyDown", n, name);
          break;
        case "retry":
          this.count(rs, "retry", n, 1, U32);
          break;
        case "delay_before_retry":
          this.timer(rs, "delayBeforeRetry", n, 0, TIMER_ULONG);
          break;
        case "warmup":
          this.timer(rs, "warmup", n, 0, TIMER_ULONG);
          break;
        case "connect_timeout":
          this.timer(rs, "connectTimeout", n, MIN_TIMER, TIMER_UINT);
          break;
        case "delay_loop":
          this.timer(rs, "delayLoop", n, MIN_TIMER, TIMER_ULONG);
          break;
        case "virtualhost":
          this.text(rs, "virtualhost", n, "virtual host name");
          break;
        default:
          if (CHECKER_KEYWORDS.has(kw)) {
            const blk = this.p.needBlock(n, next ?? closeOf(head, n));
            if (!blk) break;
            if (n.words.length > 1)
              this.p.warn(n, `${kw}: extra words '${n.words.slice(1).join(" ")}' ignored`);
            const c = this.checker(n, blk, kw as CheckerIn["type"]);
            if (c) {
              locs[`checkers.${checkers.length}`] = nat;
              checkers.push(c);
            }
          } else if (RS_IGNORED.has(kw)) this.p.ignored(n);
          else if (RS_UNSUPPORTED.has(kw)) this.p.unsupported(n);
          else this.p.unknown(n, name);
      }
    }
    if (checkers.length) rs["checkers"] = checkers;
    return rs as RsIn;
  }

  // ---- checkers ----

  checker(head: Node, nodes: Node[], type: CheckerIn["type"]): CheckerIn | undefined {
    const locs: SourceLocs = {};
    const c: Rec = { type, loc: loc(head), locs };
    const connecting = type !== "MISC_CHECK";
    const urls: UrlIn[] = [];
    let ok = true;
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i]!;
      const next = nodes[i + 1];
      const kw = n.words[0]!;
      const nat = loc(n);
      if (kw !== "url") this.p.noBlock(n);
      if (connecting && this.connectionKeyword(c, n, kw)) continue;
      switch (kw) {
        case "retry":
          this.count(c, "retry", n, 0, U32);
          continue;
        case "nb_get_retry":
          if (type === "HTTP_GET" || type === "SSL_GET") {
            // keepalived reports the old name as a config error (its test fails) and uses it
            this.p.err(n, "nb_get_retry: deprecated, use 'retry'");
            continue;
          }
          break;
        case "delay_before_retry":
          this.timer(c, "delayBeforeRetry", n, 0, TIMER_ULONG);
          continue;
        case "warmup":
          this.timer(c, "warmup", n, 0, TIMER_ULONG);
          continue;
        case "delay_loop":
          this.timer(c, "delayLoop", n, MIN_TIMER, TIMER_ULONG);
          continue;
        case "alpha":
          this.flag(c, "alpha", n);
          continue;
        case "log_all_failures":
          this.flag(c, "logAllFailures", n);
          continue;
      }
      if (type === "HTTP_GET" || type === "SSL_GET") {
        switch (kw) {
          case "virtualhost":
            this.text(c, "virtualhost", n, "virtual host name");
            continue;
          case "http_protocol": {
            const v = this.p.arg(n, "1.0, 1.1 or 1.0C");
            if (v === undefined) continue;
            const norm = v === "1.0c" ? "1.0C" : v;
            if (norm !== "1.0" && norm !== "1.1" && norm !== "1.0C") {
              this.p.err(n, `http_protocol: invalid version '${v}' (expected 1.0, 1.1 or 1.0C)`);
              continue;
            }
            c["httpProtocol"] = norm;
            locs["httpProtocol"] = nat;
            continue;
          }
          case "enable_sni":
            if (type === "SSL_GET") {
              this.flag(c, "enableSni", n);
              continue;
            }
            break;
          case "fast_recovery":
            this.p.unsupported(n);
            continue;
          case "url": {
            const blk = this.p.needBlock(n, next ?? closeOf(head, n));
            if (!blk) continue;
            const u = this.url(n, blk);
            if (u) {
              locs[`url.${urls.length}`] = nat;
              urls.push(u);
            }
            continue;
          }
        }
      } else if (type === "DNS_CHECK") {
        if (kw === "type") {
          const v = this.p.arg(n, "a record type");
          if (v === undefined) continue;
          const t = v.toUpperCase();
          if (!(DNS_TYPES as readonly string[]).includes(t)) {
            this.p.err(n, `type: unknown DNS record type '${v}' (expected one of ${DNS_TYPES.join(" ")})`);
            continue;
          }
          c["dnsType"] = t;
          locs["dnsType"] = nat;
          continue;
        }
        if (kw === "name") {
          const v = this.p.arg(n, "a domain name");
          if (v === undefined) continue;
          if (c["name"] !== undefined) {
            this.p.err(n, "name: DNS_CHECK name already specified");
            continue;
          }
          if ((v.startsWith(".") && v !== ".") || v.includes("..")) {
            this.p.err(n, `name: '${v}' has an empty label`);
            continue;
          }
          c["name"] = v;
          locs["name"] = nat;
          continue;
        }
      } else if (type === "UDP_CHECK") {
        if (kw === "payload" || kw === "require_reply") {
          const hex = n.words.slice(1).join("").replace(/\s+/g, "");
          if (kw === "require_reply") {
            c["requireReply"] = true;
            locs["requireReply"] = nat;
            if (hex === "") continue;
          } else if (hex === "") {
            this.p.err(n, "payload: UDP_CHECK payload requires a payload");
            continue;
          }
          if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) {
            this.p.err(n, `${kw}: invalid hex string '${n.words.slice(1).join(" ")}'`);
            continue;
          }
          const field = kw === "payload" ? "payload" : "replyData";
          c[field] = hex.toLowerCase();
          locs[field] = nat;
          continue;
        }
        if (kw === "min_reply_length" || kw === "max_reply_length") {
          this.count(c, kw === "min_reply_length" ? "minReplyLength" : "maxReplyLength", n, 0, 65535);
          continue;
        }
      } else if (type === "MISC_CHECK") {
        switch (kw) {
          case "misc_path": {
            const v = this.p.command(n, kw);
            if (v === undefined) continue;
            c["miscPath"] = v;
            locs["miscPath"] = nat;
            continue;
          }
          case "misc_timeout":
            this.count(c, "miscTimeout", n, 0, Math.floor(U32 / 1000000));
            continue;
          case "misc_dynamic":
            c["miscDynamic"] = true;
            locs["miscDynamic"] = nat;
            continue;
          case "user": {
            const u = n.words[1];
            if (u === undefined) {
              this.p.err(n, "user: no user specified for the misc checker script");
              continue;
            }
            c["user"] = u;
            locs["user"] = nat;
            if (n.words[2] !== undefined) {
              c["group"] = n.words[2];
              locs["group"] = nat;
            }
            continue;
          }
        }
      }
      if (CHECKER_IGNORED.has(kw)) this.p.ignored(n);
      else if (type === "HTTP_GET" || type === "SSL_GET" ? HTTP_UNSUPPORTED.has(kw) : false)
        this.p.unsupported(n);
      else this.p.unknown(n, type);
    }
    const end = head.close ?? head;
    if (type === "HTTP_GET" || type === "SSL_GET") {
      if (urls.length === 0) {
        this.p.err(end, `${type}: no url specified (url { path ... })`);
        ok = false;
      }
      c["url"] = urls;
    }
    if (type === "MISC_CHECK" && c["miscPath"] === undefined) {
      this.p.err(end, "MISC_CHECK: no script specified (misc_path)");
      ok = false;
    }
    return ok ? (c as CheckerIn) : undefined;
  }

  /** connect_ip, connect_port, bindto, bind_port, bind_if, connect_timeout, fwmark; true if handled */
  private connectionKeyword(c: Rec, n: Node, kw: string): boolean {
    const nat = loc(n);
    switch (kw) {
      case "connect_ip":
      case "bindto": {
        const v = this.p.arg(n, "an IP address");
        if (v === undefined) return true;
        const addr = plainAddress(v);
        if (addr === undefined) {
          this.p.err(n, `${kw}: invalid IP address '${v}'`);
          return true;
        }
        const other = c[kw === "connect_ip" ? "bindto" : "connectIp"];
        if (typeof other === "string" && familyOf(other) !== familyOf(addr)) {
          this.p.err(
            n,
            `${kw}: ${addr} does not match the address family of ${kw === "connect_ip" ? "bindto" : "connect_ip"} ${other}`,
          );
          return true;
        }
        const field = kw === "connect_ip" ? "connectIp" : "bindto";
        c[field] = addr;
        c.locs[field] = nat;
        return true;
      }
      case "connect_port":
        this.count(c, "connectPort", n, 1, 65535);
        return true;
      case "bind_port":
        this.count(c, "bindPort", n, 1, 65535);
        return true;
      case "bind_if": {
        const v = this.p.arg(n, "an interface name");
        if (v === undefined) return true;
        if (v.length > 15) {
          this.p.err(n, `bind_if: interface name '${v}' is too long`);
          return true;
        }
        c["bindIf"] = v;
        c.locs["bindIf"] = nat;
        return true;
      }
      case "connect_timeout":
        this.timer(c, "connectTimeout", n, MIN_TIMER, TIMER_UINT);
        return true;
      case "fwmark":
        this.count(c, "fwmark", n, 0, U32);
        return true;
    }
    return false;
  }

  url(head: Node, nodes: Node[]): UrlIn | undefined {
    const locs: SourceLocs = {};
    const u: Rec = { loc: loc(head), locs };
    for (const n of nodes) {
      this.p.noBlock(n);
      const kw = n.words[0]!;
      const nat = loc(n);
      switch (kw) {
        case "path":
          this.text(u, "path", n, "a path");
          break;
        case "digest": {
          const v = this.p.arg(n, "an MD5 digest");
          if (v === undefined) break;
          if (u["digest"] !== undefined) {
            this.p.err(n, `digest: '${v}' is a duplicate`);
            break;
          }
          if (!/^[0-9a-fA-F]{32}$/.test(v)) {
            this.p.err(n, `digest: '${v}' is not an MD5 digest (32 hex digits)`);
            break;
          }
          u["digest"] = v.toLowerCase();
          locs["digest"] = nat;
          break;
        }
        case "status_code": {
          const codes: string[] = [];
          if (n.words.length < 2) {
            this.p.err(n, "status_code: missing a value");
            break;
          }
          for (const s of n.words.slice(1)) {
            const m = /^(\d+)(?:-(\d+))?$/.exec(s);
            const lo = m ? Number(m[1]) : Number.NaN;
            const hi = m?.[2] !== undefined ? Number(m[2]) : lo;
            if (!m || lo < HTTP_STATUS_MIN || hi > HTTP_STATUS_MAX || lo > hi) {
              this.p.err(
                n,
                `status_code: invalid HTTP status code '${s}' (${HTTP_STATUS_MIN}..${HTTP_STATUS_MAX} or MIN-MAX)`,
              );
              continue;
            }
            codes.push(m[2] !== undefined ? `${lo}-${hi}` : String(lo));
          }
          const prev = (u["statusCode"] as string[] | undefined) ?? [];
          u["statusCode"] = [...prev, ...codes];
          locs["statusCode"] = nat;
          break;
        }
        case "virtualhost":
          this.text(u, "virtualhost", n, "virtual host name");
          break;
        default:
          if (HTTP_UNSUPPORTED.has(kw)) this.p.unsupported(n);
          else this.p.unknown(n, "url");
      }
    }
    if (u["path"] === undefined) {
      this.p.err(head.close ?? head, "url: no path specified");
      return undefined;
    }
    return u as UrlIn;
  }

  // ---- virtual_server_group ----

  group(head: Node, nodes: Node[]): void {
    const w = head.words;
    if (w.length < 2) return void this.p.err(head, "virtual_server_group: missing a name");
    if (w.length > 2)
      return void this.p.err(
        head,
        `virtual_server_group: unexpected '${w.slice(2).join(" ")}' after the name`,
      );
    const name = w[1]!;
    const entries: EntryIn[] = [];
    const locs: SourceLocs = {};
    if (head.close) locs["end"] = loc(head.close);
    for (const n of nodes) {
      if (n.block) this.p.err(n.open ?? n, "unexpected '{' in a list of values");
      const e = this.groupEntry(n, name);
      if (e) {
        locs[`entries.${entries.length}`] = loc(n);
        entries.push(e);
      }
    }
    if (entries.length === 0) {
      // keepalived names the closing brace
      this.p.err(head.close ?? head, `virtual_server_group ${name}: no entries`);
      return;
    }
    this.groups.push({ name, entries, loc: loc(head), locs });
  }

  groupEntry(n: Node, group: string): EntryIn | undefined {
    const w = n.words;
    const first = w[0]!;
    const at = loc(n);
    if (first === "fwmark") {
      const m = this.p.uint(n, w[1] ?? "", 0, U32, "fwmark");
      if (m === undefined) return undefined;
      const e: EntryIn = { fwmark: m, loc: at };
      if (w[2] !== undefined) {
        if (w[2] !== "inet" && w[2] !== "inet6")
          return this.bad(n, `virtual_server_group ${group}: fwmark ${m}: unknown family '${w[2]}'`);
        e.family = w[2];
      }
      if (w.length > 3) this.p.warn(n, `fwmark: extra words '${w.slice(3).join(" ")}' ignored`);
      return e;
    }
    const fam = first.includes(":") ? 6 : 4;
    const cut = first.search(/[-/]/);
    const startText = cut < 0 ? first : first.slice(0, cut);
    const start = familyOf(startText) === fam ? parseIp(startText) : null;
    let port: number | undefined;
    if (w[1] !== undefined && !isZeroPort(w[1])) {
      port = this.p.uint(n, w[1], 1, 65535, "port");
      if (port === undefined) return undefined;
    }
    if (w.length > 2) this.p.warn(n, `'${w.slice(2).join(" ")}' ignored`);
    if (!start) return this.bad(n, `virtual_server_group ${group}: invalid IP address '${first}'`);
    let end = start;
    const rest = cut < 0 ? "" : first.slice(cut + 1);
    if (cut >= 0 && first[cut] === "/") {
      const bits = fam === 4 ? 32 : 128;
      if (!/^\d+$/.test(rest) || Number(rest) === 0 || Number(rest) > bits)
        return this.bad(n, `virtual_server_group ${group}: invalid netmask in '${first}'`);
      const plen = Number(rest);
      end = new Uint8Array(start);
      for (let bit = plen; bit < bits; bit++) {
        const byte = bit >> 3;
        const mask = 0x80 >> (bit & 7);
        if (start[byte]! & mask)
          return this.bad(
            n,
            `virtual_server_group ${group}: '${first}' has host bits set (expected the network address)`,
          );
        end[byte]! |= mask;
      }
    } else if (cut >= 0) {
      const full = fam === 4 ? rest.includes(".") : rest.includes(":");
      if (full) {
        const e = familyOf(rest) === fam ? parseIp(rest) : null;
        if (!e) return this.bad(n, `virtual_server_group ${group}: invalid range end in '${first}'`);
        end = e;
        if (compareBytes(end, start) < 0)
          return this.bad(n, `virtual_server_group ${group}: range end is below its start in '${first}'`);
      } else {
        const ok = fam === 4 ? /^\d+$/.test(rest) : /^[0-9a-fA-F]+$/.test(rest);
        const v = ok ? Number.parseInt(rest, fam === 4 ? 10 : 16) : Number.NaN;
        if (!ok || v > (fam === 4 ? 255 : 0xffff))
          return this.bad(n, `virtual_server_group ${group}: invalid range end in '${first}'`);
        end = new Uint8Array(start);
        const low = fam === 4 ? start[3]! : (start[14]! << 8) | start[15]!;
        if (low >= v)
          return this.bad(n, `virtual_server_group ${group}: range end is not above its start in '${first}'`);
        if (fam === 4) end[3] = v;
        else {
          end[14] = v >> 8;
          end[15] = v & 0xff;
        }
      }
    }
    const e: EntryIn = { address: formatIp(start), loc: at };
    if (compareBytes(start, end) !== 0) e.addressEnd = formatIp(end);
    if (port !== undefined) e.port = port;
    return e;
  }
}

/**
 * Where keepalived notices a missing `{` after the last keyword of a block: the enclosing block's
 * `}`, the next line it reads.
 */
function closeOf(head: Node, n: Node): Node | undefined {
  return head.close ? { ...n, file: head.close.file, line: head.close.line } : undefined;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** Why a persistence_granularity value does not fit the family, or undefined if it does. */
export function granularityProblem(v: string, fam: 4 | 6): string | undefined {
  if (fam === 6) {
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 128)
      return `'${v}' is not an IPv6 prefix length (1..128)`;
    return undefined;
  }
  return familyOf(v) === 4 ? undefined : `'${v}' is not an IPv4 netmask`;
}

/** keywords of a virtual_server block that take a value and no block */
const VS_KEYWORDS = new Set([
  "ip_family",
  "delay_loop",
  "delay_before_retry",
  "warmup",
  "connect_timeout",
  "retry",
  "lb_algo",
  "lvs_sched",
  "lb_kind",
  "lvs_method",
  "ops",
  "sh-port",
  "sh-fallback",
  "mh-port",
  "mh-fallback",
  "persistence_engine",
  "persistence_timeout",
  "persistence_granularity",
  "protocol",
  "ha_suspend",
  "virtualhost",
  "alpha",
  "omega",
  "inhibit_on_failure",
  "quorum_up",
  "quorum_down",
  "quorum",
  "hysteresis",
  "weight",
  "sorry_server",
  "sorry_server_inhibit",
  "sorry_server_lvs_method",
  "smtp_alert",
  "snmp_name",
]);
const RS_KEYWORDS = new Set([
  "weight",
  "lvs_method",
  "uthreshold",
  "lthreshold",
  "inhibit_on_failure",
  "alpha",
  "notify_up",
  "notify_down",
  "retry",
  "delay_before_retry",
  "warmup",
  "connect_timeout",
  "delay_loop",
  "virtualhost",
  "smtp_alert",
  "snmp_name",
]);

export type { VsgIn, VsIn };
